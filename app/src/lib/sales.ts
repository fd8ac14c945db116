/**
 * Sales at a glance from the stored jobs (no load on the registers): done sell and
 * sellReturn receipts summed per day, per kassa and per payment type, in kopecks. Cash is
 * counted net of change (what stayed in the drawer); a return counts negative.
 */
import { type Kopecks, roundToKopecks } from './money'
import type { JobRow } from './jobRow'

export interface SalesTotals {
  byDay: Map<string, Kopecks>
  byKassa: Map<string, Kopecks>
  byPayment: Map<string, Kopecks>
  total: Kopecks
  receipts: number
}

const money = (value: unknown): Kopecks => {
  if (typeof value === 'number' && Number.isFinite(value)) return roundToKopecks(String(value))
  if (typeof value === 'string' && value) return roundToKopecks(value)
  return 0n
}

const add = (map: Map<string, Kopecks>, key: string, value: Kopecks): void => {
  map.set(key, (map.get(key) ?? 0n) + value)
}

/** The local day "YYYY-MM-DD" of a date at `offsetMinutes` east of UTC. */
export function localDay(date: Date, offsetMinutes: number): string {
  return new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 10)
}

export function salesTotals(rows: JobRow[], offsetMinutes = 0): SalesTotals {
  const totals: SalesTotals = { byDay: new Map(), byKassa: new Map(), byPayment: new Map(), total: 0n, receipts: 0 }
  for (const row of rows) {
    if (row.state !== 'done' || !row.task || (row.taskType !== 'sell' && row.taskType !== 'sellReturn')) continue
    const sign = row.taskType === 'sellReturn' ? -1n : 1n
    const payments = Array.isArray(row.task.payments) ? (row.task.payments as Record<string, unknown>[]) : []
    const items = Array.isArray(row.task.items) ? (row.task.items as Record<string, unknown>[]) : []
    const total = row.task.total !== undefined
      ? money(row.task.total)
      : items.filter((i) => i.type === 'position').reduce((sum, i) => sum + money(i.amount), 0n)
    const nonCash = payments.filter((p) => p.type !== 'cash')
    let nonCashSum = 0n
    for (const p of nonCash) {
      const value = money(p.sum)
      nonCashSum += value
      add(totals.byPayment, String(p.type), sign * value)
    }
    if (total - nonCashSum > 0n) add(totals.byPayment, 'cash', sign * (total - nonCashSum))
    const day = row.created ? localDay(row.created, offsetMinutes) : 'unknown'
    add(totals.byDay, day, sign * total)
    add(totals.byKassa, row.kassa, sign * total)
    totals.total += sign * total
    totals.receipts += 1
  }
  return totals
}

/** Map entries sorted by key, for a table or a chart. */
export const sortedEntries = (map: Map<string, Kopecks>): [string, Kopecks][] => [...map.entries()].sort(([a], [b]) => a.localeCompare(b))

/**
 * Receipt journal filters → the entity.item.get request (50 items a page, newest first).
 * TASK is compact JSON written by the app ({"type":"sell",…}), so the type filter is a
 * LIKE on `"type":"<kind>"` (the closing quote keeps "sell" from matching "sellReturn").
 */
import { JOB_ENTITY } from './storage'

export const PAGE_SIZE = 50

export interface JournalFilters {
  kassa?: string
  state?: string
  /** Local dates "YYYY-MM-DD", both inclusive. */
  from?: string
  to?: string
  /** Bitrix24 user id of the creator. */
  cashier?: string
  type?: string
  source?: string
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/

/** "2026-12-01" + offset minutes → "2026-12-01T00:00:00+03:00" (the portal user's local midnight). */
export function dayStart(date: string, offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+'
  const abs = Math.abs(offsetMinutes)
  const hh = String(Math.floor(abs / 60)).padStart(2, '0')
  const mm = String(abs % 60).padStart(2, '0')
  return `${date}T00:00:00${sign}${hh}:${mm}`
}

export function nextDay(date: string): string {
  const [y, m, d] = date.split('-').map(Number)
  const next = new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, (d ?? 1) + 1))
  return next.toISOString().slice(0, 10)
}

/** FILTER of entity.item.get for the journal filters; `offsetMinutes` east of UTC. */
export function journalFilter(filters: JournalFilters, offsetMinutes = 0): Record<string, string> {
  const filter: Record<string, string> = {}
  if (filters.kassa) filter.PROPERTY_KASSA = filters.kassa
  if (filters.state) filter.PROPERTY_STATE = filters.state
  if (filters.source) filter.PROPERTY_SOURCE = filters.source
  if (filters.cashier) filter.CREATED_BY = filters.cashier
  if (filters.type) filter['%PROPERTY_TASK'] = `"type":"${filters.type.replace(/"/g, '')}"`
  if (filters.from && DATE_RE.test(filters.from)) filter['>=DATE_CREATE'] = dayStart(filters.from, offsetMinutes)
  if (filters.to && DATE_RE.test(filters.to)) filter['<DATE_CREATE'] = dayStart(nextDay(filters.to), offsetMinutes)
  return filter
}

/** Parameters of entity.item.get for page `page` (1-based). */
export function journalRequest(filters: JournalFilters, page: number, offsetMinutes = 0): Record<string, unknown> {
  return {
    ENTITY: JOB_ENTITY,
    SORT: { ID: 'DESC' },
    FILTER: journalFilter(filters, offsetMinutes),
    start: (Math.max(1, Math.floor(page)) - 1) * PAGE_SIZE
  }
}

export const pageCount = (total: number): number => Math.max(1, Math.ceil(total / PAGE_SIZE))

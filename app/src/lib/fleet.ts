/**
 * The fleet: one KASSADEV item per kassa (NAME = kassa id, STATUS = the daemon's status JSON,
 * SEEN = the heartbeat time). The page shows whatever STATUS carries; the fields read here
 * are listed in app/README.md ("Fleet fields") for the heartbeat side. Problems become
 * badges with a severity, sorted worst first.
 */

export type Severity = 'critical' | 'warning' | 'info'
export const SEVERITY_RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 }

export interface Problem {
  code: 'offline' | 'fn-expiry' | 'fn-expired' | 'ofd-backlog' | 'no-paper' | 'queue-blocked' | 'shift-old' | 'last-error'
  severity: Severity
  /** Numbers and text for the message (days left, reason…). */
  detail: Record<string, string | number>
}

export interface Kassa {
  id: string
  itemId: number
  seen: Date | null
  online: boolean
  status: Record<string, unknown>
  problems: Problem[]
}

/** A heartbeat is due every 300 s; a kassa silent for two of them and a minute is offline. */
export const OFFLINE_AFTER_MS = 11 * 60 * 1000
export const FN_EXPIRY_WARN_DAYS = 30
export const OFD_BACKLOG_WARN_DAYS = 3
export const OFD_BLOCK_DAYS = 30
export const SHIFT_LIMIT_HOURS = 24

const DAY_MS = 86_400_000

/** "2026-12-01T16:04:52+0000" (Python's %z), ISO with "+03:00", or "Z" → Date; null if not a time. */
export function parseTime(value: unknown): Date | null {
  if (typeof value !== 'string' || !value) return null
  const fixed = value.trim().replace(/([+-]\d{2})(\d{2})$/, '$1:$2').replace(' ', 'T')
  const time = Date.parse(fixed)
  return Number.isNaN(time) ? null : new Date(time)
}

function parseStatus(text: unknown): Record<string, unknown> {
  if (typeof text !== 'string' || !text) return {}
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

const num = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null)
const str = (value: unknown): string | null => (typeof value === 'string' && value ? value : null)

/** Whole days from `now` to `date` (negative once it is past). */
export function daysUntil(date: Date, now: Date): number {
  return Math.floor((date.getTime() - now.getTime()) / DAY_MS)
}

/** A date-only "2026-12-11" (the FN's validity, as the heartbeat sends it) → that day's local
 * midnight; any other time as parseTime. */
export function parseDay(value: unknown): Date | null {
  const match = typeof value === 'string' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(value.trim()) : null
  if (match) return new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3]))
  return parseTime(value)
}

/** Days until the FN's end: calendar days for a date (on 1 December, 11 December is 10 days
 * away, whatever the hour), whole days for a time. */
export function fnDaysLeft(value: unknown, now: Date): number | null {
  const day = parseDay(value)
  if (!day) return null
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value.trim())) {
    const today = new Date(now.getFullYear(), now.getMonth(), now.getDate())
    return Math.round((day.getTime() - today.getTime()) / DAY_MS)
  }
  return daysUntil(day, now)
}

/** The problems a kassa's status shows at `now`, worst first. */
export function problemsOf(status: Record<string, unknown>, online: boolean, now: Date): Problem[] {
  const problems: Problem[] = []
  if (!online) problems.push({ code: 'offline', severity: 'critical', detail: {} })
  const days = fnDaysLeft(status.fn_expiry, now)
  if (days !== null) {
    if (days < 0) problems.push({ code: 'fn-expired', severity: 'critical', detail: { days } })
    else if (days <= FN_EXPIRY_WARN_DAYS) problems.push({ code: 'fn-expiry', severity: days <= 7 ? 'critical' : 'warning', detail: { days } })
  }
  const oldest = parseTime(status.ofd_oldest_unsent)
  const unsent = num(status.ofd_unsent) ?? 0
  if (oldest && unsent > 0) {
    const age = Math.floor((now.getTime() - oldest.getTime()) / DAY_MS)
    if (age > OFD_BACKLOG_WARN_DAYS) {
      problems.push({ code: 'ofd-backlog', severity: age >= OFD_BLOCK_DAYS - 5 ? 'critical' : 'warning', detail: { days: age, count: unsent, left: OFD_BLOCK_DAYS - age } })
    }
  }
  if (status.paper === false || status.paper_present === false) problems.push({ code: 'no-paper', severity: 'critical', detail: {} })
  const waiting = str(status.waiting)
  if (status.blocked === true || waiting) {
    problems.push({ code: 'queue-blocked', severity: 'critical', detail: { reason: str(status.blocked_reason) ?? waiting ?? '' } })
  }
  const shiftOpened = parseTime(status.shift_opened)
  if (shiftOpened && status.shift_state !== 'closed') {
    const hours = Math.floor((now.getTime() - shiftOpened.getTime()) / 3_600_000)
    if (hours >= SHIFT_LIMIT_HOURS - 2) problems.push({ code: 'shift-old', severity: hours >= SHIFT_LIMIT_HOURS ? 'critical' : 'warning', detail: { hours } })
  }
  const lastError = str(status.last_error)
  if (lastError) problems.push({ code: 'last-error', severity: 'info', detail: { reason: lastError } })
  return problems.sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity])
}

export interface DeviceItem { ID: string | number, NAME?: string, PROPERTY_VALUES?: Record<string, unknown> }

export function kassaFromItem(item: DeviceItem, now: Date): Kassa {
  const values = item.PROPERTY_VALUES ?? {}
  const seen = parseTime(values.SEEN)
  const online = seen !== null && now.getTime() - seen.getTime() <= OFFLINE_AFTER_MS
  const status = parseStatus(values.STATUS)
  return {
    id: str(item.NAME) ?? str(values.KASSA) ?? String(item.ID),
    itemId: Number(item.ID),
    seen,
    online,
    status,
    problems: problemsOf(status, online, now)
  }
}

/** Worst severity first, then most problems, then by id; a kassa with no problem last. */
export function sortFleet(kassas: Kassa[]): Kassa[] {
  const worst = (k: Kassa): number => (k.problems[0] ? SEVERITY_RANK[k.problems[0].severity] : 9)
  return [...kassas].sort((a, b) => worst(a) - worst(b) || b.problems.length - a.problems.length || a.id.localeCompare(b.id))
}

/** For the cashier's picker: online first, then by id. */
export function sortForPicker(kassas: Kassa[]): Kassa[] {
  return [...kassas].sort((a, b) => Number(b.online) - Number(a.online) || a.id.localeCompare(b.id))
}

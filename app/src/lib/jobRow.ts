/** A KASSAJOB item read back: the task, its state, the fiscal result or the error. */
import { parseTime } from './fleet'

export type JobState = 'new' | 'accepted' | 'done' | 'failed' | 'cancelled'
export const JOB_STATES: readonly JobState[] = ['new', 'accepted', 'done', 'failed', 'cancelled']

export interface JobItem {
  ID: string | number
  NAME?: string
  DATE_CREATE?: string
  CREATED_BY?: string | number
  PROPERTY_VALUES?: Record<string, unknown>
}

export interface FiscalResult {
  fiscalParams: Record<string, unknown> | null
  qr: string | null
}

export interface JobError { code: string, message: string }

export interface JobRow {
  jobId: string
  itemId: number
  kassa: string
  state: string
  source: string
  created: Date | null
  createdBy: string
  task: Record<string, unknown> | null
  taskType: string
  /** The task's total as exact decimal text ("" when the task has none). */
  total: string
  result: FiscalResult | null
  error: JobError | null
}

function parseObject(text: unknown): Record<string, unknown> | null {
  if (typeof text !== 'string' || !text) return null
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}

const text = (value: unknown): string => (typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '')

export function jobRowFromItem(item: JobItem): JobRow {
  const values = item.PROPERTY_VALUES ?? {}
  const task = parseObject(values.TASK)
  const result = parseObject(values.RESULT)
  const error = parseObject(values.ERROR)
  return {
    jobId: text(item.NAME),
    itemId: Number(item.ID),
    kassa: text(values.KASSA),
    state: text(values.STATE),
    source: text(values.SOURCE),
    created: parseTime(item.DATE_CREATE),
    createdBy: text(item.CREATED_BY),
    task,
    taskType: text(task?.type),
    total: text(task?.total),
    result: result
      ? {
          fiscalParams: typeof result.fiscalParams === 'object' && result.fiscalParams !== null ? (result.fiscalParams as Record<string, unknown>) : null,
          qr: typeof result.qr === 'string' ? result.qr : null
        }
      : null,
    error: error ? { code: text(error.code), message: text(error.message) } : null
  }
}

/** The FNS check page for a receipt QR string (t=…&s=…&fn=…&i=…&fp=…&n=…). */
export const FNS_CHECK_URL = 'https://check.nalog.ru/'

export function fnsCheckLink(qr: string): string {
  return `${FNS_CHECK_URL}?${qr}`
}

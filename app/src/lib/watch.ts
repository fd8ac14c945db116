/**
 * Live job state without polling: with each write-back batch the daemon publishes
 * `kassa.state` {kassa, jobs: [{job, item, state}, …]} on the app's channel
 * (src/kassa_appliance/bitrix/writeback.py STATE_EVENT_COMMAND); the page re-reads the item
 * of each watched job the event names (the event has no trustworthy sender, the item is the
 * truth) and re-reads every watched job that is not final yet when the pull connection
 * comes back (a missed event).
 */
import type { JobRow } from './jobRow'
import { STATE_EVENT_COMMAND } from './jobs'

export const FINAL_STATES = new Set(['done', 'failed', 'cancelled'])

export interface StateEvent { job: string, kassa?: string, state?: string }

/** The jobs a state event names (none for another command or a malformed event). */
export function stateEventsFrom(command: string, params: unknown): StateEvent[] {
  if (command !== STATE_EVENT_COMMAND || typeof params !== 'object' || params === null) return []
  const record = params as Record<string, unknown>
  const kassa = typeof record.kassa === 'string' ? record.kassa : undefined
  const jobs = Array.isArray(record.jobs) ? record.jobs : []
  const events: StateEvent[] = []
  for (const entry of jobs) {
    if (typeof entry !== 'object' || entry === null) continue
    const one = entry as Record<string, unknown>
    if (typeof one.job !== 'string' || !one.job) continue
    events.push({
      job: one.job,
      ...(kassa !== undefined ? { kassa } : {}),
      ...(typeof one.state === 'string' ? { state: one.state } : {})
    })
  }
  return events
}

export class JobWatcher {
  private readonly watched = new Map<string, JobRow | null>()

  constructor(
    private readonly read: (jobId: string) => Promise<JobRow | null>,
    private readonly onUpdate: (jobId: string, row: JobRow) => void
  ) {}

  watch(jobId: string): void {
    if (!this.watched.has(jobId)) this.watched.set(jobId, null)
  }

  forget(jobId: string): void {
    this.watched.delete(jobId)
  }

  isWatching(jobId: string): boolean {
    return this.watched.has(jobId)
  }

  private async refresh(jobId: string): Promise<void> {
    const row = await this.read(jobId)
    if (!row || !this.watched.has(jobId)) return
    this.watched.set(jobId, row)
    this.onUpdate(jobId, row)
    if (FINAL_STATES.has(row.state)) this.watched.delete(jobId)
  }

  /** A pull message for the app: refresh the watched jobs it names; whether there were any. */
  async onEvent(command: string, params: unknown): Promise<boolean> {
    const named = stateEventsFrom(command, params).filter((event) => this.watched.has(event.job))
    await Promise.all([...new Set(named.map((event) => event.job))].map((job) => this.refresh(job)))
    return named.length > 0
  }

  /** The pull connection is back: re-read every watched job (events may have been missed). */
  async onReconnect(): Promise<void> {
    await Promise.all([...this.watched.keys()].map((jobId) => this.refresh(jobId)))
  }
}

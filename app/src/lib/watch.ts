/**
 * Live job state without polling: the daemon publishes `kassa.job.state` {job, kassa, state}
 * on the app's channel; the page re-reads the item of a watched job when its event comes
 * (the event has no trustworthy sender, the item is the truth) and re-reads every watched
 * job that is not final yet when the pull connection comes back (a missed event).
 */
import type { JobRow } from './jobRow'

export const FINAL_STATES = new Set(['done', 'failed', 'cancelled'])

export interface StateEvent { job: string, kassa?: string, state?: string }

export function stateEventFrom(command: string, params: unknown): StateEvent | null {
  if (command !== 'kassa.job.state' || typeof params !== 'object' || params === null) return null
  const record = params as Record<string, unknown>
  if (typeof record.job !== 'string' || !record.job) return null
  return {
    job: record.job,
    ...(typeof record.kassa === 'string' ? { kassa: record.kassa } : {}),
    ...(typeof record.state === 'string' ? { state: record.state } : {})
  }
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

  /** A pull message for the app: refresh the job it names, if watched. */
  async onEvent(command: string, params: unknown): Promise<boolean> {
    const event = stateEventFrom(command, params)
    if (!event || !this.watched.has(event.job)) return false
    await this.refresh(event.job)
    return true
  }

  /** The pull connection is back: re-read every watched job (events may have been missed). */
  async onReconnect(): Promise<void> {
    await Promise.all([...this.watched.keys()].map((jobId) => this.refresh(jobId)))
  }
}

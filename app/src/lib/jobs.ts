/**
 * Sending a job exactly once. The job id (a UUID) is made on the page before the first
 * attempt; the KASSAJOB item (NAME = job id) and the doorbell go in ONE batch. A second
 * click while an attempt is in flight gets that attempt's promise; a retry after an error
 * or a lost answer first looks for the item and only rings the doorbell again if it is
 * there (the daemon's journal de-duplicates by job id, so a second doorbell is harmless).
 */
import { type BatchAnswer, type Command, type Portal, PortalError } from './portal'
import { JOB_ENTITY } from './storage'
import { type JobItem, type JobRow, jobRowFromItem } from './jobRow'
import type { AtolTask } from './task'

export const DOORBELL_COMMAND = 'kassa.job'
/** The application event the daemon publishes with each write-back batch:
 * PARAMS {kassa, jobs: [{job, item, state}, …]} (writeback.py STATE_EVENT_COMMAND). */
export const STATE_EVENT_COMMAND = 'kassa.state'
export const APP_SOURCE = 'app'

export interface OutgoingJob {
  jobId: string
  kassa: string
  task: AtolTask
  /** Context kept with the job for the journal (user, deal…); REPLY property. */
  reply?: Record<string, unknown>
}

export function newJobId(): string {
  return crypto.randomUUID()
}

export function itemCommand(job: OutgoingJob): Command {
  return ['entity.item.add', {
    ENTITY: JOB_ENTITY,
    NAME: job.jobId,
    PROPERTY_VALUES: {
      KASSA: job.kassa,
      STATE: 'new',
      TASK: JSON.stringify(job.task),
      SOURCE: APP_SOURCE,
      REPLY: job.reply ? JSON.stringify(job.reply) : ''
    }
  }]
}

export function doorbellCommand(job: Pick<OutgoingJob, 'jobId' | 'kassa'>): Command {
  return ['pull.application.event.add', { COMMAND: DOORBELL_COMMAND, PARAMS: { job: job.jobId, kassa: job.kassa } }]
}

/** The stored item of a job, or null. */
export async function findJobItem(portal: Portal, jobId: string): Promise<JobItem | null> {
  const items = await portal.call<JobItem[]>('entity.item.get', { ENTITY: JOB_ENTITY, FILTER: { NAME: jobId }, SORT: { ID: 'ASC' } })
  return items?.[0] ?? null
}

export async function readJob(portal: Portal, jobId: string): Promise<JobRow | null> {
  const item = await findJobItem(portal, jobId)
  return item ? jobRowFromItem(item) : null
}

function firstError(answers: BatchAnswer[], index: number): PortalError | undefined {
  return answers[index]?.error
}

export type SendOutcome = 'sent' | 'already-stored'

/** One attempt. `retry` = an earlier attempt may have stored the item already. */
export async function sendOnce(portal: Portal, job: OutgoingJob, retry: boolean): Promise<SendOutcome> {
  if (retry && (await findJobItem(portal, job.jobId))) {
    const [bell] = await portal.batch([doorbellCommand(job)])
    if (bell?.error) throw bell.error
    return 'already-stored'
  }
  const answers = await portal.batch([itemCommand(job), doorbellCommand(job)])
  const itemError = firstError(answers, 0)
  if (itemError) throw itemError
  // The item is stored: the daemon's 60-second reconciliation finds it even if the doorbell failed.
  return 'sent'
}

/**
 * Sends each job id at most once at a time; remembers the ids that were attempted so any
 * later send of the same id is a retry (looks before it adds).
 */
export class JobSender {
  private readonly inFlight = new Map<string, Promise<SendOutcome>>()
  private readonly attempted = new Set<string>()

  constructor(private readonly portal: Portal) {}

  send(job: OutgoingJob): Promise<SendOutcome> {
    const running = this.inFlight.get(job.jobId)
    if (running) return running
    const retry = this.attempted.has(job.jobId)
    this.attempted.add(job.jobId)
    const attempt = sendOnce(this.portal, job, retry).finally(() => this.inFlight.delete(job.jobId))
    this.inFlight.set(job.jobId, attempt)
    return attempt
  }
}

/**
 * One job on the cashier page: made once (its id fixed at the first send), sent through the
 * JobSender (double clicks and retries never print twice), then followed live through the
 * pull events, with the item re-read on reconnect.
 */
import { computed, onUnmounted, reactive } from 'vue'
import { ctx, onPull } from '../context'
import { type OutgoingJob, JobSender, newJobId, readJob } from '../lib/jobs'
import { JobWatcher, FINAL_STATES } from '../lib/watch'
import type { JobRow } from '../lib/jobRow'
import type { AtolTask } from '../lib/task'
import { type FieldProblem, parseProblems } from '../lib/fieldErrors'

export type Phase = 'idle' | 'sending' | 'unknown' | 'waiting' | 'final'

export function useJob() {
  const state = reactive({
    phase: 'idle' as Phase,
    job: null as OutgoingJob | null,
    row: null as JobRow | null,
    sendError: ''
  })
  const c = ctx()
  const sender = new JobSender(c.portal)
  const watcher = new JobWatcher((id) => readJob(c.portal, id), (id, row) => {
    if (state.job?.jobId !== id) return
    state.row = row
    if (FINAL_STATES.has(row.state)) state.phase = 'final'
  })
  const stop = onPull(
    (command, params) => void watcher.onEvent(command, params).catch(() => undefined),
    () => void watcher.onReconnect().catch(() => undefined)
  )
  onUnmounted(stop)

  async function attempt(): Promise<void> {
    const job = state.job
    if (!job) return
    state.phase = 'sending'
    state.sendError = ''
    try {
      watcher.watch(job.jobId)
      await sender.send(job)
      if (state.phase === 'sending') state.phase = 'waiting'
      // The daemon may have answered before we started listening: read once.
      const row = await readJob(c.portal, job.jobId)
      if (row && state.job?.jobId === job.jobId && (!state.row || row.state !== 'new')) {
        state.row = row
        if (FINAL_STATES.has(row.state)) state.phase = 'final'
      }
    } catch (error) {
      // The outcome is unknown (the item may be stored): only a retry of THIS job is safe.
      state.phase = 'unknown'
      state.sendError = error instanceof Error ? error.message : String(error)
    }
  }

  /** Send a new job (a fresh id), unless one is in flight or its outcome is unknown. */
  async function send(kassa: string, task: AtolTask, reply: Record<string, unknown>): Promise<void> {
    if (state.phase === 'sending' || state.phase === 'waiting' || state.phase === 'unknown') return
    state.job = { jobId: newJobId(), kassa, task, reply }
    state.row = null
    await attempt()
  }

  const retry = (): Promise<void> => attempt()

  function reset(): void {
    if (state.job) watcher.forget(state.job.jobId)
    state.phase = 'idle'
    state.job = null
    state.row = null
    state.sendError = ''
  }

  const problems = computed<FieldProblem[]>(() =>
    state.row?.state === 'failed' && state.row.error ? parseProblems(state.row.error.message) : []
  )
  const busy = computed(() => state.phase === 'sending' || state.phase === 'waiting')

  return { state, send, retry, reset, problems, busy }
}

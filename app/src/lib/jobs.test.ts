import { describe, expect, it } from 'vitest'
import { FakePortal } from './fakePortal'
import { JobSender, itemCommand, newJobId, readJob } from './jobs'
import { JobWatcher, stateEventsFrom } from './watch'
import { PortalError, type Params } from './portal'

function jobStore() {
  const items: { ID: number, NAME: string, PROPERTY_VALUES: Record<string, unknown> }[] = []
  const bells: Params[] = []
  let failNextAnswer = false
  const portal = new FakePortal({
    'entity.item.add': (p) => {
      items.push({ ID: items.length + 1, NAME: String(p.NAME), PROPERTY_VALUES: { ...(p.PROPERTY_VALUES as Record<string, unknown>) } })
      if (failNextAnswer) {
        failNextAnswer = false
        throw new Error('answer lost') // stored, but the page never hears back
      }
      return items.length
    },
    'entity.item.get': (p) => items.filter((i) => i.NAME === (p.FILTER as Params).NAME),
    'pull.application.event.add': (p) => {
      bells.push(p)
      return true
    }
  })
  return { items, bells, portal, loseNextAnswer: () => { failNextAnswer = true } }
}

const job = { jobId: '11111111-2222-4333-8444-555555555555', kassa: 'kassa-1', task: { type: 'sell', total: 1 }, reply: { user: 17 } }

describe('sending a job exactly once', () => {
  it('writes the item and rings the doorbell in ONE batch', async () => {
    const { portal, items, bells } = jobStore()
    await expect(new JobSender(portal).send(job)).resolves.toBe('sent')
    expect(portal.requests).toHaveLength(1)
    expect(portal.requests[0]?.kind).toBe('batch')
    expect(portal.methods()).toEqual(['entity.item.add', 'pull.application.event.add'])
    expect(items[0]).toMatchObject({ NAME: job.jobId, PROPERTY_VALUES: { KASSA: 'kassa-1', STATE: 'new', SOURCE: 'app', TASK: '{"type":"sell","total":1}', REPLY: '{"user":17}' } })
    expect(bells).toEqual([{ COMMAND: 'kassa.job', PARAMS: { job: job.jobId, kassa: 'kassa-1' } }])
  })
  it('a double click sends once', async () => {
    const { portal, items } = jobStore()
    const sender = new JobSender(portal)
    const [a, b] = await Promise.all([sender.send(job), sender.send(job)])
    expect([a, b]).toEqual(['sent', 'sent'])
    expect(items).toHaveLength(1)
  })
  it('a retry after a lost answer looks first and does not add again', async () => {
    const { portal, items, bells, loseNextAnswer } = jobStore()
    const sender = new JobSender(portal)
    loseNextAnswer()
    await expect(sender.send(job)).rejects.toThrow('answer lost')
    await expect(sender.send(job)).resolves.toBe('already-stored')
    expect(items).toHaveLength(1)
    expect(bells).toHaveLength(1) // the lost batch never got to its doorbell; the retry rang it
  })
  it('a retry of a job that never arrived adds it', async () => {
    const { portal, items } = jobStore()
    const failing = new FakePortal({ 'entity.item.add': () => { throw new PortalError('QUERY_LIMIT_EXCEEDED', 'Too many requests') } })
    const sender = new JobSender(failing)
    await expect(sender.send(job)).rejects.toThrow(/Too many/)
    const again = new JobSender(portal)
    await expect(again.send(job)).resolves.toBe('sent')
    expect(items).toHaveLength(1)
  })
  it('makes RFC 4122 ids', () => {
    expect(newJobId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(itemCommand(job)[0]).toBe('entity.item.add')
  })
})

describe('live job state', () => {
  it('re-reads a watched job on its event and stops at a final state', async () => {
    const { portal, items } = jobStore()
    await new JobSender(portal).send(job)
    const updates: string[] = []
    const watcher = new JobWatcher((id) => readJob(portal, id), (_id, row) => updates.push(row.state))
    watcher.watch(job.jobId)
    items[0]!.PROPERTY_VALUES.STATE = 'accepted'
    expect(await watcher.onEvent('kassa.state', { kassa: 'k1', jobs: [{ job: job.jobId, item: 1, state: 'accepted' }] })).toBe(true)
    items[0]!.PROPERTY_VALUES.STATE = 'done'
    await watcher.onEvent('kassa.state', { kassa: 'k1', jobs: [{ job: 'other', item: 2, state: 'done' }, { job: job.jobId, item: 1, state: 'done' }] })
    expect(updates).toEqual(['accepted', 'done'])
    expect(watcher.isWatching(job.jobId)).toBe(false)
    expect(await watcher.onEvent('kassa.state', { kassa: 'k1', jobs: [{ job: 'other', item: 2 }] })).toBe(false)
    expect(await watcher.onEvent('kassa.job', { job: job.jobId })).toBe(false)
  })
  it('catches a missed event on reconnect', async () => {
    const { portal, items } = jobStore()
    await new JobSender(portal).send(job)
    const updates: string[] = []
    const watcher = new JobWatcher((id) => readJob(portal, id), (_id, row) => updates.push(row.state))
    watcher.watch(job.jobId)
    items[0]!.PROPERTY_VALUES.STATE = 'failed'
    await watcher.onReconnect()
    expect(updates).toEqual(['failed'])
  })
  it('reads events defensively', () => {
    expect(stateEventsFrom('kassa.state', null)).toEqual([])
    expect(stateEventsFrom('kassa.state', { jobs: 5 })).toEqual([])
    expect(stateEventsFrom('kassa.state', { jobs: [{ job: 5 }, null, { job: '' }] })).toEqual([])
    expect(stateEventsFrom('kassa.job.state', { kassa: 'k', jobs: [{ job: 'a' }] })).toEqual([])
    expect(stateEventsFrom('kassa.state', { kassa: 'k', jobs: [{ job: 'a', item: 3, state: 'done' }] }))
      .toEqual([{ job: 'a', kassa: 'k', state: 'done' }])
  })
})

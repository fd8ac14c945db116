import { describe, expect, it } from 'vitest'
import { fnDaysLeft, kassaFromItem, parseTime, problemsOf, sortFleet, sortForPicker } from './fleet'

const now = new Date('2026-12-01T12:00:00Z')
const item = (name: string, seen: string, status: Record<string, unknown>) => ({ ID: name.length, NAME: name, PROPERTY_VALUES: { KASSA: name, SEEN: seen, STATUS: JSON.stringify(status) } })

describe('fleet problem badges', () => {
  it('reads the daemon\'s SEEN format', () => {
    expect(parseTime('2026-12-01T15:00:00+0300')?.toISOString()).toBe('2026-12-01T12:00:00.000Z')
    expect(parseTime('nonsense')).toBeNull()
  })
  it('marks a silent kassa offline', () => {
    expect(kassaFromItem(item('a', '2026-12-01T11:55:00+0000', {}), now).online).toBe(true)
    const stale = kassaFromItem(item('a', '2026-12-01T11:40:00+0000', {}), now)
    expect(stale.online).toBe(false)
    expect(stale.problems[0]).toMatchObject({ code: 'offline', severity: 'critical' })
  })
  it('warns of an FN that expires within 30 days, critical within 7', () => {
    expect(problemsOf({ fn_expiry: '2026-12-11T12:00:00Z' }, true, now)).toEqual([{ code: 'fn-expiry', severity: 'warning', detail: { days: 10 } }])
    expect(problemsOf({ fn_expiry: '2026-12-05' }, true, now)[0]?.severity).toBe('critical')
    expect(problemsOf({ fn_expiry: '2027-06-01' }, true, now)).toEqual([])
    expect(problemsOf({ fn_expiry: '2026-11-01' }, true, now)[0]?.code).toBe('fn-expired')
    // A date (what the heartbeat sends) counts calendar days, whatever the hour of `now`.
    const evening = new Date(2026, 11, 1, 23, 30)
    expect(fnDaysLeft('2026-12-11', evening)).toBe(10)
    expect(fnDaysLeft('2026-12-01', evening)).toBe(0)
    expect(fnDaysLeft('2026-11-30', new Date(2026, 11, 1, 0, 5))).toBe(-1)
    expect(problemsOf({ fn_expiry: '2026-12-11' }, true, evening)[0]?.detail).toEqual({ days: 10 })
  })
  it('warns of an OFD backlog older than 3 days', () => {
    expect(problemsOf({ ofd_unsent: 4, ofd_oldest_unsent: '2026-11-30T00:00:00Z' }, true, now)).toEqual([])
    expect(problemsOf({ ofd_unsent: 4, ofd_oldest_unsent: '2026-11-25T00:00:00Z' }, true, now)[0]).toMatchObject({ code: 'ofd-backlog', severity: 'warning', detail: { days: 6, count: 4 } })
    expect(problemsOf({ ofd_unsent: 4, ofd_oldest_unsent: '2026-11-05T00:00:00Z' }, true, now)[0]?.severity).toBe('critical')
    expect(problemsOf({ ofd_unsent: 0, ofd_oldest_unsent: '2026-11-05T00:00:00Z' }, true, now)).toEqual([])
  })
  it('shows no paper and a blocked queue (with its reason), worst first', () => {
    const problems = problemsOf({ last_error: 'timeout', paper: false, waiting: 'the shift is older than 24 h' }, true, now)
    expect(problems.map((p) => p.code)).toEqual(['no-paper', 'queue-blocked', 'last-error'])
    expect(problems[1]?.detail.reason).toBe('the shift is older than 24 h')
  })
  it('sorts the fleet worst first and the picker online first', () => {
    const ok = kassaFromItem(item('ok', '2026-12-01T11:59:00+0000', {}), now)
    const warn = kassaFromItem(item('warn', '2026-12-01T11:59:00+0000', { fn_expiry: '2026-12-20' }), now)
    const down = kassaFromItem(item('down', '2026-11-01T11:59:00+0000', {}), now)
    expect(sortFleet([ok, warn, down]).map((k) => k.id)).toEqual(['down', 'warn', 'ok'])
    expect(sortForPicker([down, warn, ok]).map((k) => k.id)).toEqual(['ok', 'warn', 'down'])
  })
  it('tolerates a STATUS that is not JSON', () => {
    const k = kassaFromItem({ ID: 3, NAME: 'x', PROPERTY_VALUES: { STATUS: '{oops', SEEN: '' } }, now)
    expect(k.status).toEqual({})
    expect(k.online).toBe(false)
  })
})

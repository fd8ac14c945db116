import { describe, expect, it } from 'vitest'
import { salesTotals, sortedEntries } from './sales'
import { jobRowFromItem } from './jobRow'

let id = 0
const row = (kassa: string, created: string, task: Record<string, unknown>, state = 'done') =>
  jobRowFromItem({ ID: ++id, NAME: `j${id}`, DATE_CREATE: created, PROPERTY_VALUES: { KASSA: kassa, STATE: state, TASK: JSON.stringify(task) } })

describe('sales at a glance', () => {
  it('sums per day, kassa and payment type in kopecks, cash net of change, returns negative', () => {
    const rows = [
      row('k1', '2026-12-01T10:00:00+03:00', { type: 'sell', total: 145.6, payments: [{ type: 'cash', sum: 500 }] }),
      row('k1', '2026-12-01T23:30:00+03:00', { type: 'sell', total: 1000, payments: [{ type: 'cash', sum: 500 }, { type: 'electronically', sum: 600 }] }),
      row('k2', '2026-12-02T09:00:00+03:00', { type: 'sellReturn', total: 0.3, payments: [{ type: 'electronically', sum: 0.3 }] }),
      row('k2', '2026-12-02T09:00:00+03:00', { type: 'sell', total: 99, payments: [{ type: 'cash', sum: 99 }] }, 'failed'),
      row('k2', '2026-12-02T09:00:00+03:00', { type: 'cashIn', cashSum: 1000 })
    ]
    const totals = salesTotals(rows, 180)
    expect(totals.receipts).toBe(3)
    expect(totals.total).toBe(114530n)
    expect(sortedEntries(totals.byDay)).toEqual([['2026-12-01', 114560n], ['2026-12-02', -30n]])
    expect(sortedEntries(totals.byKassa)).toEqual([['k1', 114560n], ['k2', -30n]])
    expect(sortedEntries(totals.byPayment)).toEqual([['cash', 54560n], ['electronically', 59970n]])
  })
})

import { describe, expect, it } from 'vitest'
import { dayStart, journalFilter, journalRequest, nextDay, pageCount } from './journal'
import { toCsv, csvCell } from './csv'
import { fnsCheckLink, jobRowFromItem } from './jobRow'

describe('journal filters → entity.item.get', () => {
  it('maps every filter to its field', () => {
    expect(journalFilter({ kassa: 'kassa-1', state: 'failed', cashier: '17', type: 'sellReturn', source: 'app', from: '2026-11-01', to: '2026-11-30' }, 180)).toEqual({
      PROPERTY_KASSA: 'kassa-1',
      PROPERTY_STATE: 'failed',
      PROPERTY_SOURCE: 'app',
      CREATED_BY: '17',
      '%PROPERTY_TASK': '"type":"sellReturn"',
      '>=DATE_CREATE': '2026-11-01T00:00:00+03:00',
      '<DATE_CREATE': '2026-12-01T00:00:00+03:00'
    })
  })
  it('leaves out empty filters and bad dates', () => {
    expect(journalFilter({ kassa: '', from: '1.11.2026' })).toEqual({})
  })
  it('pages by 50, newest first', () => {
    expect(journalRequest({}, 3)).toEqual({ ENTITY: 'KASSAJOB', SORT: { ID: 'DESC' }, FILTER: {}, start: 100 })
    expect(journalRequest({}, 0).start).toBe(0)
    expect(pageCount(120)).toBe(3)
    expect(pageCount(0)).toBe(1)
  })
  it('handles dates', () => {
    expect(nextDay('2026-12-31')).toBe('2027-01-01')
    expect(dayStart('2026-01-01', -330)).toBe('2026-01-01T00:00:00-05:30')
  })
})

const doneItem = {
  ID: '7', NAME: '0f7c6a1e-0000-4000-8000-000000000001', DATE_CREATE: '2026-12-01T10:00:00+03:00', CREATED_BY: '17',
  PROPERTY_VALUES: {
    KASSA: 'kassa-1', STATE: 'done', SOURCE: 'app',
    TASK: JSON.stringify({ type: 'sell', items: [], payments: [{ type: 'cash', sum: 500 }], total: 145.6 }),
    RESULT: JSON.stringify({ fiscalParams: { fiscalDocumentNumber: 71, fiscalDocumentSign: '1494325660', fnNumber: '9999078900000961' }, qr: 't=20261201T1000&s=145.60&fn=9999078900000961&i=71&fp=1494325660&n=1' })
  }
}
const failedItem = {
  ID: '8', NAME: 'job; "two"', DATE_CREATE: '2026-12-01T11:00:00+03:00', CREATED_BY: '1',
  PROPERTY_VALUES: { KASSA: 'kassa-2', STATE: 'failed', SOURCE: 'bitrix', TASK: '{"type":"sell","total":5}', ERROR: JSON.stringify({ code: 'invalid-task', message: 'items[0].price: -1 is negative' }) }
}

describe('journal rows and CSV', () => {
  it('reads an item', () => {
    const row = jobRowFromItem(doneItem)
    expect(row).toMatchObject({ itemId: 7, kassa: 'kassa-1', state: 'done', taskType: 'sell', total: '145.6', createdBy: '17' })
    expect(row.result?.fiscalParams?.fiscalDocumentNumber).toBe(71)
    expect(fnsCheckLink(row.result?.qr ?? '')).toMatch(/\?t=20261201T1000&s=145\.60/)
  })
  it('exports CSV with quoting, a BOM and defused formulas', () => {
    const csv = toCsv([jobRowFromItem(doneItem), jobRowFromItem(failedItem)])
    const lines = csv.replace('\ufeff', '').trimEnd().split('\r\n')
    expect(csv.startsWith('\ufeff')).toBe(true)
    expect(lines[0]).toBe('job;created;kassa;type;state;total;cashier;source;fd_number;fiscal_sign;fn_number;error')
    expect(lines[1]).toBe('0f7c6a1e-0000-4000-8000-000000000001;2026-12-01T07:00:00.000Z;kassa-1;sell;done;145.6;17;app;71;1494325660;9999078900000961;')
    expect(lines[2]).toBe('"job; ""two""";2026-12-01T08:00:00.000Z;kassa-2;sell;failed;5;1;bitrix;;;;invalid-task: items[0].price: -1 is negative')
    expect(csvCell('=HYPERLINK("x")')).toBe('"\'=HYPERLINK(""x"")"')
    expect(csvCell('-5.50')).toBe('-5.50')
  })
})

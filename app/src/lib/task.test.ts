import { describe, expect, it } from 'vitest'
import { type PositionDraft, type ReceiptDraft, buildCashTask, buildReceipt, buildServiceTask, emptyPosition, returnDraftFrom } from './task'
import { TaskProblems } from './fieldErrors'

const pos = (over: Partial<PositionDraft>): PositionDraft => ({ ...emptyPosition('vat22'), name: 'Кофе', price: '145.60', ...over })
const draft = (over: Partial<ReceiptDraft>): ReceiptDraft => ({ kind: 'sell', positions: [pos({})], cash: '', card: '', buyer: '', electronically: false, ...over })

function problemsOf(fn: () => unknown): { path: string, message: string }[] {
  try {
    fn()
  } catch (error) {
    if (error instanceof TaskProblems) return error.problems
    throw error
  }
  throw new Error('expected problems')
}

describe('sell receipts', () => {
  it('computes amounts in kopecks and emits exact JSON numbers', () => {
    const { task, totals } = buildReceipt(draft({ positions: [pos({ quantity: '3' }), pos({ name: 'Чай', price: '0.10', quantity: '3' })], card: '437.10' }))
    expect(totals.total).toBe(43710n)
    expect(JSON.stringify(task)).toContain('"amount":436.8')
    expect(JSON.stringify(task)).toContain('"amount":0.3,')
    expect(task.total).toBe(437.1)
    expect(task.payments).toEqual([{ type: 'electronically', sum: 437.1 }])
    expect(task.items).toHaveLength(2)
    expect((task.items as Record<string, unknown>[])[0]).toMatchObject({ type: 'position', measurementUnit: 'piece', tax: { type: 'vat22' }, paymentMethod: 'fullPayment', paymentObject: 'commodity' })
  })
  it('gives change from cash and sends the cash handed over', () => {
    const { task, totals } = buildReceipt(draft({ cash: '500' }))
    expect(totals.change).toBe(35440n)
    expect(task.payments).toEqual([{ type: 'cash', sum: 500 }])
    expect(task.total).toBe(145.6)
  })
  it('takes a mixed payment: card part, cash rest with change', () => {
    const { task, totals } = buildReceipt(draft({ positions: [pos({ price: '1000' })], card: '600', cash: '500' }))
    expect(totals).toMatchObject({ total: 100000n, card: 60000n, cash: 50000n, change: 10000n })
    expect(task.payments).toEqual([{ type: 'cash', sum: 500 }, { type: 'electronically', sum: 600 }])
  })
  it('applies a line discount', () => {
    const { task } = buildReceipt(draft({ positions: [pos({ price: '100', quantity: '2', discount: '15.50' })], card: '184.50' }))
    expect((task.items as Record<string, unknown>[])[0]).toMatchObject({ amount: 184.5, infoDiscountAmount: 15.5, price: 100, quantity: 2 })
  })
  it('names the field of each problem', () => {
    const problems = problemsOf(() => buildReceipt(draft({ positions: [pos({ name: '', price: 'x' }), pos({ quantity: '0' })], cash: '' })))
    expect(problems.map((p) => p.path)).toEqual(['items.0.name', 'items.0.price', 'items.1.quantity'])
  })
  it('refuses too little money and card beyond the total', () => {
    expect(problemsOf(() => buildReceipt(draft({ cash: '100' })))[0]?.path).toBe('payments')
    expect(problemsOf(() => buildReceipt(draft({ card: '200' })))[0]).toMatchObject({ path: 'payments.card', message: expect.stringContaining('only cash') })
    expect(problemsOf(() => buildReceipt(draft({ positions: [pos({ discount: '200' })], cash: '1' })))[0]?.path).toBe('items.0.infoDiscountAmount')
  })
  it('sends electronic-only receipts to the buyer', () => {
    expect(problemsOf(() => buildReceipt(draft({ card: '145.60', electronically: true })))[0]?.path).toBe('clientInfo.emailOrPhone')
    const { task } = buildReceipt(draft({ card: '145.60', electronically: true, buyer: '8 (916) 123-45-67' }))
    expect(task).toMatchObject({ electronically: true, clientInfo: { emailOrPhone: '+79161234567' } })
    expect(problemsOf(() => buildReceipt(draft({ card: '145.60', buyer: 'nobody' })))[0]?.path).toBe('clientInfo.emailOrPhone')
  })
  it('carries operator, taxation and place from the settings', () => {
    const { task } = buildReceipt(draft({ card: '145.60', operator: { name: 'Иванов И.И.', vatin: '500100732259' }, taxationType: 'usnIncome', paymentsPlace: 'Магазин' }))
    expect(task).toMatchObject({ operator: { name: 'Иванов И.И.', vatin: '500100732259' }, taxationType: 'usnIncome', paymentsPlace: 'Магазин' })
  })
})

describe('returns', () => {
  const sold = buildReceipt(draft({ positions: [pos({ price: '1000' }), pos({ name: 'Чай', price: '99.99', quantity: '0.333', unit: 'kilogram' })], card: '600', cash: '1000', buyer: 'a@b.ru' })).task
  it('starts from a sold receipt with the money paid back the way it came', () => {
    const back = returnDraftFrom(sold)
    expect(back.kind).toBe('sellReturn')
    expect(back.positions.map((p) => [p.name, p.price, p.quantity, p.unit])).toEqual([['Кофе', '1000', '1', 'piece'], ['Чай', '99.99', '0.333', 'kilogram']])
    expect(back.card).toBe('600.00')
    expect(back.cash).toBe('433.30') // 1033.30 total − 600 by card; the change is not paid back
    expect(back.buyer).toBe('a@b.ru')
    const { task } = buildReceipt(back)
    expect(task).toMatchObject({ type: 'sellReturn', total: 1033.3, payments: [{ type: 'cash', sum: 433.3 }, { type: 'electronically', sum: 600 }] })
  })
  it('pays back exactly the total', () => {
    const back = { ...returnDraftFrom(sold), cash: '1000' }
    expect(problemsOf(() => buildReceipt(back))[0]).toMatchObject({ path: 'payments', message: expect.stringContaining('exactly') })
  })
  it('returns only a sell', () => {
    expect(() => returnDraftFrom({ type: 'sellReturn' })).toThrow(TaskProblems)
  })
})

describe('cash and service tasks', () => {
  it('builds cash in and out', () => {
    expect(buildCashTask('cashIn', '1000,50')).toEqual({ type: 'cashIn', cashSum: 1000.5 })
    expect(buildCashTask('cashOut', '5', { name: 'Петров' })).toEqual({ type: 'cashOut', cashSum: 5, operator: { name: 'Петров' } })
    expect(() => buildCashTask('cashIn', '0')).toThrow(/cashSum: is 0/)
  })
  it('builds shift, X report and copy tasks', () => {
    expect(buildServiceTask('reportX')).toEqual({ type: 'reportX' })
    expect(buildServiceTask('openShift', { name: 'Петров', vatin: '500100732259' })).toEqual({ type: 'openShift', operator: { name: 'Петров', vatin: '500100732259' } })
    expect(buildServiceTask('printLastReceiptCopy', { name: 'Петров' })).toEqual({ type: 'printLastReceiptCopy' })
  })
})

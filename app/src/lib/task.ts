/**
 * Atol JSON tasks built from what the cashier typed. All sums are integer kopecks until the
 * task object is made; every problem names its field ("items.0.price") so the form shows it
 * where it belongs (see fieldErrors.ts). The daemon checks the task again
 * (kassa_appliance.fiscal.receipt); these checks only save a round trip.
 */
import {
  AmountError, type Kopecks, type Milli, formatKopecks, kopecksToJson, lineKopecks,
  milliToJson, parseKopecks, parseMilli, roundToKopecks, sumKopecks
} from './money'
import { type FieldProblem, TaskProblems } from './fieldErrors'

export const VAT_TYPES = ['none', 'vat0', 'vat5', 'vat7', 'vat10', 'vat22', 'vat105', 'vat107', 'vat110', 'vat122', 'vat20', 'vat120'] as const
export type VatType = (typeof VAT_TYPES)[number]
export const TAXATION_TYPES = ['osn', 'usnIncome', 'usnIncomeOutcome', 'esn', 'patent'] as const
export type TaxationType = (typeof TAXATION_TYPES)[number]
export const UNITS = ['piece', 'gram', 'kilogram', 'liter', 'milliliter', 'meter', 'squareMeter', 'hour', 'day', 'otherUnits'] as const
export type Unit = (typeof UNITS)[number]
export const PAYMENT_METHODS = ['fullPayment', 'fullPrepayment', 'prepayment', 'advance', 'partialPayment', 'credit', 'creditPayment'] as const
export type PaymentMethod = (typeof PAYMENT_METHODS)[number]
export const PAYMENT_OBJECTS = ['commodity', 'service', 'job', 'excise', 'payment', 'agentCommission', 'composite', 'another'] as const
export type PaymentObject = (typeof PAYMENT_OBJECTS)[number]
export const RECEIPT_KINDS = ['sell', 'sellReturn'] as const
export type ReceiptKind = (typeof RECEIPT_KINDS)[number]

export interface PositionDraft {
  name: string
  price: string
  quantity: string
  unit: Unit
  vat: VatType
  paymentMethod: PaymentMethod
  paymentObject: PaymentObject
  /** Discount on the whole line in roubles ("" for none). */
  discount: string
}

export interface Operator { name: string, vatin?: string }

export interface ReceiptDraft {
  kind: ReceiptKind
  positions: PositionDraft[]
  /** Cash handed over ("" for none); may exceed what is due: the rest is change. */
  cash: string
  /** Card payment ("" for none); card + cash = a mixed payment. */
  card: string
  /** Buyer's e-mail or phone ("" for none). */
  buyer: string
  electronically: boolean
  operator?: Operator
  taxationType?: TaxationType
  paymentsPlace?: string
}

export interface ReceiptTotals { total: Kopecks, cash: Kopecks, card: Kopecks, change: Kopecks }

export type AtolTask = Record<string, unknown> & { type: string }

export function emptyPosition(vat: VatType = 'none'): PositionDraft {
  return { name: '', price: '', quantity: '1', unit: 'piece', vat, paymentMethod: 'fullPayment', paymentObject: 'commodity', discount: '' }
}

interface LineResult { amount: Kopecks, item: AtolTask }

function collect<T>(problems: FieldProblem[], path: string, parse: () => T): T | undefined {
  try {
    return parse()
  } catch (error) {
    if (!(error instanceof AmountError)) throw error
    problems.push({ path, message: error.message.replace(/^[^:]+:\s*/, '') })
    return undefined
  }
}

function buildLine(position: PositionDraft, index: number, problems: FieldProblem[]): LineResult | undefined {
  const at = `items.${index}`
  const name = position.name.trim()
  if (!name) problems.push({ path: `${at}.name`, message: 'required; expected the name printed on the receipt' })
  else if (name.length > 128) problems.push({ path: `${at}.name`, message: `${name.length} characters; expected at most 128` })
  const price = collect(problems, `${at}.price`, () => parseKopecks(position.price, 'price'))
  const quantity = collect<Milli>(problems, `${at}.quantity`, () => parseMilli(position.quantity, 'quantity'))
  const discount = position.discount.trim() === '' ? 0n : collect(problems, `${at}.infoDiscountAmount`, () => parseKopecks(position.discount, 'discount'))
  if (price === undefined || quantity === undefined || discount === undefined || !name) return undefined
  const gross = lineKopecks(price, quantity)
  if (discount > gross) {
    problems.push({ path: `${at}.infoDiscountAmount`, message: `discount ${formatKopecks(discount)} exceeds the line sum ${formatKopecks(gross)}` })
    return undefined
  }
  const amount = gross - discount
  const item: AtolTask = {
    type: 'position',
    name,
    price: kopecksToJson(price),
    quantity: milliToJson(quantity),
    amount: kopecksToJson(amount),
    measurementUnit: position.unit,
    paymentMethod: position.paymentMethod,
    paymentObject: position.paymentObject,
    tax: { type: position.vat }
  }
  if (discount > 0n) item.infoDiscountAmount = kopecksToJson(discount)
  return { amount, item }
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const PHONE_RE = /^\+?\d{10,15}$/

/** "+7 (916) 123-45-67" → "+79161234567"; an e-mail stays as typed (trimmed). */
export function normaliseBuyer(text: string): string {
  const value = text.trim()
  if (value.includes('@')) return value
  const digits = value.replace(/[\s()-]/g, '')
  if (/^8\d{10}$/.test(digits)) return '+7' + digits.slice(1)
  return digits
}

/** The totals of a draft (cash, card, change) without building the task; throws TaskProblems. */
export function receiptTotals(draft: ReceiptDraft): ReceiptTotals {
  return buildReceipt(draft).totals
}

/** A sell or sellReturn task from the draft; throws TaskProblems listing every problem. */
export function buildReceipt(draft: ReceiptDraft): { task: AtolTask, totals: ReceiptTotals } {
  const problems: FieldProblem[] = []
  if (draft.positions.length === 0) problems.push({ path: 'items', message: 'no position; expected at least one' })
  const lines = draft.positions.map((p, i) => buildLine(p, i, problems))
  const cash = draft.cash.trim() === '' ? 0n : collect(problems, 'payments.cash', () => parseKopecks(draft.cash, 'cash'))
  const card = draft.card.trim() === '' ? 0n : collect(problems, 'payments.card', () => parseKopecks(draft.card, 'card'))
  const buyer = normaliseBuyer(draft.buyer)
  if (buyer && !EMAIL_RE.test(buyer) && !PHONE_RE.test(buyer)) {
    problems.push({ path: 'clientInfo.emailOrPhone', message: `"${draft.buyer}" is neither an e-mail nor a phone; expected a@b.ru or +79161234567` })
  }
  if (draft.electronically && !buyer) {
    problems.push({ path: 'clientInfo.emailOrPhone', message: 'required when the receipt is electronic only; expected the buyer\'s e-mail or phone' })
  }
  const total = sumKopecks(lines.map((line) => line?.amount ?? 0n))
  if (cash !== undefined && card !== undefined && lines.every((line) => line !== undefined) && draft.positions.length > 0) {
    if (card > total) {
      problems.push({ path: 'payments.card', message: `card ${formatKopecks(card)} exceeds the total ${formatKopecks(total)}; only cash may exceed it (change is given in cash)` })
    } else if (cash + card < total) {
      problems.push({ path: 'payments', message: `${formatKopecks(cash + card)} paid is less than the total ${formatKopecks(total)}` })
    } else if (draft.kind === 'sellReturn' && cash + card !== total) {
      problems.push({ path: 'payments', message: `a return pays back exactly the total ${formatKopecks(total)}` })
    }
  }
  if (problems.length > 0 || cash === undefined || card === undefined) throw new TaskProblems(problems)
  const payments: AtolTask[] = []
  if (cash > 0n) payments.push({ type: 'cash', sum: kopecksToJson(cash) })
  if (card > 0n) payments.push({ type: 'electronically', sum: kopecksToJson(card) })
  if (payments.length === 0) payments.push({ type: 'cash', sum: 0 }) // a zero-total receipt
  const task: AtolTask = {
    type: draft.kind,
    items: lines.map((line) => line!.item),
    payments,
    total: kopecksToJson(total)
  }
  if (draft.taxationType) task.taxationType = draft.taxationType
  if (draft.electronically) task.electronically = true
  if (buyer) task.clientInfo = { emailOrPhone: buyer }
  if (draft.operator?.name) task.operator = operatorJson(draft.operator)
  if (draft.paymentsPlace) task.paymentsPlace = draft.paymentsPlace
  return { task, totals: { total, cash, card, change: cash + card - total } }
}

function operatorJson(operator: Operator): Record<string, string> {
  return operator.vatin ? { name: operator.name, vatin: operator.vatin } : { name: operator.name }
}

/** Cash in or out of the drawer. */
export function buildCashTask(kind: 'cashIn' | 'cashOut', sum: string, operator?: Operator): AtolTask {
  const problems: FieldProblem[] = []
  const value = collect(problems, 'cashSum', () => parseKopecks(sum, 'sum'))
  if (value === 0n) problems.push({ path: 'cashSum', message: 'is 0; expected a sum greater than 0' })
  if (problems.length > 0 || value === undefined) throw new TaskProblems(problems)
  const task: AtolTask = { type: kind, cashSum: kopecksToJson(value) }
  if (operator?.name) task.operator = operatorJson(operator)
  return task
}

export type ServiceKind = 'openShift' | 'closeShift' | 'reportX' | 'printLastReceiptCopy'

/** Shift and report tasks, and a copy of the last receipt. */
export function buildServiceTask(kind: ServiceKind, operator?: Operator): AtolTask {
  const task: AtolTask = { type: kind }
  if (operator?.name && kind !== 'printLastReceiptCopy') task.operator = operatorJson(operator)
  return task
}

/** Decimal text of a JSON number from a stored task (exact for money-sized values). */
function decimalText(value: unknown): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  if (typeof value === 'string') return value
  return ''
}

const asString = (value: unknown, fallback: string): string => (typeof value === 'string' ? value : fallback)

function oneOf<T extends string>(values: readonly T[], value: unknown, fallback: T): T {
  return (values as readonly unknown[]).includes(value) ? (value as T) : fallback
}

/**
 * A return draft started from a sold receipt's task: the same positions and the money paid
 * back the way it came (card first, up to what was paid by card; the rest in cash).
 */
export function returnDraftFrom(sold: AtolTask): ReceiptDraft {
  if (sold.type !== 'sell') throw new TaskProblems([{ path: 'type', message: `a ${sold.type} cannot be returned; expected a sell receipt` }])
  const items = Array.isArray(sold.items) ? (sold.items as Record<string, unknown>[]) : []
  const positions: PositionDraft[] = items.filter((item) => item.type === 'position').map((item) => ({
    name: asString(item.name, ''),
    price: decimalText(item.price),
    quantity: decimalText(item.quantity),
    unit: oneOf(UNITS, item.measurementUnit, 'piece'),
    vat: oneOf(VAT_TYPES, (item.tax as Record<string, unknown> | undefined)?.type, 'none'),
    paymentMethod: oneOf(PAYMENT_METHODS, item.paymentMethod, 'fullPayment'),
    paymentObject: oneOf(PAYMENT_OBJECTS, item.paymentObject, 'commodity'),
    discount: item.infoDiscountAmount === undefined ? '' : decimalText(item.infoDiscountAmount)
  }))
  const draft: ReceiptDraft = { kind: 'sellReturn', positions, cash: '', card: '', buyer: '', electronically: false }
  const client = sold.clientInfo as Record<string, unknown> | undefined
  if (typeof client?.emailOrPhone === 'string') draft.buyer = client.emailOrPhone
  if (typeof sold.taxationType === 'string') draft.taxationType = oneOf(TAXATION_TYPES, sold.taxationType, 'osn')
  const total = sumKopecks(positions.map((p, i) => {
    const line = buildLine(p, i, [])
    return line?.amount ?? 0n
  }))
  const payments = Array.isArray(sold.payments) ? (sold.payments as Record<string, unknown>[]) : []
  const paidByCard = sumKopecks(payments.filter((p) => p.type !== 'cash').map((p) => roundToKopecks(decimalText(p.sum) || '0')))
  const card = paidByCard < total ? paidByCard : total
  if (card > 0n) draft.card = formatKopecks(card)
  if (total - card > 0n) draft.cash = formatKopecks(total - card)
  return draft
}

/**
 * Money and quantities as exact integers: kopecks and thousandths (the register's
 * 3 decimals of quantity). Input is decimal text typed by a person ("1 234,50"); output is
 * decimal text; a JSON number is made only at the very end (see {@link toJsonNumber}).
 * No float arithmetic ever touches a kopeck.
 */

export type Kopecks = bigint
export type Milli = bigint

export const MAX_KOPECKS: Kopecks = 999_999_999_999n // 9 999 999 999.99, the daemon's MAX_MONEY
export const MAX_MILLI: Milli = 9_999_999_999n // 9 999 999.999, the daemon's MAX_QUANTITY

export class AmountError extends Error {}

/** Decimal text with at most `places` decimals → an integer scaled by 10^places. */
export function parseScaled(text: string, places: number, what = 'value'): bigint {
  const cleaned = text.replace(/[\s\u00a0']/g, '').replace(',', '.')
  const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(cleaned)
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) {
    throw new AmountError(`${what}: "${text}" is not a number; expected digits such as 1234.50`)
  }
  const [, sign, whole = '', fraction = ''] = match
  if (fraction.length > places) {
    throw new AmountError(`${what}: "${text}" has more than ${places} decimals`)
  }
  const scaled = BigInt((whole || '0') + fraction.padEnd(places, '0'))
  return sign === '-' ? -scaled : scaled
}

export function parseKopecks(text: string, what = 'sum'): Kopecks {
  const value = parseScaled(text, 2, what)
  if (value < 0n) throw new AmountError(`${what}: ${text} is negative; expected 0 or more`)
  if (value > MAX_KOPECKS) throw new AmountError(`${what}: ${text} is too large`)
  return value
}

export function parseMilli(text: string, what = 'quantity'): Milli {
  const value = parseScaled(text, 3, what)
  if (value <= 0n) throw new AmountError(`${what}: ${text} is not positive; expected more than 0`)
  if (value > MAX_MILLI) throw new AmountError(`${what}: ${text} is too large`)
  return value
}

/** An integer scaled by 10^places → decimal text with exactly `places` decimals. */
export function formatScaled(value: bigint, places: number): string {
  const negative = value < 0n
  const digits = (negative ? -value : value).toString().padStart(places + 1, '0')
  const whole = digits.slice(0, digits.length - places)
  const fraction = digits.slice(digits.length - places)
  return `${negative ? '-' : ''}${whole}${places ? '.' + fraction : ''}`
}

export const formatKopecks = (value: Kopecks): string => formatScaled(value, 2)

/** A quantity as short decimal text: 1, 0.5, 1.25 (no trailing zeros). */
export function formatMilli(value: Milli): string {
  return formatScaled(value, 3).replace(/\.?0+$/, '')
}

/** price × quantity, rounded half up to kopecks, as the register and the daemon round. */
export function lineKopecks(price: Kopecks, quantity: Milli): Kopecks {
  const product = price * quantity
  const whole = product / 1000n
  return product % 1000n >= 500n ? whole + 1n : whole
}

/** Sum a list of kopecks. */
export const sumKopecks = (values: Iterable<Kopecks>): Kopecks => {
  let total = 0n
  for (const value of values) total += value
  return total
}

/**
 * The JSON number for an exact decimal text. JSON.stringify writes the shortest text that
 * reads back as the same double, which for at most 15 significant digits is the decimal
 * itself (9 999 999 999.99 has 12), so "436.80" reaches the daemon as 436.8, never
 * 436.79999999999995.
 */
export function toJsonNumber(decimalText: string): number {
  const value = Number(decimalText)
  if (!Number.isFinite(value)) throw new AmountError(`"${decimalText}" is not a number`)
  return value
}

export const kopecksToJson = (value: Kopecks): number => toJsonNumber(formatKopecks(value))
export const milliToJson = (value: Milli): number => toJsonNumber(formatMilli(value))

/** A person's view of a sum: 1 234,50 ₽ style grouping is left to Intl at display time. */
export function displayKopecks(value: Kopecks, locale = 'ru-RU'): string {
  const text = formatKopecks(value)
  const [whole = '0', fraction = '00'] = text.replace('-', '').split('.')
  const grouped = BigInt(whole).toLocaleString(locale)
  const sep = locale.startsWith('ru') ? ',' : '.'
  return `${value < 0n ? '-' : ''}${grouped}${sep}${fraction}`
}

/** Any decimal text (a stored JSON number) → kopecks, rounded half up like the daemon. */
export function roundToKopecks(text: string): Kopecks {
  const exact = /e/i.test(text) ? Number(text).toFixed(12) : text
  const [whole = '0', fraction = ''] = exact.replace(/^-/, '').split('.')
  const scaled = parseScaled(`${whole}.${fraction.slice(0, 2)}`, 2)
  const next = fraction.charAt(2)
  const rounded = next !== '' && next >= '5' ? scaled + 1n : scaled
  return exact.startsWith('-') ? -rounded : rounded
}

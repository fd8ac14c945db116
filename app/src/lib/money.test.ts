import { describe, expect, it } from 'vitest'
import { AmountError, displayKopecks, formatKopecks, formatMilli, kopecksToJson, lineKopecks, parseKopecks, parseMilli, roundToKopecks } from './money'

describe('money in integer kopecks', () => {
  it('reads what a person types', () => {
    expect(parseKopecks('1 234,5')).toBe(123450n)
    expect(parseKopecks('0.1')).toBe(10n)
    expect(parseKopecks('.99')).toBe(99n)
    expect(parseKopecks('9999999999.99')).toBe(999999999999n)
  })
  it('refuses what is not a sum', () => {
    expect(() => parseKopecks('1.005')).toThrow(AmountError)
    expect(() => parseKopecks('-1')).toThrow(/negative/)
    expect(() => parseKopecks('abc')).toThrow(/not a number/)
    expect(() => parseKopecks('10000000000')).toThrow(/too large/)
    expect(() => parseMilli('0')).toThrow(/not positive/)
  })
  it('multiplies without float noise and rounds half up', () => {
    // 0.1 + 0.2 style trap: 3 × 145.60 = 436.80, not 436.79999999999995
    expect(formatKopecks(lineKopecks(14560n, parseMilli('3')))).toBe('436.80')
    expect(kopecksToJson(lineKopecks(14560n, parseMilli('3')))).toBe(436.8)
    expect(JSON.stringify({ s: kopecksToJson(43680n) })).toBe('{"s":436.8}')
    // 0.333 kg × 99.99 = 33.29667 → 33.30
    expect(lineKopecks(9999n, parseMilli('0.333'))).toBe(3330n)
    // exactly half a kopeck rounds up: 0.005 → 0.01 (1 kopeck × 0.5)
    expect(lineKopecks(1n, 500n)).toBe(1n)
    expect(lineKopecks(1n, 499n)).toBe(0n)
    // the largest line stays exact (beyond 2^53 in the product)
    expect(lineKopecks(999999999999n, 9999999999n)).toBe(9999999998990000000n) // remainder 1/1000: rounds down
  })
  it('formats', () => {
    expect(formatKopecks(5n)).toBe('0.05')
    expect(formatKopecks(-150n)).toBe('-1.50')
    expect(formatMilli(1500n)).toBe('1.5')
    expect(formatMilli(1000n)).toBe('1')
    expect(displayKopecks(123456789n)).toMatch(/^1\s?234\s?567,89$/)
  })
  it('rounds stored numbers like the daemon', () => {
    expect(roundToKopecks('1.005')).toBe(101n)
    expect(roundToKopecks('436.8')).toBe(43680n)
    expect(roundToKopecks('1500')).toBe(150000n)
    expect(roundToKopecks('-2.5')).toBe(-250n)
  })
})

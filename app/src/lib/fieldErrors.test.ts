import { describe, expect, it } from 'vitest'
import { parseProblems, problemsByField } from './fieldErrors'

describe('daemon errors at the field they name', () => {
  it('reads the daemon\'s framing of a refused task', () => {
    expect(parseProblems('invalid task: items[0].quantity: 100000.000000 is too large; expected at most 99999.999999'))
      .toEqual([{ path: 'items.0.quantity', message: '100000.000000 is too large; expected at most 99999.999999' }])
    expect(parseProblems('invalid task (2 problems):\n  - items[1].price: is negative; expected 0 or more\n  - payments: 5.00 paid is less than the total'))
      .toEqual([
        { path: 'items.1.price', message: 'is negative; expected 0 or more' },
        { path: 'payments', message: '5.00 paid is less than the total' }
      ])
    expect(parseProblems('invalid task (1,000 problems):\n  - type: unknown\n  … and 980 more problems'))
      .toEqual([{ path: 'type', message: 'unknown' }, { path: '', message: '… and 980 more problems' }])
  })
  it('reads one problem', () => {
    expect(parseProblems('items[0].price: -1 is negative; expected 0 or more')).toEqual([{ path: 'items.0.price', message: '-1 is negative; expected 0 or more' }])
  })
  it('splits several problems only where a path starts', () => {
    const message = 'items[1].quantity: 0 is not positive; expected a quantity greater than 0; payments: 10 paid is less than the total 20; expected at least 20\nclientInfo.emailOrPhone: required when electronically is true'
    expect(parseProblems(message).map((p) => p.path)).toEqual(['items.1.quantity', 'payments', 'clientInfo.emailOrPhone'])
  })
  it('keeps a message without a path for the top', () => {
    expect(parseProblems('register offline: no answer in 60 s')).toEqual([{ path: '', message: 'register offline: no answer in 60 s' }])
  })
  it('groups problems at the nearest field the form has', () => {
    const problems = parseProblems('items[0].tax.type: "vat18" is obsolete; payments: short; total: 5 does not match')
    const grouped = problemsByField(problems, ['items.0', 'items.0.price', 'payments'])
    expect(grouped.get('items.0')).toEqual(['items.0.tax.type: "vat18" is obsolete'])
    expect(grouped.get('payments')).toEqual(['short'])
    expect(grouped.get('')).toEqual(['total: 5 does not match'])
  })
})

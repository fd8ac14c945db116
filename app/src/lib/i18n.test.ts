import { describe, expect, it } from 'vitest'
import { MESSAGES, translate } from './i18n'

describe('i18n', () => {
  it('has every Russian key in English too', () => {
    expect(Object.keys(MESSAGES.en).sort()).toEqual(Object.keys(MESSAGES.ru).sort())
  })
  it('fills placeholders', () => {
    expect(translate('ru', 'problem_fn-expiry', { days: 10 })).toBe('ФН истекает через 10 дн.')
    expect(translate('en', 'nope')).toBe('nope')
  })
})

import { describe, expect, it } from 'vitest'
import { compactSettings, innValid, parseIds, saveCommands, settingsFromItem, settingsProblems, settingsState } from './settings'

describe('central settings', () => {
  it('checks INN check digits', () => {
    expect(innValid('500100732259')).toBe(true)
    expect(innValid('7707083893')).toBe(true)
    expect(innValid('7707083894')).toBe(false)
    expect(innValid('12345')).toBe(false)
  })
  it('names the field of each problem', () => {
    expect(settingsProblems({ 'operator.vatin': '123', 'operator.name': 'a\nb', 'bitrix.allowed-users': [0] }).map((p) => p.path)).toEqual(['operator.name', 'operator.vatin', 'bitrix.allowed-users'])
    expect(settingsProblems({ 'operator.name': 'Иванов И.И.', 'operator.vatin': '500100732259', 'company.taxation': 'usnIncome', 'receipt.vat': 'vat22' })).toEqual([])
  })
  it('reads ids', () => {
    expect(parseIds('1, 17 42,17')).toEqual([1, 17, 42])
    expect(() => parseIds('1, x')).toThrow(/ids/)
  })
  it('saves a new version and rings kassa.config in one batch', () => {
    const none = settingsFromItem('kassa-1', null)
    expect(settingsState(none)).toBe('none')
    const [write, bell] = saveCommands(none, { 'operator.name': ' Иванов ', 'operator.vatin': '', 'bitrix.allowed-users': [] })
    expect(write).toEqual(['entity.item.add', { ENTITY: 'KASSACFG', NAME: 'kassa-1', PROPERTY_VALUES: { KASSA: 'kassa-1', SETTINGS: '{"operator.name":"Иванов"}', VERSION: '1', ERROR: '' } }])
    expect(bell).toEqual(['pull.application.event.add', { COMMAND: 'kassa.config', PARAMS: { kassa: 'kassa-1', version: 1 } }])
    const stored = settingsFromItem('kassa-1', { ID: 4, PROPERTY_VALUES: { SETTINGS: '{"operator.name":"Иванов"}', VERSION: '3', APPLIED: '2', ERROR: '' } })
    expect(settingsState(stored)).toBe('pending')
    expect(saveCommands(stored, {})[0]).toEqual(['entity.item.update', { ENTITY: 'KASSACFG', ID: 4, PROPERTY_VALUES: { KASSA: 'kassa-1', SETTINGS: '{}', VERSION: '4', ERROR: '' } }])
    expect(settingsState({ ...stored, applied: 3 })).toBe('applied')
    expect(settingsState({ ...stored, error: 'operator.vatin: bad' })).toBe('refused')
  })
  it('drops empty values', () => {
    expect(compactSettings({ 'operator.name': '', 'receipt.vat': 'vat10', 'bitrix.allowed-departments': [3] })).toEqual({ 'receipt.vat': 'vat10', 'bitrix.allowed-departments': [3] })
  })
})

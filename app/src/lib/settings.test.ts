import { describe, expect, it } from 'vitest'
import { MAX_ALLOWED_DEPARTMENTS, MAX_NOTIFY_USERS, compactSettings, innValid, parseIds, refusalProblems, saveCommands, settingsFromItem, settingsProblems, settingsState } from './settings'

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
  it('bounds the allowed departments and the notified users as the daemon does', () => {
    const many = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1)
    expect(settingsProblems({ 'bitrix.allowed-departments': many(MAX_ALLOWED_DEPARTMENTS), 'bitrix.notify-users': many(MAX_NOTIFY_USERS) })).toEqual([])
    expect(settingsProblems({ 'bitrix.allowed-departments': many(101), 'bitrix.notify-users': [...many(51)] }).map((p) => p.path)).toEqual(['bitrix.allowed-departments', 'bitrix.notify-users'])
    expect(settingsProblems({ 'bitrix.notify-users': [0] })[0]?.path).toBe('bitrix.notify-users')
  })
  it('saves notify-users and allowed-departments as JSON lists of ids', () => {
    const [write] = saveCommands(settingsFromItem('kassa-1', null), { 'bitrix.allowed-departments': [5], 'bitrix.notify-users': [3, 1] })
    expect((write?.[1].PROPERTY_VALUES as { SETTINGS: string }).SETTINGS).toBe('{"bitrix.allowed-departments":[5],"bitrix.notify-users":[3,1]}')
    expect(settingsFromItem('kassa-1', { ID: 1, PROPERTY_VALUES: { SETTINGS: '{"bitrix.notify-users":[3]}' } }).settings['bitrix.notify-users']).toEqual([3])
  })
  it("puts the daemon's refusal at the key each line starts with (keys carry dashes)", () => {
    const error = 'bitrix.notify-users: [0] is not allowed; expected positive Bitrix24 user ids\noperator.vatin: "7707083894" is not a valid INN; its check digits do not match\nsomething else'
    expect(refusalProblems(error)).toEqual([
      { path: 'bitrix.notify-users', message: '[0] is not allowed; expected positive Bitrix24 user ids' },
      { path: 'operator.vatin', message: '"7707083894" is not a valid INN; its check digits do not match' },
      { path: '', message: 'something else' }
    ])
  })
})

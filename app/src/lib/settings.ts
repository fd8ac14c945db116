/**
 * Central settings of a kassa, kept in Bitrix24 (docs/architecture.md "Central settings"):
 * one KASSACFG item per kassa, NAME = kassa id, PROPERTY_VALUES
 *   KASSA    the kassa id
 *   SETTINGS compact JSON of `snap set` style keys (below)
 *   VERSION  a number the app raises on every save
 *   APPLIED  the VERSION the daemon runs with (written by the daemon)
 *   ERROR    why the daemon refused VERSION, "" when it took it (written by the daemon)
 * and a `kassa.config` doorbell {kassa, version} in the same batch as the save.
 */
import type { Command } from './portal'
import { SETTINGS_ENTITY } from './storage'
import { TAXATION_TYPES, type TaxationType, VAT_TYPES, type VatType } from './task'
import { type FieldProblem, parseProblems } from './fieldErrors'

export const CONFIG_COMMAND = 'kassa.config'

export interface KassaSettings {
  'operator.name'?: string
  'operator.vatin'?: string
  'company.taxation'?: TaxationType
  'receipt.vat'?: VatType
  'receipt.payments-place'?: string
  /** Bitrix24 user ids allowed to create jobs; empty: anyone who can use the app. */
  'bitrix.allowed-users'?: number[]
  /** Bitrix24 department ids whose employees may create jobs, sub-departments included. */
  'bitrix.allowed-departments'?: number[]
  /** Bitrix24 user ids told of the kassa's problems; empty: the admin who paired it. */
  'bitrix.notify-users'?: number[]
}

/** The keys the page has a field for: a problem naming one is shown at that field. */
export const SETTINGS_FIELDS = [
  'operator.name', 'operator.vatin', 'company.taxation', 'receipt.vat', 'receipt.payments-place',
  'bitrix.allowed-users', 'bitrix.allowed-departments', 'bitrix.notify-users'
] as const

/** The daemon's bounds (bitrix/settings.py MAX_ALLOWED_DEPARTMENTS, MAX_NOTIFY_USERS). */
export const MAX_ALLOWED_DEPARTMENTS = 100
export const MAX_NOTIFY_USERS = 50

export interface SettingsItem {
  itemId: number | null
  kassa: string
  settings: KassaSettings
  version: number
  applied: number | null
  error: string
}

const INN10_WEIGHTS = [2, 4, 10, 3, 5, 9, 4, 6, 8]
const INN12_WEIGHTS_1 = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
const INN12_WEIGHTS_2 = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]

function checkDigit(digits: number[], weights: number[]): number {
  return (weights.reduce((sum, w, i) => sum + w * (digits[i] ?? 0), 0) % 11) % 10
}

/** A Russian INN (10 digits for a company, 12 for a person) with valid check digits. */
export function innValid(inn: string): boolean {
  if (!/^(\d{10}|\d{12})$/.test(inn)) return false
  const d = [...inn].map(Number)
  if (d.length === 10) return checkDigit(d, INN10_WEIGHTS) === d[9]
  return checkDigit(d, INN12_WEIGHTS_1) === d[10] && checkDigit(d, INN12_WEIGHTS_2) === d[11]
}

const CONTROL_RE = /[\u0000-\u001f\u007f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]/

/** Problems, each at its key; the daemon checks the same again with the `snap set` model. */
export function settingsProblems(s: KassaSettings): FieldProblem[] {
  const problems: FieldProblem[] = []
  const name = s['operator.name']
  if (name !== undefined && (name.length > 64 || CONTROL_RE.test(name))) {
    problems.push({ path: 'operator.name', message: 'expected one line of at most 64 characters' })
  }
  const vatin = s['operator.vatin']
  if (vatin !== undefined && vatin !== '' && !innValid(vatin)) {
    problems.push({ path: 'operator.vatin', message: `"${vatin}" is not a valid INN; expected 10 or 12 digits with valid check digits` })
  }
  if (s['company.taxation'] !== undefined && !TAXATION_TYPES.includes(s['company.taxation'])) {
    problems.push({ path: 'company.taxation', message: `expected one of ${TAXATION_TYPES.join(', ')}` })
  }
  if (s['receipt.vat'] !== undefined && !VAT_TYPES.includes(s['receipt.vat'])) {
    problems.push({ path: 'receipt.vat', message: `expected one of ${VAT_TYPES.join(', ')}` })
  }
  const place = s['receipt.payments-place']
  if (place !== undefined && (place.length > 256 || CONTROL_RE.test(place))) {
    problems.push({ path: 'receipt.payments-place', message: 'expected one line of at most 256 characters' })
  }
  for (const key of ['bitrix.allowed-users', 'bitrix.allowed-departments', 'bitrix.notify-users'] as const) {
    const ids = s[key]
    if (ids !== undefined && !ids.every((id) => Number.isInteger(id) && id > 0)) {
      problems.push({ path: key, message: 'expected Bitrix24 ids (whole numbers above 0)' })
    }
  }
  const departments = s['bitrix.allowed-departments']?.length ?? 0
  if (departments > MAX_ALLOWED_DEPARTMENTS) {
    problems.push({ path: 'bitrix.allowed-departments', message: `has ${departments} departments; expected at most ${MAX_ALLOWED_DEPARTMENTS} (a department admits its sub-departments too: list the parent instead)` })
  }
  const notified = s['bitrix.notify-users']?.length ?? 0
  if (notified > MAX_NOTIFY_USERS) {
    problems.push({ path: 'bitrix.notify-users', message: `has ${notified} users; expected at most ${MAX_NOTIFY_USERS} Bitrix24 user ids` })
  }
  return problems
}

/**
 * The daemon's ERROR (appliance/central_config.py: one line per problem, each starting with
 * its key, e.g. "bitrix.notify-users: [0] is not allowed; …") as problems at their keys.
 * The keys carry dashes, which the task-error parser does not read as paths.
 */
export function refusalProblems(error: string): FieldProblem[] {
  const problems: FieldProblem[] = []
  for (const line of error.split(/\n+/)) {
    const text = line.trim()
    if (!text) continue
    const key = SETTINGS_FIELDS.find((k) => text.startsWith(`${k}:`))
    if (key) problems.push({ path: key, message: text.slice(key.length + 1).trim() })
    else problems.push(...parseProblems(text))
  }
  return problems
}

/** Drops empty values so the daemon keeps its own defaults for them. */
export function compactSettings(s: KassaSettings): KassaSettings {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(s)) {
    if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) continue
    out[key] = typeof value === 'string' ? value.trim() : value
  }
  return out as KassaSettings
}

/** "1, 17 42" → [1, 17, 42]; throws on anything else. */
export function parseIds(text: string): number[] {
  const parts = text.split(/[\s,;]+/).filter(Boolean)
  if (!parts.every((p) => /^\d+$/.test(p))) throw new Error('expected ids separated by commas, e.g. 1, 17, 42')
  return [...new Set(parts.map(Number))]
}

export function settingsFromItem(kassa: string, item: { ID: string | number, PROPERTY_VALUES?: Record<string, unknown> } | null): SettingsItem {
  const values = item?.PROPERTY_VALUES ?? {}
  let settings: KassaSettings = {}
  try {
    const parsed: unknown = typeof values.SETTINGS === 'string' && values.SETTINGS ? JSON.parse(values.SETTINGS) : {}
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) settings = parsed as KassaSettings
  } catch {
    settings = {}
  }
  const number = (value: unknown): number | null => (value === undefined || value === null || value === '' ? null : Number.isFinite(Number(value)) ? Number(value) : null)
  return {
    itemId: item ? Number(item.ID) : null,
    kassa,
    settings,
    version: number(values.VERSION) ?? 0,
    applied: number(values.APPLIED),
    error: typeof values.ERROR === 'string' ? values.ERROR : ''
  }
}

/** The batch that saves a new version and rings the kassa's config doorbell. */
export function saveCommands(current: SettingsItem, next: KassaSettings): Command[] {
  const version = current.version + 1
  const values = { KASSA: current.kassa, SETTINGS: JSON.stringify(compactSettings(next)), VERSION: String(version), ERROR: '' }
  const write: Command = current.itemId === null
    ? ['entity.item.add', { ENTITY: SETTINGS_ENTITY, NAME: current.kassa, PROPERTY_VALUES: values }]
    : ['entity.item.update', { ENTITY: SETTINGS_ENTITY, ID: current.itemId, PROPERTY_VALUES: values }]
  return [write, ['pull.application.event.add', { COMMAND: CONFIG_COMMAND, PARAMS: { kassa: current.kassa, version } }]]
}

/** What the page says about the stored version. */
export function settingsState(item: SettingsItem): 'none' | 'pending' | 'applied' | 'refused' {
  if (item.itemId === null) return 'none'
  if (item.error) return 'refused'
  return item.applied === item.version ? 'applied' : 'pending'
}

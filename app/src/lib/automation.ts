/**
 * CRM automation rules (docs/automation.md "Rules"): one KASSACFG item, NAME `@automation`,
 *   SETTINGS  the rule set, compact JSON {"rules": [rule, …]}
 *   VERSION   raised by one on every save (the page)
 *   APPLIED   the version in force (the automation host)
 *   ERROR     why VERSION was refused, "" when it was taken (the host)
 * The host reads the item with every poll of its event queue, so no doorbell is rung. It
 * validates a version whole (channels/automation/rules.py, the one authority): a refused
 * version changes nothing, the rules in force stay.
 *
 * The page checks only what a form can get wrong by itself (ids, a chosen kassa and stage);
 * the fiscal rules (a credit receipt is paid with payment type credit, VAT rates, …) are the
 * host's, and its reason is shown at the field it names.
 */
import type { Command, Portal } from './portal'
import { SETTINGS_ENTITY } from './storage'
import { TAXATION_TYPES, type TaxationType } from './task'
import { type FieldProblem, normalisePath } from './fieldErrors'

export const RULES_ITEM = '@automation'
export const DEAL_ENTITY_TYPE = 2
export const MAX_RULES = 50
export const RULE_ID_RE = /^[a-z0-9][a-z0-9_-]{0,23}$/

export const RECEIPT_TYPES = ['full_payment', 'full_prepayment', 'prepayment', 'advance', 'credit'] as const
export type ReceiptType = (typeof RECEIPT_TYPES)[number]
export const PAYMENT_TYPES = ['cash', 'electronically', 'prepaid', 'credit', 'other'] as const
export type PaymentType = (typeof PAYMENT_TYPES)[number]
/** The VAT of a product row that has no tax rate (docs/automation.md). */
export const DEFAULT_VATS = ['none', 'vat0', 'vat5', 'vat7', 'vat10', 'vat20', 'vat22'] as const
export { TAXATION_TYPES }

export interface DealStageTrigger { kind: 'deal_stage', category_id: number, stage_id: string, return_stage_id?: string | null }
export interface PaymentTrigger { kind: 'payment_paid', category_id: number | null }
export type Trigger = DealStageTrigger | PaymentTrigger

export interface Rule {
  id: string
  kassa: string
  trigger: Trigger
  receipt_type: ReceiptType
  payment_type: PaymentType | string
  taxation?: TaxationType | string | null
  vat_default: string
  electronic: boolean
  payments_address?: string | null
}

export interface RulesItem {
  itemId: number | null
  rules: Rule[]
  version: number
  applied: number | null
  error: string
  /** SETTINGS that is not a rule set the page can show (written by someone else). */
  unreadable: string
}

export interface Stage { id: string, name: string, semantics: string }
export interface Pipeline { id: number, name: string, stages: Stage[] }

type StoredItem = { ID: string | number, NAME?: string, PROPERTY_VALUES?: Record<string, unknown> }

const number = (value: unknown): number | null =>
  value === undefined || value === null || value === '' || !Number.isFinite(Number(value)) ? null : Number(value)

/** The stored item (or none yet) → what the page edits and shows. */
export function rulesFromItem(item: StoredItem | null): RulesItem {
  const values = item?.PROPERTY_VALUES ?? {}
  const text = typeof values.SETTINGS === 'string' ? values.SETTINGS : ''
  let rules: Rule[] = []
  let unreadable = ''
  if (text.trim()) {
    try {
      const parsed: unknown = JSON.parse(text)
      const list = (parsed as { rules?: unknown } | null)?.rules
      if (Array.isArray(list) && list.every((r) => typeof r === 'object' && r !== null && !Array.isArray(r))) rules = (list as Rule[]).map(withDefaults)
      else unreadable = text
    } catch {
      unreadable = text
    }
  }
  return {
    itemId: item ? Number(item.ID) : null,
    rules,
    version: number(values.VERSION) ?? 0,
    applied: number(values.APPLIED),
    error: typeof values.ERROR === 'string' ? values.ERROR : '',
    unreadable
  }
}

/** A stored rule with the optional fields the host leaves out present (null), for the form. */
export function withDefaults(rule: Rule): Rule {
  const trigger = typeof rule.trigger === 'object' && rule.trigger !== null && rule.trigger.kind === 'deal_stage'
    ? { return_stage_id: null, ...rule.trigger }
    : rule.trigger
  return { taxation: null, payments_address: null, ...rule, trigger }
}

/** The newest `@automation` item of KASSACFG (the host reads the one with the highest ID too). */
export async function loadRules(portal: Portal): Promise<RulesItem> {
  const items = await portal.call<StoredItem[]>('entity.item.get', { ENTITY: SETTINGS_ENTITY, FILTER: { NAME: RULES_ITEM } })
  const newest = (items ?? []).reduce<StoredItem | null>((best, i) => (best === null || Number(i.ID) > Number(best.ID) ? i : best), null)
  return rulesFromItem(newest)
}

/** A rule as the host takes it: no empty optional fields, no keys of the page's own. */
export function compactRule(rule: Rule): Rule {
  const trigger: Trigger = rule.trigger.kind === 'deal_stage'
    ? { kind: 'deal_stage', category_id: rule.trigger.category_id, stage_id: rule.trigger.stage_id, ...(rule.trigger.return_stage_id ? { return_stage_id: rule.trigger.return_stage_id } : {}) }
    : { kind: 'payment_paid', category_id: rule.trigger.category_id }
  const out: Rule = {
    id: rule.id.trim(),
    kassa: rule.kassa.trim(),
    trigger,
    receipt_type: rule.receipt_type,
    payment_type: rule.payment_type,
    vat_default: rule.vat_default,
    electronic: rule.electronic
  }
  if (rule.taxation) out.taxation = rule.taxation
  const address = rule.payments_address?.trim()
  if (address) out.payments_address = address
  return out
}

/** The one command that saves `rules` as the next version (VERSION + 1, ERROR cleared). */
export function saveRulesCommand(current: RulesItem, rules: Rule[]): Command {
  const values = {
    KASSA: '',
    SETTINGS: JSON.stringify({ rules: rules.map(compactRule) }),
    VERSION: String(current.version + 1),
    ERROR: ''
  }
  return current.itemId === null
    ? ['entity.item.add', { ENTITY: SETTINGS_ENTITY, NAME: RULES_ITEM, PROPERTY_VALUES: values }]
    : ['entity.item.update', { ENTITY: SETTINGS_ENTITY, ID: current.itemId, PROPERTY_VALUES: values }]
}

export type RulesState = 'none' | 'pending' | 'applied' | 'refused'

export function rulesState(item: RulesItem): RulesState {
  if (item.itemId === null) return 'none'
  if (item.error) return 'refused'
  return item.applied === item.version ? 'applied' : 'pending'
}

/** What the page itself can tell is wrong, each at `rules.<i>.<field>`. */
export function ruleProblems(rules: Rule[]): FieldProblem[] {
  const problems: FieldProblem[] = []
  if (rules.length > MAX_RULES) problems.push({ path: 'rules', message: `${rules.length} rules; expected at most ${MAX_RULES}` })
  const seen = new Map<string, number>()
  rules.forEach((rule, i) => {
    const at = (field: string, message: string) => problems.push({ path: `rules.${i}.${field}`, message })
    const id = rule.id.trim()
    if (!RULE_ID_RE.test(id)) at('id', `"${id}" is not a rule id; expected 1–24 of a-z, 0-9, _ and -, starting with a letter or digit`)
    else if (seen.has(id)) at('id', `${id} is used by rule ${(seen.get(id) ?? 0) + 1} too; expected unique ids`)
    else seen.set(id, i)
    if (!rule.kassa.trim()) at('kassa', 'expected the kassa that prints')
    else if (rule.kassa.trim().length > 64) at('kassa', 'expected a kassa id of at most 64 characters')
    if (rule.trigger.kind === 'deal_stage') {
      if (!rule.trigger.stage_id) at('trigger.stage_id', 'expected the stage that prints the receipt')
      else if (rule.trigger.return_stage_id && rule.trigger.return_stage_id === rule.trigger.stage_id) {
        at('trigger.return_stage_id', 'is the stage that prints; expected another stage')
      }
    }
    if ((rule.payments_address ?? '').length > 256) at('payments_address', 'expected at most 256 characters')
  })
  return problems
}

const RULE_FIELDS = new Set(['id', 'kassa', 'trigger', 'receipt_type', 'payment_type', 'taxation', 'vat_default', 'electronic', 'payments_address', 'kind', 'category_id', 'stage_id', 'return_stage_id'])
const HEAD_RE = /^((?:rules|SETTINGS)(?:\[\d+\]|\.[A-Za-z_]\w*)*)\s*:\s*(.+)$/s
const FIELD_RE = /^([a-z_]+)\s*:\s*(.+)$/s

/** `message` starting with a field of the rule ("payment_type: …") → [field, rest]. */
function leadingField(message: string): [string, string] | null {
  const match = FIELD_RE.exec(message)
  return match && match[1] && match[2] && RULE_FIELDS.has(match[1]) ? [match[1], match[2]] : null
}

/**
 * The host's ERROR, one problem a line ("rules[1]: payment_type: a credit receipt …",
 * "rules[0].trigger: stage_id: …; return_stage_id: …", "rules: rules[1].id: … used twice"),
 * each at its full path ("rules.1.payment_type", "rules.0.trigger.stage_id"); the rest at "".
 */
export function hostProblems(error: string): FieldProblem[] {
  const problems: FieldProblem[] = []
  for (const raw of error.split(/\n+/)) {
    let rest = raw.trim()
    if (!rest) continue
    let path = ''
    for (let head = HEAD_RE.exec(rest); head && head[1] && head[2]; head = HEAD_RE.exec(rest)) {
      path = normalisePath(head[1])
      rest = head[2]
    }
    if (!path.startsWith('rules.')) {
      problems.push({ path, message: rest })
      continue
    }
    // A model check names its own field first; a trigger's may list several, "; "-joined.
    const pieces = path.endsWith('.trigger') ? rest.split(/;\s+(?=[a-z_]+\s*:)/) : [rest]
    for (const piece of pieces) {
      let at = path
      let message = piece
      for (let field = leadingField(message); field; field = leadingField(message)) {
        at = `${at}.${field[0]}`
        message = field[1]
      }
      problems.push({ path: at, message })
    }
  }
  return problems
}

/** Problems of rule `index`, keyed by its field ("id", "trigger.stage_id", "" for the rule). */
export function problemsOfRule(problems: FieldProblem[], index: number): Map<string, string[]> {
  const prefix = `rules.${index}`
  const out = new Map<string, string[]>()
  for (const p of problems) {
    if (p.path !== prefix && !p.path.startsWith(prefix + '.')) continue
    const field = p.path.slice(prefix.length + 1)
    out.set(field, [...(out.get(field) ?? []), p.message])
  }
  return out
}

/** Pipelines of deals with their stages in board order: `crm.category.list`, then one
 * `batch` of `crm.status.list` per pipeline (ENTITY_ID DEAL_STAGE, DEAL_STAGE_<id>). */
export async function loadPipelines(portal: Portal): Promise<Pipeline[]> {
  const answer = await portal.call<{ categories?: { id: number | string, name?: string, sort?: number | string }[] }>('crm.category.list', { entityTypeId: DEAL_ENTITY_TYPE })
  const categories = [...(answer?.categories ?? [])]
    .sort((a, b) => Number(a.sort ?? 0) - Number(b.sort ?? 0) || Number(a.id) - Number(b.id))
    .slice(0, 50)
  if (!categories.length) categories.push({ id: 0, name: '' })
  const stageLists = await portal.batch(categories.map((c) => [
    'crm.status.list',
    { order: { SORT: 'ASC' }, filter: { ENTITY_ID: Number(c.id) === 0 ? 'DEAL_STAGE' : `DEAL_STAGE_${Number(c.id)}` } }
  ]))
  return categories.map((c, i) => {
    const rows = (stageLists[i]?.result as { STATUS_ID?: string, NAME?: string, SORT?: string | number, SEMANTICS?: string | null }[] | undefined) ?? []
    const stages = [...rows]
      .sort((a, b) => Number(a.SORT ?? 0) - Number(b.SORT ?? 0))
      .filter((s) => typeof s.STATUS_ID === 'string')
      .map((s) => ({ id: String(s.STATUS_ID), name: s.NAME ?? String(s.STATUS_ID), semantics: s.SEMANTICS ?? '' }))
    return { id: Number(c.id), name: c.name ?? String(c.id), stages }
  })
}

/** A new rule: the first kassa, the pipeline's won stage, a full payment by card, e-mailed. */
export function blankRule(existing: Rule[], kassa: string, pipelines: Pipeline[]): Rule {
  const ids = new Set(existing.map((r) => r.id))
  let n = existing.length + 1
  while (ids.has(`rule-${n}`)) n += 1
  const pipeline = pipelines[0]
  const won = pipeline?.stages.find((s) => s.semantics === 'S') ?? pipeline?.stages[0]
  return {
    id: `rule-${n}`,
    kassa,
    trigger: { kind: 'deal_stage', category_id: pipeline?.id ?? 0, stage_id: won?.id ?? '', return_stage_id: null },
    receipt_type: 'full_payment',
    payment_type: 'electronically',
    taxation: null,
    vat_default: 'none',
    electronic: true,
    payments_address: null
  }
}

/** The stage's name in its pipeline, or its id when the pipelines are not known. */
export function stageName(pipelines: Pipeline[], categoryId: number | null, stageId: string | null | undefined): string {
  if (!stageId) return ''
  const found = pipelines.find((p) => p.id === categoryId)?.stages.find((s) => s.id === stageId)
  return found ? found.name : stageId
}

export function pipelineName(pipelines: Pipeline[], categoryId: number | null): string {
  if (categoryId === null) return ''
  return pipelines.find((p) => p.id === categoryId)?.name ?? String(categoryId)
}

/** A deep copy for editing (the stored list stays as it was until saved). */
export const copyRules = (rules: Rule[]): Rule[] => JSON.parse(JSON.stringify(rules)) as Rule[]

/** Whether the edited list differs from the stored one (what Save would write). */
export function rulesChanged(stored: Rule[], edited: Rule[]): boolean {
  return JSON.stringify(stored.map(compactRule)) !== JSON.stringify(edited.map(compactRule))
}

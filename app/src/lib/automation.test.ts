import { describe, expect, it } from 'vitest'
import {
  type Rule, blankRule, compactRule, hostProblems, loadPipelines, loadRules, problemsOfRule, ruleProblems,
  rulesChanged, rulesFromItem, rulesState, saveRulesCommand, stageName
} from './automation'
import { FakePortal } from './fakePortal'

const won: Rule = {
  id: 'won',
  kassa: 'shop-1',
  trigger: { kind: 'deal_stage', category_id: 0, stage_id: 'WON', return_stage_id: 'LOSE' },
  receipt_type: 'full_payment',
  payment_type: 'electronically',
  taxation: 'usnIncome',
  vat_default: 'none',
  electronic: true,
  payments_address: 'https://shop.example.ru'
}

const pipelinesPortal = () => new FakePortal({
  'crm.category.list': (p) => {
    expect(p).toEqual({ entityTypeId: 2 })
    return { categories: [{ id: 1, name: 'Магазин', sort: 200 }, { id: 0, name: 'Общая', sort: 100 }] }
  },
  'crm.status.list': (p) => {
    const entity = (p.filter as { ENTITY_ID: string }).ENTITY_ID
    if (entity === 'DEAL_STAGE') return [{ STATUS_ID: 'WON', NAME: 'Сделка успешна', SORT: '60', SEMANTICS: 'S' }, { STATUS_ID: 'NEW', NAME: 'Новая', SORT: '10', SEMANTICS: null }, { STATUS_ID: 'LOSE', NAME: 'Провал', SORT: '70', SEMANTICS: 'F' }]
    if (entity === 'DEAL_STAGE_1') return [{ STATUS_ID: 'C1:NEW', NAME: 'Новая', SORT: '10' }, { STATUS_ID: 'C1:WON', NAME: 'Продано', SORT: '20', SEMANTICS: 'S' }]
    return []
  }
})

describe('CRM automation rules', () => {
  it('reads the @automation item, or none yet', async () => {
    expect(rulesState(rulesFromItem(null))).toBe('none')
    const portal = new FakePortal({
      'entity.item.get': (p) => {
        expect(p).toEqual({ ENTITY: 'KASSACFG', FILTER: { NAME: '@automation' } })
        return [
          { ID: '3', NAME: '@automation', PROPERTY_VALUES: { SETTINGS: '{"rules":[]}', VERSION: '1', APPLIED: '1', ERROR: '' } },
          { ID: '7', NAME: '@automation', PROPERTY_VALUES: { SETTINGS: JSON.stringify({ rules: [won] }), VERSION: '4', APPLIED: '3', ERROR: '' } }
        ]
      }
    })
    const item = await loadRules(portal)
    expect(item).toMatchObject({ itemId: 7, version: 4, applied: 3, error: '', unreadable: '' })
    expect(item.rules).toEqual([won])
    const bare = rulesFromItem({ ID: 1, PROPERTY_VALUES: { SETTINGS: '{"rules":[{"id":"a","kassa":"k","trigger":{"kind":"deal_stage","category_id":0,"stage_id":"WON"},"receipt_type":"full_payment","payment_type":"cash","vat_default":"none","electronic":false}]}' } })
    expect(bare.rules[0]).toMatchObject({ taxation: null, payments_address: null, trigger: { return_stage_id: null } })
    expect(rulesState(item)).toBe('pending')
    expect(rulesState({ ...item, applied: 4 })).toBe('applied')
    expect(rulesState({ ...item, error: 'rules[0].id: bad' })).toBe('refused')
    expect(rulesFromItem({ ID: 1, PROPERTY_VALUES: { SETTINGS: '[1]' } }).unreadable).toBe('[1]')
  })

  it('saves the whole set as the next version, ERROR cleared, as the host takes it', () => {
    const first = saveRulesCommand(rulesFromItem(null), [{ ...won, taxation: null, payments_address: '  ', trigger: { kind: 'deal_stage', category_id: 0, stage_id: 'WON', return_stage_id: null } }])
    expect(first).toEqual(['entity.item.add', {
      ENTITY: 'KASSACFG',
      NAME: '@automation',
      PROPERTY_VALUES: {
        KASSA: '',
        SETTINGS: '{"rules":[{"id":"won","kassa":"shop-1","trigger":{"kind":"deal_stage","category_id":0,"stage_id":"WON"},"receipt_type":"full_payment","payment_type":"electronically","vat_default":"none","electronic":true}]}',
        VERSION: '1',
        ERROR: ''
      }
    }])
    const stored = rulesFromItem({ ID: 9, PROPERTY_VALUES: { SETTINGS: '', VERSION: '2', APPLIED: '1', ERROR: 'x' } })
    const next = saveRulesCommand(stored, [won])
    expect(next[0]).toBe('entity.item.update')
    expect(next[1]).toMatchObject({ ENTITY: 'KASSACFG', ID: 9, PROPERTY_VALUES: { VERSION: '3', ERROR: '' } })
    expect(JSON.parse(String((next[1].PROPERTY_VALUES as { SETTINGS: string }).SETTINGS))).toEqual({ rules: [won] })
    expect(compactRule({ ...won, trigger: { kind: 'payment_paid', category_id: null } }).trigger).toEqual({ kind: 'payment_paid', category_id: null })
  })

  it('finds what a form can get wrong, at the rule and field', () => {
    const rules: Rule[] = [won, { ...won, id: 'won' }, { ...won, id: 'Won!', kassa: ' ', trigger: { kind: 'deal_stage', category_id: 0, stage_id: 'WON', return_stage_id: 'WON' } }, { ...won, id: 'x', trigger: { kind: 'deal_stage', category_id: 1, stage_id: '' } }]
    expect(ruleProblems(rules).map((p) => p.path)).toEqual(['rules.1.id', 'rules.2.id', 'rules.2.kassa', 'rules.2.trigger.return_stage_id', 'rules.3.trigger.stage_id'])
    expect(ruleProblems([won, { ...won, id: 'paid', trigger: { kind: 'payment_paid', category_id: null } }])).toEqual([])
    // The fiscal rules are the host's (one authority): the page lets them through.
    expect(ruleProblems([{ ...won, receipt_type: 'credit', payment_type: 'cash' }])).toEqual([])
  })

  it("puts the host's reasons at the rule and field they name", () => {
    const error = [
      'rules[1]: payment_type: a credit receipt (goods handed over, paid later) is paid with payment type credit, not cash; expected credit',
      'rules[0].trigger: stage_id: C1:WON is a stage of pipeline 1, not of pipeline 0; expected WON; return_stage_id: is the stage that prints; expected another stage',
      "rules[2].vat_default: 'vat18' is obsolete (VAT 18 % was replaced by 20 % on 2019-01-01); expected one of none, vat0",
      'rules: rules[3].id: won is used twice; expected unique ids',
      'rules[4].colour: is not a rule field; check its spelling (docs/automation.md)',
      'SETTINGS: not JSON; expected a JSON object {"rules": [...]}'
    ].join('\n')
    const problems = hostProblems(error)
    expect(problems.map((p) => p.path)).toEqual(['rules.1.payment_type', 'rules.0.trigger.stage_id', 'rules.0.trigger.return_stage_id', 'rules.2.vat_default', 'rules.3.id', 'rules.4.colour', 'SETTINGS'])
    expect(problems[0]?.message).toMatch(/^a credit receipt .* expected credit$/)
    expect(problems[1]?.message).toBe('C1:WON is a stage of pipeline 1, not of pipeline 0; expected WON')
    expect(problems[2]?.message).toBe('is the stage that prints; expected another stage')
    expect(problems[4]?.message).toBe('won is used twice; expected unique ids')
    expect([...problemsOfRule(problems, 0).keys()]).toEqual(['trigger.stage_id', 'trigger.return_stage_id'])
    expect(problemsOfRule(problems, 1).get('payment_type')?.[0]).toMatch(/credit/)
    expect(hostProblems('something odd happened')).toEqual([{ path: '', message: 'something odd happened' }])
  })

  it('loads the pipelines with their stages in board order, one batch for the stages', async () => {
    const portal = pipelinesPortal()
    const pipelines = await loadPipelines(portal)
    expect(pipelines.map((p) => [p.id, p.name, p.stages.map((s) => s.id)])).toEqual([
      [0, 'Общая', ['NEW', 'WON', 'LOSE']],
      [1, 'Магазин', ['C1:NEW', 'C1:WON']]
    ])
    expect(portal.requests.map((r) => r.kind)).toEqual(['call', 'batch'])
    expect(portal.requests[1]?.commands.map(([, p]) => (p.filter as { ENTITY_ID: string }).ENTITY_ID)).toEqual(['DEAL_STAGE', 'DEAL_STAGE_1'])
    expect(stageName(pipelines, 1, 'C1:WON')).toBe('Продано')
    expect(stageName([], 1, 'C1:WON')).toBe('C1:WON')
  })

  it('makes a new rule at the won stage with a free id, and sees edits', async () => {
    const pipelines = await loadPipelines(pipelinesPortal())
    const rule = blankRule([won, { ...won, id: 'rule-2' }], 'shop-1', pipelines)
    expect(rule.id).toBe('rule-3')
    expect(rule.trigger).toEqual({ kind: 'deal_stage', category_id: 0, stage_id: 'WON', return_stage_id: null })
    expect(ruleProblems([rule])).toEqual([])
    expect(rulesChanged([won], [{ ...won }])).toBe(false)
    expect(rulesChanged([won], [{ ...won, vat_default: 'vat20' }])).toBe(true)
  })
})

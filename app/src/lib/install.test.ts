import { describe, expect, it } from 'vitest'
import { FakePortal } from './fakePortal'
import { installStorage, placementHandler } from './install'
import { PortalError, type Params } from './portal'
import { ENTITIES } from './storage'

function emptyPortal() {
  const entities = new Map<string, Set<string>>()
  const placements: Params[] = []
  const portal = new FakePortal({
    'entity.get': (p) => {
      if (!entities.has(String(p.ENTITY))) throw new PortalError('ERROR_ENTITY_NOT_FOUND', 'Entity not found')
      return { ENTITY: p.ENTITY }
    },
    'entity.add': (p) => {
      if (entities.has(String(p.ENTITY))) throw new PortalError('ERROR_ENTITY_ALREADY_EXISTS', 'exists')
      entities.set(String(p.ENTITY), new Set())
      return true
    },
    'entity.item.property.get': (p) => [...(entities.get(String(p.ENTITY)) ?? [])].map((code) => ({ PROPERTY: code })),
    'entity.item.property.add': (p) => {
      const props = entities.get(String(p.ENTITY))!
      if (props.has(String(p.PROPERTY))) throw new PortalError('ERROR_PROPERTY_ALREADY_EXISTS', 'exists')
      props.add(String(p.PROPERTY))
      return true
    },
    'placement.get': () => placements.map((p) => ({ placement: p.PLACEMENT, handler: p.HANDLER })),
    'placement.bind': (p) => {
      placements.push(p)
      return true
    }
  })
  return { portal, entities, placements }
}

describe('install', () => {
  it('creates the storages, their properties and the placements on an empty portal', async () => {
    const { portal, entities, placements } = emptyPortal()
    const steps = await installStorage(portal, 'https://cdn.example/app_local/abc/index.html?x=1#/cashier')
    expect([...entities.keys()]).toEqual(['KASSAJOB', 'KASSADEV', 'KASSACFG'])
    expect([...entities.get('KASSAJOB')!]).toEqual(['KASSA', 'STATE', 'TASK', 'SOURCE', 'REPLY', 'RESULT', 'ERROR'])
    expect(placements.map((p) => [p.PLACEMENT, p.TITLE, p.HANDLER])).toEqual([
      ['LEFT_MENU', 'Касса', 'https://cdn.example/app_local/abc/index.html?placement=LEFT_MENU'],
      ['CRM_DEAL_DETAIL_TAB', 'Чек', 'https://cdn.example/app_local/abc/index.html?placement=CRM_DEAL_DETAIL_TAB']
    ])
    expect(steps.every((s) => s.done === 'created')).toBe(true)
    const adds = portal.requests.filter((r) => r.commands.some(([m]) => m === 'entity.add'))
    expect(adds[0]?.commands[0]?.[1]).toEqual({ ENTITY: 'KASSAJOB', NAME: 'Kassa jobs', ACCESS: { AU: 'W' } })
  })
  it('is idempotent: a second run creates nothing', async () => {
    const { portal, placements } = emptyPortal()
    await installStorage(portal, 'https://cdn.example/index.html')
    const steps = await installStorage(portal, 'https://cdn.example/index.html')
    expect(steps.every((s) => s.done === 'present')).toBe(true)
    expect(placements).toHaveLength(2)
  })
  it('completes a half-finished install', async () => {
    const { portal, entities } = emptyPortal()
    entities.set('KASSAJOB', new Set(['KASSA', 'STATE']))
    const steps = await installStorage(portal, 'https://cdn.example/index.html')
    expect([...entities.get('KASSAJOB')!].sort()).toEqual([...ENTITIES[0]!.properties].sort())
    expect(steps.filter((s) => s.kind === 'property' && s.done === 'present').map((s) => s.name)).toEqual(['KASSAJOB.KASSA', 'KASSAJOB.STATE'])
  })
  it('stops on a real error (a non-admin)', async () => {
    const portal = new FakePortal({ 'entity.get': () => { throw new PortalError('ACCESS_DENIED', 'Access denied!') } })
    await expect(installStorage(portal, 'https://cdn.example/index.html')).rejects.toThrow(/Access denied/)
  })
  it('makes the handler from the page URL', () => {
    expect(placementHandler('https://a.example/x/index.html#/journal', 'LEFT_MENU')).toBe('https://a.example/x/index.html?placement=LEFT_MENU')
  })
})

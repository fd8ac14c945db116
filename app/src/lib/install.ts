/**
 * First open by an admin: the storages and their properties (idempotent, so opening the
 * install page again repairs a half-finished install), the left-menu entry and the "Чек" tab
 * in the deal card, then installFinish (done by the page through the SDK).
 */
import { type Portal, PortalError, isCode } from './portal'
import { ENTITIES, type EntityDefinition } from './storage'

export interface PlacementDefinition { placement: string, title: Record<'ru' | 'en', string> }

export const PLACEMENTS: PlacementDefinition[] = [
  { placement: 'LEFT_MENU', title: { ru: 'Касса', en: 'Kassa' } },
  { placement: 'CRM_DEAL_DETAIL_TAB', title: { ru: 'Чек', en: 'Receipt' } }
]

export type InstallStep = { kind: 'entity' | 'property' | 'placement', name: string, done: 'created' | 'present' }

async function ensureEntity(portal: Portal, def: EntityDefinition, steps: InstallStep[]): Promise<void> {
  try {
    await portal.call('entity.get', { ENTITY: def.entity })
    steps.push({ kind: 'entity', name: def.entity, done: 'present' })
  } catch (error) {
    if (!isCode(error, 'ERROR_ENTITY_NOT_FOUND')) throw error
    try {
      await portal.call('entity.add', { ENTITY: def.entity, NAME: def.name, ACCESS: def.access })
      steps.push({ kind: 'entity', name: def.entity, done: 'created' })
    } catch (addError) {
      if (!isCode(addError, 'ERROR_ENTITY_ALREADY_EXISTS')) throw addError
      steps.push({ kind: 'entity', name: def.entity, done: 'present' })
    }
  }
  const existing = await portal.call<{ PROPERTY?: string }[]>('entity.item.property.get', { ENTITY: def.entity })
  const have = new Set((existing ?? []).map((p) => String(p.PROPERTY)))
  const missing = def.properties.filter((code) => !have.has(code))
  for (const code of def.properties.filter((c) => have.has(c))) steps.push({ kind: 'property', name: `${def.entity}.${code}`, done: 'present' })
  if (missing.length === 0) return
  const answers = await portal.batch(missing.map((code) => ['entity.item.property.add', { ENTITY: def.entity, PROPERTY: code, NAME: code, TYPE: 'S' }]))
  missing.forEach((code, i) => {
    const error = answers[i]?.error
    if (error && !isCode(error, 'ERROR_PROPERTY_ALREADY_EXISTS')) throw error
    steps.push({ kind: 'property', name: `${def.entity}.${code}`, done: error ? 'present' : 'created' })
  })
}

/** The handler URL of a placement: the app's own index.html (a static app has no server). */
export function placementHandler(appUrl: string, placement: string): string {
  const url = new URL(appUrl)
  url.hash = ''
  url.search = `?placement=${encodeURIComponent(placement)}`
  return url.toString()
}

async function ensurePlacements(portal: Portal, appUrl: string, steps: InstallStep[]): Promise<void> {
  const bound = await portal.call<{ placement?: string, PLACEMENT?: string }[]>('placement.get', {})
  const have = new Set((bound ?? []).map((p) => p.placement ?? p.PLACEMENT ?? ''))
  for (const def of PLACEMENTS) {
    if (have.has(def.placement)) {
      steps.push({ kind: 'placement', name: def.placement, done: 'present' })
      continue
    }
    try {
      await portal.call('placement.bind', {
        PLACEMENT: def.placement,
        HANDLER: placementHandler(appUrl, def.placement),
        TITLE: def.title.ru,
        LANG_ALL: { ru: { TITLE: def.title.ru }, en: { TITLE: def.title.en } }
      })
      steps.push({ kind: 'placement', name: def.placement, done: 'created' })
    } catch (error) {
      if (!(error instanceof PortalError) || !/ALREADY_BINDED|ALREADY_BOUND/.test(error.code)) throw error
      steps.push({ kind: 'placement', name: def.placement, done: 'present' })
    }
  }
}

/** Creates what is missing; returns what it found and did, in order. */
export async function installStorage(portal: Portal, appUrl: string): Promise<InstallStep[]> {
  const steps: InstallStep[] = []
  for (const def of ENTITIES) await ensureEntity(portal, def, steps)
  await ensurePlacements(portal, appUrl, steps)
  return steps
}

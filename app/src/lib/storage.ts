/** The Bitrix24 storages, from the definitions the daemon uses too (storage.json). */
import definitions from '#storage'

export interface EntityDefinition {
  entity: string
  name: string
  access: Record<string, 'R' | 'W' | 'X'>
  properties: string[]
}

export const ENTITIES: EntityDefinition[] = (definitions as { entities: EntityDefinition[] }).entities

function entityCode(code: string): string {
  const found = ENTITIES.find((e) => e.entity === code)
  if (!found) throw new Error(`storage.json has no ${code} storage`)
  return found.entity
}

export const JOB_ENTITY = entityCode('KASSAJOB')
export const DEVICE_ENTITY = entityCode('KASSADEV')
export const SETTINGS_ENTITY = entityCode('KASSACFG')

/**
 * The app's shared state: the frame connection, the kassas from KASSADEV (for every page's
 * picker), the central settings of each kassa, and the pull listener feeding the job watcher.
 */
import { reactive, shallowRef } from 'vue'
import type { AppContext } from './lib/b24'
import type { PullHandle } from './lib/pull'
import { type Kassa, type DeviceItem, kassaFromItem, sortForPicker } from './lib/fleet'
import { DEVICE_ENTITY, SETTINGS_ENTITY } from './lib/storage'
import { type SettingsItem, settingsFromItem } from './lib/settings'
import { isCode } from './lib/portal'
import { setLang } from './lib/i18n'

export type Phase = 'connecting' | 'no-frame' | 'needs-install' | 'ready'

export const app = reactive({
  phase: 'connecting' as Phase,
  error: '',
  kassas: [] as Kassa[],
  settings: {} as Record<string, SettingsItem>
})

export const frame = shallowRef<AppContext | null>(null)

type PullListener = (command: string, params: unknown) => void
type ReconnectListener = () => void
const pullListeners = new Set<PullListener>()
const reconnectListeners = new Set<ReconnectListener>()
let pull: PullHandle | null = null

export function onPull(listener: PullListener, onReconnect?: ReconnectListener): () => void {
  pullListeners.add(listener)
  if (onReconnect) reconnectListeners.add(onReconnect)
  return () => {
    pullListeners.delete(listener)
    if (onReconnect) reconnectListeners.delete(onReconnect)
  }
}

export function ctx(): AppContext {
  if (!frame.value) throw new Error('not connected to Bitrix24')
  return frame.value
}

/** Whether the storages exist (the daemon or an earlier install may have made them). */
async function installed(c: AppContext): Promise<boolean> {
  try {
    await c.portal.call('entity.get', { ENTITY: DEVICE_ENTITY })
    await c.portal.call('entity.get', { ENTITY: SETTINGS_ENTITY })
    return !c.b24.isInstallMode
  } catch (error) {
    if (isCode(error, 'ERROR_ENTITY_NOT_FOUND')) return false
    throw error
  }
}

export async function loadKassas(): Promise<Kassa[]> {
  const c = ctx()
  const items = await c.portal.call<DeviceItem[]>('entity.item.get', { ENTITY: DEVICE_ENTITY, SORT: { ID: 'ASC' } })
  const now = new Date()
  app.kassas = sortForPicker((items ?? []).map((item) => kassaFromItem(item, now)))
  return app.kassas
}

export async function loadSettings(): Promise<void> {
  const c = ctx()
  const items = await c.portal.call<{ ID: string, NAME?: string, PROPERTY_VALUES?: Record<string, unknown> }[]>('entity.item.get', { ENTITY: SETTINGS_ENTITY })
  const byKassa: Record<string, SettingsItem> = {}
  // NAMEs starting with @ are not kassas (`@automation`: the CRM automation rules).
  for (const item of items ?? []) if (item.NAME && !item.NAME.startsWith('@')) byKassa[item.NAME] = settingsFromItem(item.NAME, item)
  app.settings = byKassa
}

export async function start(connect: () => Promise<AppContext>): Promise<void> {
  try {
    const c = await connect()
    frame.value = c
    setLang(c.lang)
    if (!(await installed(c))) {
      app.phase = 'needs-install'
      return
    }
    app.phase = 'ready'
    await Promise.all([loadKassas(), loadSettings()]).catch((error: unknown) => {
      app.error = error instanceof Error ? error.message : String(error)
    })
    const { listenPull } = await import('./lib/pull')
    pull?.stop()
    pull = listenPull(
      c,
      (command, params) => pullListeners.forEach((listener) => listener(command, params)),
      () => reconnectListeners.forEach((listener) => listener())
    )
  } catch (error) {
    app.phase = 'no-frame'
    // Outside a portal the SDK says so with JSSDK_CLIENT_SIDE_WARNING; the page's own words suffice.
    const code = (error as { code?: unknown } | null)?.code
    app.error = code === 'JSSDK_CLIENT_SIDE_WARNING' ? '' : error instanceof Error ? error.message : String(error)
  }
}

export function setInstalled(): void {
  app.phase = 'ready'
}

/**
 * The SDK's pull client (the portal's push connection) for live job state: a chunk of its own
 * (≈ 300 kB of the SDK), imported once the app is ready, so the first page paints without it.
 */
import { B24PullClientManager, PullStatus, SubscriptionType } from '@bitrix24/b24jssdk'
import type { AppContext } from './b24'

export interface PullHandle { stop(): void }

/** Application events of this app's channel, and a callback each time the connection is back. */
export function listenPull(
  ctx: AppContext,
  onMessage: (command: string, params: unknown) => void,
  onReconnect: () => void
): PullHandle {
  const client = new B24PullClientManager({ b24: ctx.b24, restApplication: ctx.b24.auth.getUniq('kassa'), userId: ctx.userId })
  client.subscribe({
    moduleId: 'application',
    callback: (data: { command?: string, params?: unknown }) => onMessage(String(data?.command ?? ''), data?.params)
  })
  // Every time the connection is (back) online: the first time too, for events sent before it.
  client.subscribe({
    type: SubscriptionType.Status,
    callback: (data: { status?: PullStatus }) => {
      if (data?.status === PullStatus.Online) onReconnect()
    }
  })
  client.start().catch(() => undefined)
  return { stop: () => client.destroy() }
}

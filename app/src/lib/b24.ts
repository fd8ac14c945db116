/**
 * The SDK in frame mode behind the Portal interface, plus what the pages need from the frame:
 * who the user is, admin or not, the portal and its refresh token (pairing), installFinish,
 * The pull client for live job state is in ./pull (a chunk of its own, loaded once the app
 * is ready). Only these two modules import @bitrix24/b24jssdk.
 */
import { type AjaxResult, type B24Frame, initializeB24Frame } from '@bitrix24/b24jssdk'
import { type BatchAnswer, type Command, type Params, type Portal, PortalError } from './portal'

/** Bitrix24's error code carried by the SDK's errors (AjaxError.code), or "ERROR". */
function codeOf(error: Error): string {
  const code: unknown = (error as Error & { code?: unknown }).code
  return typeof code === 'string' && code ? code : 'ERROR'
}

function errorOf(result: { getErrors(): IterableIterator<Error> }): PortalError {
  for (const error of result.getErrors()) return new PortalError(codeOf(error), error.message)
  return new PortalError('ERROR', 'the portal refused the request')
}

function asPortalError(error: unknown): PortalError {
  if (error instanceof PortalError) return error
  if (error instanceof Error) return new PortalError(codeOf(error), error.message)
  return new PortalError('ERROR', String(error))
}

export class FramePortal implements Portal {
  constructor(readonly b24: B24Frame) {}

  private async raw<T>(method: string, params: Params): Promise<AjaxResult<T>> {
    let answer: AjaxResult<T>
    try {
      answer = await this.b24.actions.v2.call.make<T>({ method, params })
    } catch (error) {
      throw asPortalError(error)
    }
    if (!answer.isSuccess) throw errorOf(answer)
    return answer
  }

  async call<T = unknown>(method: string, params: Params = {}): Promise<T> {
    const answer = await this.raw<T>(method, params)
    return answer.getData()?.result as T
  }

  async page<T = unknown>(method: string, params: Params): Promise<{ items: T[], total: number }> {
    const answer = await this.raw<T[]>(method, params)
    const items = (answer.getData()?.result ?? []) as T[]
    return { items, total: answer.getTotal() || items.length }
  }

  async batch(commands: Command[]): Promise<BatchAnswer[]> {
    let response
    try {
      response = await this.b24.actions.v2.batch.make({
        calls: commands.map(([method, params]) => ({ method, params })),
        options: { isHaltOnError: false, returnAjaxResult: true }
      })
    } catch (error) {
      throw asPortalError(error)
    }
    const data = response.getData() as AjaxResult<unknown>[] | Record<string, AjaxResult<unknown>> | null | undefined
    if (!data) throw errorOf(response)
    const list = Array.isArray(data) ? data : Object.values(data)
    return commands.map((_, i) => {
      const one = list[i]
      if (!one) return { error: new PortalError('ERROR', 'no answer for this command') }
      return one.isSuccess ? { result: one.getData()?.result } : { error: errorOf(one) }
    })
  }
}

export interface AppContext {
  b24: B24Frame
  portal: FramePortal
  isAdmin: boolean
  lang: string
  domain: string
  userId: number
  userName: string
  placement: string
  placementOptions: Record<string, unknown>
}

export async function connectFrame(): Promise<AppContext> {
  // The app retries job sends itself, looking first (jobs.ts): the SDK must not resend an add.
  const b24 = await initializeB24Frame({ restrictionParams: { retryOnNetworkError: false } })
  const portal = new FramePortal(b24)
  const auth = b24.auth.getAuthData()
  let userId = 0
  let userName = ''
  try {
    const user = await portal.call<{ ID?: string, NAME?: string, LAST_NAME?: string }>('user.current')
    userId = Number(user?.ID ?? 0)
    userName = [user?.LAST_NAME, user?.NAME].filter(Boolean).join(' ')
  } catch {
    // user_brief scope missing: the page still works, the operator name comes from settings.
  }
  return {
    b24,
    portal,
    isAdmin: b24.auth.isAdmin,
    lang: String(b24.getLang() ?? 'ru'),
    domain: auth ? auth.domain : '',
    userId,
    userName,
    placement: String(b24.placement.placement ?? ''),
    placementOptions: (b24.placement.options ?? {}) as Record<string, unknown>
  }
}

/**
 * Refresh tokens for pairing: the one the frame holds and, after asking the portal for a new
 * pair, the newest. The newest is the main token; the first is the spare when it differs
 * (whether Bitrix24 keeps both chains alive is unconfirmed; the appliance copes either way).
 */
export async function pairingTokens(b24: B24Frame): Promise<{ main: string, spare?: string }> {
  const first = b24.auth.getAuthData()
  const fresh = await b24.auth.refreshAuth()
  const main = fresh.refresh_token
  const spare = first && first.refresh_token !== main ? first.refresh_token : undefined
  return spare ? { main, spare } : { main }
}

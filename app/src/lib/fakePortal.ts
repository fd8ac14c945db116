/** An in-memory portal for unit tests: records every request, answers from handlers. */
import { type BatchAnswer, type Command, type Params, type Portal, PortalError } from './portal'

export type Handler = (params: Params) => unknown

export class FakePortal implements Portal {
  readonly requests: { kind: 'call' | 'batch', commands: Command[] }[] = []
  constructor(readonly handlers: Record<string, Handler> = {}) {}

  private answer(method: string, params: Params): unknown {
    const handler = this.handlers[method]
    if (!handler) throw new PortalError('ERROR_METHOD_NOT_FOUND', `no handler for ${method}`)
    return handler(params)
  }

  async call<T = unknown>(method: string, params: Params = {}): Promise<T> {
    this.requests.push({ kind: 'call', commands: [[method, params]] })
    return this.answer(method, params) as T
  }

  async batch(commands: Command[]): Promise<BatchAnswer[]> {
    this.requests.push({ kind: 'batch', commands })
    return commands.map(([method, params]) => {
      try {
        return { result: this.answer(method, params) }
      } catch (error) {
        if (error instanceof PortalError) return { error }
        throw error
      }
    })
  }

  async page<T = unknown>(method: string, params: Params): Promise<{ items: T[], total: number }> {
    const items = await this.call<T[]>(method, params)
    return { items, total: items.length }
  }

  methods(): string[] {
    return this.requests.flatMap((r) => r.commands.map(([m]) => m))
  }
}

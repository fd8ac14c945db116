/**
 * The REST calls the pages make, behind a small interface: the real one wraps the SDK's
 * B24Frame (b24.ts); unit tests use an in-memory portal. Errors keep Bitrix24's code.
 */

export type Params = Record<string, unknown>
export type Command = [method: string, params: Params]

export class PortalError extends Error {
  constructor(readonly code: string, message: string) {
    super(message)
  }
}

export interface BatchAnswer { result?: unknown, error?: PortalError }

export interface Portal {
  /** One REST method; resolves with its `result`, throws PortalError. */
  call<T = unknown>(method: string, params?: Params): Promise<T>
  /** One `batch` request (at most 50 commands), every command answered, none halting the rest. */
  batch(commands: Command[]): Promise<BatchAnswer[]>
  /** One list page with the total, for paged lists (entity.item.get, catalog lists). */
  page<T = unknown>(method: string, params: Params): Promise<{ items: T[], total: number }>
}

export const isCode = (error: unknown, ...codes: string[]): boolean =>
  error instanceof PortalError && codes.includes(error.code)

/**
 * The pairing code: everything `sudo snap set kassa-appliance bitrix.pairing=<code>` needs,
 * in one shell-safe word. Format (docs/configuration.md "Pairing code"):
 *
 *   "kp1." + base64url(UTF-8 of compact JSON), no padding
 *
 * JSON keys: portal ("https://<host>"), client_id, client_secret, refresh_token,
 * spare_refresh_token (optional), kassa (the kassa id). Nothing else; no whitespace.
 */

export const PAIRING_PREFIX = 'kp1.'

export interface Pairing {
  portal: string
  client_id: string
  client_secret: string
  refresh_token: string
  spare_refresh_token?: string
  kassa: string
}

export class PairingError extends Error {}

const KASSA_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/
const PORTAL_RE = /^https:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?$/
const CLIENT_ID_RE = /^\S{1,128}$/
const SECRET_RE = /^\S{16,512}$/

/** The problems of a pairing, each naming its field; [] when it is usable. */
export function pairingProblems(p: Partial<Pairing>): string[] {
  const problems: string[] = []
  if (!p.portal || !PORTAL_RE.test(p.portal)) problems.push('portal: expected https://<portal host>, no path')
  if (!p.client_id || !CLIENT_ID_RE.test(p.client_id)) problems.push('client_id: expected the app\'s client_id, e.g. local.5f1a2b3c4d5e6f.12345678')
  if (!p.client_secret || !SECRET_RE.test(p.client_secret)) problems.push('client_secret: expected 16–512 characters without spaces')
  if (!p.refresh_token || !SECRET_RE.test(p.refresh_token)) problems.push('refresh_token: expected 16–512 characters without spaces')
  if (p.spare_refresh_token !== undefined && !SECRET_RE.test(p.spare_refresh_token)) problems.push('spare_refresh_token: expected 16–512 characters without spaces')
  if (p.spare_refresh_token !== undefined && p.spare_refresh_token === p.refresh_token) problems.push('spare_refresh_token: the same as refresh_token; expected a second, independent token')
  if (!p.kassa || !KASSA_RE.test(p.kassa)) problems.push('kassa: expected 1–64 letters, digits, "-" or "_", starting with a letter or digit')
  return problems
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new PairingError('the code has characters outside base64url (A–Z, a–z, 0–9, "-", "_")')
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4)
  let binary: string
  try {
    binary = atob(padded)
  } catch {
    throw new PairingError('the code is cut or mistyped (not valid base64url)')
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

/** The code for a pairing; throws PairingError when a field is unusable. */
export function encodePairing(pairing: Pairing): string {
  const problems = pairingProblems(pairing)
  if (problems.length) throw new PairingError(problems.join('; '))
  const ordered: Pairing = {
    portal: pairing.portal,
    client_id: pairing.client_id,
    client_secret: pairing.client_secret,
    refresh_token: pairing.refresh_token,
    ...(pairing.spare_refresh_token ? { spare_refresh_token: pairing.spare_refresh_token } : {}),
    kassa: pairing.kassa
  }
  return PAIRING_PREFIX + toBase64Url(new TextEncoder().encode(JSON.stringify(ordered)))
}

const KEYS = new Set(['portal', 'client_id', 'client_secret', 'refresh_token', 'spare_refresh_token', 'kassa'])

/** The pairing in a code; throws PairingError with the reason (never echoing a secret). */
export function decodePairing(code: string): Pairing {
  const text = code.trim()
  if (!text.startsWith(PAIRING_PREFIX)) throw new PairingError(`the code must start with "${PAIRING_PREFIX}"`)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromBase64Url(text.slice(PAIRING_PREFIX.length))))
  } catch (error) {
    if (error instanceof PairingError) throw error
    throw new PairingError('the code is cut or mistyped (its content is not JSON)')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PairingError('the code does not hold a pairing object')
  const record = value as Record<string, unknown>
  const unknown = Object.keys(record).filter((key) => !KEYS.has(key))
  if (unknown.length) throw new PairingError(`unknown field ${unknown.join(', ')}; expected only ${[...KEYS].join(', ')}`)
  for (const [key, field] of Object.entries(record)) {
    if (typeof field !== 'string') throw new PairingError(`${key}: expected text`)
  }
  const pairing = record as unknown as Pairing
  const problems = pairingProblems(pairing)
  if (problems.length) throw new PairingError(problems.join('; '))
  return pairing
}

/** The exact command the admin runs on the appliance. */
export function pairingCommand(code: string): string {
  return `sudo snap set kassa-appliance bitrix.pairing=${code}`
}

/** "example.bitrix24.ru" or "https://example.bitrix24.ru/" → "https://example.bitrix24.ru". */
export function portalUrl(domain: string): string {
  const host = domain.trim().replace(/^https?:\/\//, '').replace(/\/.*$/, '')
  return `https://${host}`
}

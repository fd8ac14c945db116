import { describe, expect, it } from 'vitest'
import { type Pairing, PairingError, decodePairing, encodePairing, pairingCommand, portalUrl } from './pairing'

const pairing: Pairing = {
  portal: 'https://example.bitrix24.ru',
  client_id: 'local.5f1a2b3c4d5e6f.12345678',
  client_secret: 'S3cr3tS3cr3tS3cr3tS3cr3t',
  refresh_token: 'rt-main-0123456789abcdef',
  spare_refresh_token: 'rt-spare-0123456789abcdef',
  kassa: 'kassa-1'
}

describe('pairing code', () => {
  it('round-trips and is one shell-safe word', () => {
    const code = encodePairing(pairing)
    expect(code).toMatch(/^kp1\.[A-Za-z0-9_-]+$/)
    expect(decodePairing(code)).toEqual(pairing)
    expect(pairingCommand(code)).toBe(`sudo snap set kassa-appliance bitrix.pairing=${code}`)
  })
  it('is base64url of compact JSON (the format the configure hook decodes)', () => {
    const code = encodePairing({ ...pairing, spare_refresh_token: undefined as unknown as string })
    const json = Buffer.from(code.slice(4), 'base64url').toString('utf-8')
    expect(json).toBe('{"portal":"https://example.bitrix24.ru","client_id":"local.5f1a2b3c4d5e6f.12345678","client_secret":"S3cr3tS3cr3tS3cr3tS3cr3t","refresh_token":"rt-main-0123456789abcdef","kassa":"kassa-1"}')
  })
  it('refuses bad codes with the reason and never the secret', () => {
    expect(() => decodePairing('xx.abc')).toThrow(/start with "kp1."/)
    expect(() => decodePairing('kp1.***')).toThrow(/base64url/)
    expect(() => decodePairing('kp1.' + Buffer.from('not json').toString('base64url'))).toThrow(/not JSON/)
    const bad = 'kp1.' + Buffer.from(JSON.stringify({ ...pairing, client_secret: 'short' })).toString('base64url')
    try {
      decodePairing(bad)
      throw new Error('accepted')
    } catch (error) {
      expect(error).toBeInstanceOf(PairingError)
      expect(String(error)).toMatch(/client_secret: expected 16–512/)
      expect(String(error)).not.toContain('short')
    }
    const extra = 'kp1.' + Buffer.from(JSON.stringify({ ...pairing, admin: 'x' })).toString('base64url')
    expect(() => decodePairing(extra)).toThrow(/unknown field admin/)
    const cut = encodePairing(pairing).slice(0, 40)
    expect(() => decodePairing(cut)).toThrow(PairingError)
  })
  it('refuses an unusable pairing when encoding', () => {
    expect(() => encodePairing({ ...pairing, portal: 'http://example.ru' })).toThrow(/portal/)
    expect(() => encodePairing({ ...pairing, kassa: '-bad' })).toThrow(/kassa/)
    expect(() => encodePairing({ ...pairing, spare_refresh_token: pairing.refresh_token })).toThrow(/independent/)
  })
  it('makes the portal URL from the SDK domain', () => {
    expect(portalUrl('example.bitrix24.ru')).toBe('https://example.bitrix24.ru')
    expect(portalUrl('https://example.bitrix24.ru/')).toBe('https://example.bitrix24.ru')
  })
})

/**
 * The QR drawing library in a chunk of its own (≈ 10 kB gzip): the first load of the
 * cashier page goes without it; the page starts fetching it when a receipt is sent, so it is
 * there by the time the fiscal result comes back.
 */
type QrModule = typeof import('qrcode')

let loading: Promise<QrModule> | null = null

export function loadQr(): Promise<QrModule> {
  if (!loading) {
    loading = import('qrcode').then(
      (mod) => (mod as QrModule & { default?: QrModule }).default ?? mod,
      (error: unknown) => {
        loading = null // a failed fetch is tried again next time
        throw error
      }
    )
  }
  return loading
}

/** The QR code of `text` as a PNG data URL (192 px, margin 1, correction level M). */
export async function qrDataUrl(text: string): Promise<string> {
  const qr = await loadQr()
  return qr.toDataURL(text, { margin: 1, width: 192, errorCorrectionLevel: 'M' })
}

/**
 * Positions from the Bitrix24 product catalog (crm.product.list: it returns the price with
 * the product, where catalog.product.list needs the catalog's iblock id and a second call
 * for prices), and from a deal's product rows (crm.deal.productrows.get, for the "Чек" tab).
 */
import { formatKopecks, roundToKopecks } from './money'
import { type PositionDraft, type VatType, emptyPosition } from './task'
import type { Portal } from './portal'

export interface CatalogProduct { ID: string | number, NAME?: string, PRICE?: string | number | null }
export interface DealRow { PRODUCT_NAME?: string, PRICE?: string | number, QUANTITY?: string | number, TAX_RATE?: string | number | null, DISCOUNT_SUM?: string | number }

const priceText = (value: unknown): string => {
  if (value === null || value === undefined || value === '') return ''
  return formatKopecks(roundToKopecks(String(value)))
}

/** The VAT type for a rate in percent (22 → vat22); null rate → none. */
export function vatForRate(rate: unknown, fallback: VatType): VatType {
  if (rate === null || rate === undefined || rate === '') return 'none'
  const value = Number(rate)
  const known: Record<number, VatType> = { 0: 'vat0', 5: 'vat5', 7: 'vat7', 10: 'vat10', 20: 'vat20', 22: 'vat22' }
  return known[value] ?? fallback
}

export function productToPosition(product: CatalogProduct, vat: VatType): PositionDraft {
  return { ...emptyPosition(vat), name: String(product.NAME ?? '').slice(0, 128), price: priceText(product.PRICE) }
}

/** A deal's row: the price after the row discount is what Bitrix24 charges per unit. */
export function dealRowToPosition(row: DealRow, vat: VatType): PositionDraft {
  const quantity = row.QUANTITY === undefined ? '1' : String(Number(row.QUANTITY))
  return { ...emptyPosition(vatForRate(row.TAX_RATE, vat)), name: String(row.PRODUCT_NAME ?? '').slice(0, 128), price: priceText(row.PRICE), quantity }
}

export async function searchProducts(portal: Portal, query: string): Promise<CatalogProduct[]> {
  if (query.trim().length < 2) return []
  const items = await portal.call<CatalogProduct[]>('crm.product.list', {
    order: { NAME: 'ASC' },
    filter: { '%NAME': query.trim() },
    select: ['ID', 'NAME', 'PRICE']
  })
  return (items ?? []).slice(0, 20)
}

export async function dealPositions(portal: Portal, dealId: number, vat: VatType): Promise<PositionDraft[]> {
  const rows = await portal.call<DealRow[]>('crm.deal.productrows.get', { id: dealId })
  return (rows ?? []).map((row) => dealRowToPosition(row, vat))
}

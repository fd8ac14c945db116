import { describe, expect, it } from 'vitest'
import { dealRowToPosition, productToPosition, searchProducts, vatForRate } from './catalog'
import { FakePortal } from './fakePortal'

describe('catalog positions', () => {
  it('takes the name and the exact price', () => {
    expect(productToPosition({ ID: 1, NAME: 'Кофе', PRICE: '145.6000' }, 'vat22')).toMatchObject({ name: 'Кофе', price: '145.60', quantity: '1', vat: 'vat22' })
    expect(productToPosition({ ID: 1, NAME: 'Без цены', PRICE: null }, 'none').price).toBe('')
  })
  it('maps a deal row with its VAT rate', () => {
    expect(dealRowToPosition({ PRODUCT_NAME: 'Чай', PRICE: 99.99, QUANTITY: 2, TAX_RATE: 10 }, 'vat22')).toMatchObject({ name: 'Чай', price: '99.99', quantity: '2', vat: 'vat10' })
    expect(vatForRate(null, 'vat22')).toBe('none')
    expect(vatForRate(13, 'vat22')).toBe('vat22')
  })
  it('searches by name with a LIKE filter', async () => {
    const portal = new FakePortal({ 'crm.product.list': () => [{ ID: 1, NAME: 'Кофе', PRICE: 1 }] })
    expect(await searchProducts(portal, 'к')).toEqual([])
    expect(await searchProducts(portal, 'Коф')).toHaveLength(1)
    expect(portal.requests[0]?.commands[0]?.[1]).toMatchObject({ filter: { '%NAME': 'Коф' } })
  })
})

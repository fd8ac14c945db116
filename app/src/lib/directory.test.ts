import { describe, expect, it } from 'vitest'
import { FakePortal } from './fakePortal'
import { type Params, PortalError } from './portal'
import { departmentTree, loadDepartments, loadPeople, namesOf, readPages, unavailable, withId } from './directory'

describe('company structure for the pickers', () => {
  it('lists departments in tree order, sub-departments under their parent', () => {
    const tree = departmentTree([
      { id: 12, name: 'Магазин на Ленина', parent: 5, sort: 500 },
      { id: 1, name: 'Компания', parent: null, sort: 500 },
      { id: 7, name: 'Бухгалтерия', parent: 1, sort: 100 },
      { id: 5, name: 'Продажи', parent: 1, sort: 500 },
      { id: 30, name: 'Сирота', parent: 99, sort: 500 }
    ])
    expect(tree.map((d) => [d.id, d.depth])).toEqual([[1, 0], [7, 1], [5, 1], [12, 2], [30, 0]])
  })
  it('cuts a loop in the structure instead of walking it forever', () => {
    const tree = departmentTree([{ id: 2, name: 'A', parent: 3, sort: 1 }, { id: 3, name: 'B', parent: 2, sort: 2 }])
    expect(tree.map((d) => d.id)).toEqual([2, 3])
  })
  it('reads the first page alone, the rest in one batch, up to the cap', async () => {
    const all = Array.from({ length: 120 }, (_, i) => ({ ID: String(i + 1), NAME: `D${i + 1}` }))
    const portal = new FakePortal({ 'department.get': (p: Params) => all.slice(Number(p.start), Number(p.start) + 50) })
    portal.page = async (method, params) => ({ items: await portal.call(method, params), total: all.length })
    expect((await loadDepartments(portal)).length).toBe(120)
    expect(portal.requests.map((r) => [r.kind, r.commands.map(([, p]) => p.start)])).toEqual([['call', [0]], ['batch', [50, 100]]])
    expect((await readPages(portal, 'department.get', {}, 2)).length).toBe(100)
  })
  it('names users by last and first name, only active ones asked for', async () => {
    const portal = new FakePortal({ 'user.get': () => [{ ID: '3', NAME: 'Анна', LAST_NAME: 'Иванова' }, { ID: '4', EMAIL: 'x@example.invalid' }, { ID: 'bad' }] })
    expect(await loadPeople(portal)).toEqual([{ id: 3, name: 'Иванова Анна' }, { id: 4, name: 'x@example.invalid' }])
    expect(portal.requests[0]?.commands[0]?.[1]).toMatchObject({ FILTER: { ACTIVE: true } })
  })
  it('tells a missing scope from another failure', () => {
    expect(unavailable(new PortalError('insufficient_scope', 'no scope')).noScope).toBe(true)
    expect(unavailable(new PortalError('QUERY_LIMIT_EXCEEDED', 'too many')).noScope).toBe(false)
  })
  it('adds a picked id once and names the typed ones', () => {
    expect(withId('', 5)).toBe('5')
    expect(withId('5, 12', 5)).toBe('5, 12')
    expect(withId('5 12', 7)).toBe('5, 12, 7')
    expect(namesOf('5, 99 x', new Map([[5, 'Продажи']]))).toEqual({ known: ['Продажи'], unknown: [99] })
  })
})

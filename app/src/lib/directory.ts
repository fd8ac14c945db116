/**
 * The company structure and the users, for the Settings page's pickers (who may create
 * jobs, who hears of a kassa's problems): `department.get` (scope `department`,
 * dev.1c-bitrix.ru rest_help/departments/department_get.php: ID, NAME, SORT, PARENT) and
 * `user.get` (scope `user`/`user_brief`, b24restdocs api-reference/user/user-get.md: bots
 * and other non-people left out, 50 a page). Without the scope (or on any failure) the page
 * keeps the typed ids: the lists only help to pick them.
 */
import { type Command, type Portal, isCode } from './portal'

export interface Department { id: number, name: string, parent: number | null, sort: number }
/** A department in tree order, `depth` 0 for a top one. */
export interface DepartmentOption { id: number, name: string, depth: number }
export interface Person { id: number, name: string }

export const PAGE = 50
/** Pages read at most (one request, then one `batch` of the rest): 1000 departments. */
export const DEPARTMENT_PAGES = 20
/** 500 users: a larger portal types the other ids. */
export const USER_PAGES = 10

/** A list the page could not read, and whether only the app's scope is missing. */
export interface Unavailable { noScope: boolean, message: string }

const NO_SCOPE_CODES = ['insufficient_scope', 'invalid_scope', 'ACCESS_DENIED', 'ERROR_METHOD_NOT_FOUND']

export function unavailable(error: unknown): Unavailable {
  return { noScope: isCode(error, ...NO_SCOPE_CODES), message: error instanceof Error ? error.message : String(error) }
}

type Row = Record<string, unknown>

/** Every page of a `start`-paged list up to `pages` pages: the first alone (for the total),
 * the rest in one batch (at most 50 commands). */
export async function readPages(portal: Portal, method: string, params: Record<string, unknown>, pages: number): Promise<Row[]> {
  const first = await portal.page<Row>(method, { ...params, start: 0 })
  const wanted = Math.min(pages, Math.ceil(first.total / PAGE))
  const rest: Command[] = []
  for (let page = 1; page < wanted; page++) rest.push([method, { ...params, start: page * PAGE }])
  const rows = [...first.items]
  if (rest.length) {
    for (const answer of await portal.batch(rest)) {
      if (answer.error) throw answer.error
      if (Array.isArray(answer.result)) rows.push(...(answer.result as Row[]))
    }
  }
  return rows
}

const id = (value: unknown): number | null => {
  const n = Number(value)
  return value !== null && value !== '' && Number.isInteger(n) && n > 0 ? n : null
}

export function departmentFrom(row: Row): Department | null {
  const own = id(row.ID)
  if (own === null) return null
  const sort = Number(row.SORT)
  return { id: own, name: typeof row.NAME === 'string' && row.NAME ? row.NAME : `#${own}`, parent: id(row.PARENT), sort: Number.isFinite(sort) ? sort : 500 }
}

export function personFrom(row: Row): Person | null {
  const own = id(row.ID)
  if (own === null) return null
  const name = [row.LAST_NAME, row.NAME].filter((part) => typeof part === 'string' && part).join(' ')
  return { id: own, name: name || (typeof row.EMAIL === 'string' && row.EMAIL ? row.EMAIL : `#${own}`) }
}

export async function loadDepartments(portal: Portal): Promise<Department[]> {
  const rows = await readPages(portal, 'department.get', { sort: 'ID', order: 'ASC' }, DEPARTMENT_PAGES)
  return rows.map(departmentFrom).filter((d): d is Department => d !== null)
}

export async function loadPeople(portal: Portal): Promise<Person[]> {
  const rows = await readPages(portal, 'user.get', { FILTER: { ACTIVE: true }, sort: 'LAST_NAME', order: 'ASC' }, USER_PAGES)
  return rows.map(personFrom).filter((p): p is Person => p !== null)
}

/** Departments in tree order (each followed by its sub-departments, by SORT then name); a
 * department whose parent is not listed is a top one; a loop in the data is cut. */
export function departmentTree(list: Department[]): DepartmentOption[] {
  const byId = new Map(list.map((d) => [d.id, d]))
  const children = new Map<number | null, Department[]>()
  for (const d of list) {
    const parent = d.parent !== null && byId.has(d.parent) && d.parent !== d.id ? d.parent : null
    children.set(parent, [...(children.get(parent) ?? []), d])
  }
  const order = (a: Department, b: Department): number => a.sort - b.sort || a.name.localeCompare(b.name) || a.id - b.id
  const out: DepartmentOption[] = []
  const seen = new Set<number>()
  const walk = (parent: number | null, depth: number): void => {
    for (const d of [...(children.get(parent) ?? [])].sort(order)) {
      if (seen.has(d.id)) continue
      seen.add(d.id)
      out.push({ id: d.id, name: d.name, depth })
      walk(d.id, depth + 1)
    }
  }
  walk(null, 0)
  // Departments only reachable through a loop (A under B under A): listed at the top.
  for (const d of [...list].sort(order)) {
    if (!seen.has(d.id)) {
      seen.add(d.id)
      out.push({ id: d.id, name: d.name, depth: 0 })
      walk(d.id, 1)
    }
  }
  return out
}

/** The ids typed so far with `picked` added at the end (once). */
export function withId(text: string, picked: number): string {
  const parts = text.split(/[\s,;]+/).filter(Boolean)
  if (parts.includes(String(picked))) return parts.join(', ')
  return [...parts, String(picked)].join(', ')
}

/** Names of the typed ids (`#17?` for one the list does not have); ids that do not parse are
 * left to the field's own check. */
export function namesOf(text: string, names: ReadonlyMap<number, string>): { known: string[], unknown: number[] } {
  const known: string[] = []
  const unknown: number[] = []
  for (const part of text.split(/[\s,;]+/).filter((p) => /^\d+$/.test(p))) {
    const name = names.get(Number(part))
    if (name === undefined) unknown.push(Number(part))
    else known.push(name)
  }
  return { known, unknown }
}

/**
 * Errors tied to the field they name. The daemon's ERROR message (and the app's own checks)
 * start with a field path: "items[0].price: -1 is negative; expected 0 or more". Several
 * problems come joined by "; " or on separate lines. The page shows each one next to the
 * field it names, and the rest (no path, or a path the form has no field for) on top.
 */

export interface FieldProblem {
  /** Normalised path: "items.0.price", "payments", "clientInfo.emailOrPhone"; "" if none. */
  path: string
  message: string
}

const PATH_RE = /^\s*((?:[A-Za-z_][\w]*)(?:\[\d+\]|\.[A-Za-z_][\w]*)*)\s*:\s*(.+)$/s

/** "items[0].price" → "items.0.price". */
export function normalisePath(path: string): string {
  return path.replace(/\[(\d+)\]/g, '.$1')
}

/**
 * The daemon's framing of a refused task (fiscal/receipt_errors.py TaskValidationError):
 * "invalid task: <problem>" for one, "invalid task (N problems):" then "  - <problem>" lines.
 */
const SINGLE_HEAD_RE = /^\s*invalid task:\s*/
const LIST_HEAD_RE = /^\s*invalid task \([\d,\s]+ problems?\):\s*$/
const BULLET_RE = /^\s*-\s+/

/** Splits a message into problems; a part without a leading path keeps path "". */
export function parseProblems(message: string): FieldProblem[] {
  const parts: string[] = []
  for (const raw of message.split(/\n+/)) {
    if (LIST_HEAD_RE.test(raw)) continue
    const line = raw.replace(SINGLE_HEAD_RE, '').replace(BULLET_RE, '')
    // "a: x; b: y" — split at "; " only where the next part starts with a path and a colon.
    const pieces = line.split(/;\s+(?=[A-Za-z_][\w]*(?:\[\d+\]|\.[A-Za-z_][\w]*)*\s*:)/)
    parts.push(...pieces)
  }
  return parts
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const match = PATH_RE.exec(part)
      if (match && match[1] && match[2] && looksLikeField(match[1])) {
        return { path: normalisePath(match[1]), message: match[2].trim() }
      }
      return { path: '', message: part }
    })
}

/** A word before a colon is a field path only if it reads like one (not "error: …"). */
function looksLikeField(path: string): boolean {
  const head = path.split(/[.[]/)[0] ?? ''
  return KNOWN_TOP_FIELDS.has(head) || path.includes('[') || path.includes('.')
}

const KNOWN_TOP_FIELDS = new Set([
  'type', 'items', 'payments', 'total', 'taxationType', 'electronically', 'operator',
  'clientInfo', 'paymentsPlace', 'paymentsAddress', 'cashSum', 'taxes', 'machineNumber'
])

/**
 * Problems grouped by the form field they belong to. `fields` lists the paths the form can
 * show a message at ("items.0.price", "items.0", "payments", …); a problem goes to the
 * longest listed prefix of its path, or to "" (the top of the form).
 */
export function problemsByField(problems: FieldProblem[], fields: Iterable<string>): Map<string, string[]> {
  const known = [...fields].sort((a, b) => b.length - a.length)
  const grouped = new Map<string, string[]>()
  for (const problem of problems) {
    const target = known.find((field) => problem.path === field || problem.path.startsWith(field + '.')) ?? ''
    const list = grouped.get(target) ?? []
    list.push(problem.path && target !== problem.path ? `${problem.path}: ${problem.message}` : problem.message)
    grouped.set(target, list)
  }
  return grouped
}

/** An error the app raises itself, carrying problems in the daemon's format. */
export class TaskProblems extends Error {
  constructor(readonly problems: FieldProblem[]) {
    super(problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; '))
  }
}

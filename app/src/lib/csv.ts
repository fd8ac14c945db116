/** CSV export of journal rows: ";"-separated with a BOM, as Excel in a Russian locale reads it. */
import type { JobRow } from './jobRow'

export const CSV_COLUMNS = [
  'job', 'created', 'kassa', 'type', 'state', 'total', 'cashier', 'source',
  'fd_number', 'fiscal_sign', 'fn_number', 'error'
] as const

/** One cell: quoted when needed; a leading = + - @ is defused so a sheet never runs it. */
export function csvCell(value: string, separator = ';'): string {
  let text = value
  if (/^[=+\-@\t\r]/.test(text) && !/^-?\d+(?:\.\d+)?$/.test(text)) text = `'${text}`
  return /["\n\r]/.test(text) || text.includes(separator) ? `"${text.replace(/"/g, '""')}"` : text
}

const fiscal = (row: JobRow, key: string): string => {
  const value = row.result?.fiscalParams?.[key]
  return typeof value === 'string' || typeof value === 'number' ? String(value) : ''
}

export function csvRow(row: JobRow): string[] {
  return [
    row.jobId,
    row.created ? row.created.toISOString() : '',
    row.kassa,
    row.taskType,
    row.state,
    row.total,
    row.createdBy,
    row.source,
    fiscal(row, 'fiscalDocumentNumber'),
    fiscal(row, 'fiscalDocumentSign'),
    fiscal(row, 'fnNumber'),
    row.error ? `${row.error.code}: ${row.error.message}` : ''
  ]
}

export function toCsv(rows: JobRow[], separator = ';'): string {
  const lines = [CSV_COLUMNS.join(separator), ...rows.map((row) => csvRow(row).map((cell) => csvCell(cell, separator)).join(separator))]
  return '\ufeff' + lines.join('\r\n') + '\r\n'
}

/**
 * CSV for spreadsheets (RFC 4180), safe to open: a cell a spreadsheet would run as a formula
 * (starting with = + - @, a tab or a carriage return) is prefixed with a single quote, since the
 * entries hold what users typed (names, search terms) and an admin opens the file in Excel.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value: string): string {
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n']/.test(safe) || safe !== value ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Rows to CSV text, CRLF line ends as RFC 4180 says. */
export function toCsv(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [header, ...rows].map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

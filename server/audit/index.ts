export { AuditLog, type AuditEntry, type AuditFilter, type AuditInput, type AuditLogOptions } from './audit-log.js';
export { csvCell, toCsv } from './csv.js';

export { AdminService, type Actor, type AdminServiceOptions, type PoolRow, type ServerRow, type UserRow } from './admin-service.js';
export { AccountRepo, type DisabledAccount } from './account-repo.js';

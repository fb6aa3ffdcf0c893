export { EphemeralCuller, type EphemeralCullerOptions, type CullResult } from './ephemeral-culler.js';
export { PersistentCuller, type PersistentCullerOptions, type PersistentCullResult, type PersistentCullReason } from './persistent-culler.js';

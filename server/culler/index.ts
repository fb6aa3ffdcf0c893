export { EphemeralCuller, type EphemeralCullerOptions, type CullResult } from './ephemeral-culler.js';

import { z } from 'zod';
import { int } from './types.js';

/** Options of the sign-in throttle (issue 9). Merged into the one config schema in schema.ts. */
export const throttleShape = {
  loginAddressFailureLimit: int(1, 1_000_000)
    .default(100)
    .describe('Failed sign-ins allowed per address in 15 minutes, over all usernames, from browsers in which nobody signed in before (password spraying). Successful sign-ins never count, and browsers known to a user are exempt, so a school behind one address is not locked out.'),
} satisfies Record<string, z.ZodTypeAny>;

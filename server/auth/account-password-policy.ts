import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';
import { BadRequest } from '../errors.js';

export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 1024;
// zxcvbn's 3: "safely unguessable" against an offline attack on a slow hash such as ours.
const MIN_SCORE = 3;

/** A new password that breaks the policy; the message says what to change. */
export class WeakPassword extends BadRequest {
  constructor(reason: string) {
    super(`That password can't be used: ${reason}`);
  }
}

/**
 * The strong-password policy of local accounts: at least 12 characters, and not guessable by
 * zxcvbn-ts (its lists of common and leaked passwords, words, names, keyboard patterns, dates
 * and repeats), with the account's own name and email counted as guessable too.
 */
export class PasswordPolicy {
  private readonly zxcvbn = new ZxcvbnFactory({ dictionary: { ...common.dictionary, ...en.dictionary }, graphs: common.adjacencyGraphs, translations: en.translations });

  /** Throws WeakPassword with the reason; returns when the password is fine. */
  check(password: string, userInputs: readonly string[] = []): void {
    if (password.length < MIN_PASSWORD_LENGTH) throw new WeakPassword(`it must have at least ${MIN_PASSWORD_LENGTH} characters.`);
    if (password.length > MAX_PASSWORD_LENGTH) throw new WeakPassword(`it must have at most ${MAX_PASSWORD_LENGTH} characters.`);
    const inputs = userInputs.flatMap((s) => [s, ...s.split(/[@.\-_\s]+/)]).filter((s) => s.length >= 3);
    const result = this.zxcvbn.check(password.slice(0, 100), inputs) as { score: number; feedback: { warning: string | null; suggestions: string[] } };
    if (result.score < MIN_SCORE) {
      const why = result.feedback.warning ?? 'it is too easy to guess.';
      throw new WeakPassword(`${why} ${result.feedback.suggestions.join(' ')}`.trim());
    }
  }
}

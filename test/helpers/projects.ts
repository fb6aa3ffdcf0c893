import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { Hub } from '../../server/index.js';
import { removeServerAccounts } from './hub.js';
import type { TestSmtp } from './smtp.js';

/** Unmount every project filesystem a test hub left under its data folder (a failing test, say). */
export function unmountUnder(dir: string): void {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const m of mounts.filter((m) => m.startsWith(dir + '/')).reverse()) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // Already gone.
    }
  }
}

/**
 * The projects tests' teardown: the hub closes (its servers stop), then, whatever that did,
 * the mail server closes, and the project filesystems, Unix accounts and data folder go.
 */
export async function closeProjectHub(hub: Hub | undefined, smtp: TestSmtp, dataDir: string): Promise<void> {
  try {
    await hub?.close();
  } finally {
    await smtp.close();
    unmountUnder(dataDir);
    removeServerAccounts(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

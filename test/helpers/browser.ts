import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (ENVIRONMENT.md); playwright's own browser downloads cannot work here. */
export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Flags for a headless Chromium that talks to nobody but the pages it is sent to: no
 * background fetches, component or sync updates, and no QUIC probes.
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launch Debian's Chromium through playwright-core ($CHROMIUM_PATH overrides the binary).
 * Throws with the fix in the message when the binary is missing: browser tests never skip,
 * because a quietly skipped UI test would look green on a hub a browser can't use.
 */
export async function launchBrowser(extraArgs: readonly string[] = []): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM_PATH;
  try {
    fs.accessSync(executablePath, fs.constants.X_OK);
  } catch {
    throw new Error(`Chromium is missing at ${executablePath}: install it with \`apt-get install -y chromium\` or set CHROMIUM_PATH to its binary.`);
  }
  return chromium.launch({ executablePath, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/** Every URL a page asked for, in order (documents, scripts, XHR, fetch, EventSource, WebSockets). */
export interface RequestLog {
  readonly urls: string[];
  /** The URLs not on one of `allowedOrigins`; a ws: URL counts as its http: origin. data: and blob: never leave the page. */
  foreign(allowedOrigins: readonly string[]): string[];
}

/**
 * Start recording every request made from now on by `page` and anything else in its browser
 * context (popups, service workers), plus the page's WebSocket connections.
 */
export function recordRequests(page: Page): RequestLog {
  const urls: string[] = [];
  page.context().on('request', (req) => urls.push(req.url()));
  page.on('websocket', (ws) => urls.push(ws.url()));
  return {
    urls,
    foreign(allowedOrigins) {
      const allowed = new Set(allowedOrigins.map((o) => new URL(o).origin));
      return urls.filter((u) => {
        const url = new URL(u);
        if (url.protocol === 'data:' || url.protocol === 'blob:') return false;
        if (url.protocol === 'ws:') url.protocol = 'http:';
        else if (url.protocol === 'wss:') url.protocol = 'https:';
        return !allowed.has(url.origin);
      });
    },
  };
}

/** Sign in through the hub's real login form in this page; resolves on the page after it. */
export async function signInInBrowser(page: Page, hubUrl: string, username: string, password: string): Promise<void> {
  await page.goto(`${hubUrl}/hub/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/hub/login'));
}

/** Open a notebook in JupyterLab, wait for its kernel, run all its cells. */
export async function runNotebookInLab(page: Page, labUrl: string, timeoutMs: number): Promise<void> {
  await page.goto(labUrl);
  await page.locator('.jp-NotebookPanel:visible').waitFor({ timeout: timeoutMs });
  await page.locator('#jp-main-statusbar').getByText('Python 3 (ipykernel) | Idle').waitFor({ timeout: timeoutMs });
  await page.locator('.lm-MenuBar-itemLabel', { hasText: /^Run$/ }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Run All Cells$/ }).click();
}

export type { Browser, Page };

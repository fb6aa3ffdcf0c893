import type { BrowserContext, Response } from 'playwright-core';

const SLOW_MS = 150_000;

/**
 * A hub as a university runs it: its own host and a domain for user servers under one site
 * (example.edu), so Chromium keeps one HTTP cache for every workspace of the site, as it does
 * for a real deployment. `resolverFlag` (for launchBrowser) maps these names to 127.0.0.1 and
 * resolves nothing else.
 */
export const SAME_SITE = {
  hubHost: 'hub.example.edu',
  contentDomain: 'apps.example.edu',
  resolverFlag: '--host-resolver-rules=MAP hub.example.edu 127.0.0.1, MAP *.apps.example.edu 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
} as const;

/** One of JupyterLab's files (a URL with /static/lab/) the visit asked for, and what came over the wire. */
export interface LabFileSeen {
  url: string;
  status: number;
  /** Bytes of body received over the network; 0 when the browser's cache answered. */
  bodyBytes: number;
  encoding: string | undefined;
}

export interface LabVisit {
  /** The workspace's origin (the visitor's own). */
  origin: string;
  files: LabFileSeen[];
  /** "Edit and run" clicked → the notebook drawn in JupyterLab, its kernel idle. */
  labMs: number;
}

/**
 * A "Try it" visit in Chromium, in `context` (one browser profile, so its HTTP cache): click
 * "Try it", open the index in JupyterLab with "Edit and run", wait for its kernel, End session.
 * Page errors and failed requests before End session go to `onProblem` (after it, JupyterLab's
 * kernel connection dies with the server, as it should).
 */
export async function tryVisitInLab(context: BrowserContext, hubUrl: string, onProblem: (problem: string) => void = () => undefined): Promise<LabVisit> {
  const page = await context.newPage();
  let ending = false;
  page.on('pageerror', (e) => {
    if (!ending) onProblem(`uncaught error on ${page.url()}: ${e.message}`);
  });
  page.on('requestfailed', (r) => {
    if (!ending) onProblem(`request failed: ${r.url()}: ${r.failure()?.errorText ?? ''}`);
  });
  const pending: Promise<LabFileSeen>[] = [];
  page.on('response', (r: Response) => {
    if (!new URL(r.url()).pathname.includes('/static/lab/')) return;
    pending.push(r.request().sizes().then((s) => ({ url: r.url(), status: r.status(), bodyBytes: Math.max(0, s.responseBodySize), encoding: r.headers()['content-encoding'] })));
  });
  try {
    await page.goto(`${hubUrl}/hub/try`);
    await page.getByRole('button', { name: 'Try it' }).click();
    await page.waitForURL(/\/oerhub\/workspace$/, { timeout: SLOW_MS });
    const origin = new URL(page.url()).origin;
    const lab = page.frameLocator('#try-frame');
    await lab.locator('article.nb', { hasText: 'This is a temporary workspace' }).waitFor({ timeout: SLOW_MS });
    const clicked = Date.now();
    await lab.getByRole('link', { name: 'Edit and run' }).click();
    await lab.locator('.jp-NotebookPanel:visible .jp-RenderedMarkdown', { hasText: 'This is a temporary workspace' }).first().waitFor({ timeout: SLOW_MS });
    await lab.locator('#jp-main-statusbar').getByText('Python 3 (ipykernel) | Idle').waitFor({ timeout: SLOW_MS });
    const labMs = Date.now() - clicked;
    const files = await Promise.all(pending);
    ending = true;
    await page.getByRole('button', { name: 'End session' }).click();
    await page.waitForURL(`${hubUrl}/hub/try/ended`);
    return { origin, files, labMs };
  } finally {
    await page.close();
  }
}

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../log.js';
import { renderNotebook, type RenderedNotebook } from './render.js';

/**
 * The "Try it" samples, executed once and rendered, so a visitor sees them at once, before
 * their own server has started a kernel. Executed with nbclient in the notebook environment
 * (at low CPU priority, as an unprivileged account when the hub is root), and kept in
 * `cacheDir/<hash>/`, where the hash covers every sample file, the runner and the
 * environment's Bokeh: a hub restart, or a second hub on the same cache, renders from the
 * cache in milliseconds. Rendering is done here, in the hub, with the sanitising renderer.
 */

// One Python process runs the notebooks one after another, each in its own folder.
const RUNNER = String.raw`
import json, os, sys
import nbformat
from nbclient import NotebookClient

for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    error = None
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
    nbformat.write(nb, path)
    print("OERHUB-RUN " + json.dumps({"file": os.path.basename(path), "error": error}), flush=True)
`;
const RUN_TIMEOUT_MS = 10 * 60_000;
// The execution must not slow down visitors or the pool's starts: it waits its turn.
const NICENESS = 15;

export interface SampleGalleryOptions {
  samplesDir: string;
  /** The notebook venv (its python runs the samples). */
  venv: string;
  cacheDir: string;
  /** Absolute URL prefix of the hub's vendored libraries, for the map frames (known once the hub listens). */
  vendorBase: () => string;
  /** BokehJS version the hub serves (part of the cache key: the outputs name it). */
  bokehVersion: string | null;
  log: Logger;
}

export interface RenderedSample extends RenderedNotebook {
  /** File name, e.g. bokeh_heatmap.ipynb. */
  file: string;
}

/** The URL stem of a sample page (bokeh_heatmap.ipynb -> bokeh_heatmap); undefined when it is no sample name. */
export function sampleStem(file: string): string | undefined {
  const m = /^([A-Za-z0-9_-]{1,100})\.ipynb$/.exec(file);
  return m?.[1];
}

export class SampleGallery {
  private readonly rendered = new Map<string, RenderedSample>();
  private readonly abort = new AbortController();
  private preparing: Promise<void> | undefined;
  private failed: string | undefined;

  constructor(private readonly o: SampleGalleryOptions) {}

  /** Execute (or read from the cache) and render the samples. Resolves when done; never rejects. */
  prepare(): Promise<void> {
    this.preparing ??= this.doPrepare().catch((err: Error) => {
      this.failed = err.message;
      this.o.log.error({ err: err.message }, 'the samples could not be executed; visitors see JupyterLab only');
    });
    return this.preparing;
  }

  /** The rendered sample by URL stem, once prepared; undefined before, after a failure, or for an unknown name. */
  get(stem: string): RenderedSample | undefined {
    return this.rendered.get(stem);
  }

  /** Whether the samples are rendered (false while executing, and after a failure). */
  get ready(): boolean {
    return this.rendered.size > 0;
  }

  get error(): string | undefined {
    return this.failed;
  }

  close(): Promise<void> {
    this.abort.abort();
    return this.preparing ?? Promise.resolve();
  }

  private async doPrepare(): Promise<void> {
    const t0 = Date.now();
    const files = fs
      .readdirSync(this.o.samplesDir)
      .filter((f) => sampleStem(f) !== undefined)
      .sort();
    if (files.length === 0) return;
    const key = this.cacheKey();
    const dir = path.join(this.o.cacheDir, key);
    let cached = true;
    if (!files.every((f) => fs.existsSync(path.join(dir, f)))) {
      cached = false;
      await this.execute(files, dir);
    }
    for (const file of files) {
      const stem = sampleStem(file)!;
      const r = renderNotebook(fs.readFileSync(path.join(dir, file), 'utf8'), {
        vendorBase: this.o.vendorBase(),
        notebookLink: (rel) => {
          const s = sampleStem(rel);
          return s && files.includes(rel) ? `./${s}` : undefined;
        },
      });
      this.rendered.set(stem, { ...r, file });
    }
    this.o.log.info({ samples: files.length, cached, ms: Date.now() - t0 }, 'samples rendered');
  }

  /** Everything that changes the executed outputs. */
  private cacheKey(): string {
    const h = createHash('sha256');
    h.update(RUNNER).update(String(this.o.bokehVersion)).update(this.o.venv);
    const walk = (rel: string): void => {
      for (const e of fs.readdirSync(path.join(this.o.samplesDir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        if (e.name.startsWith('.') || e.name === '__pycache__') continue;
        const r = path.join(rel, e.name);
        if (e.isDirectory()) walk(r);
        else if (e.isFile()) h.update(r).update('\0').update(fs.readFileSync(path.join(this.o.samplesDir, r))).update('\0');
      }
    };
    walk('');
    return h.digest('hex').slice(0, 24);
  }

  private async execute(files: string[], dest: string): Promise<void> {
    const python = path.join(this.o.venv, 'bin', 'python');
    if (!fs.existsSync(python)) throw new Error(`no notebook environment at ${this.o.venv} (npm run venv)`);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-samples-run-'));
    try {
      fs.cpSync(this.o.samplesDir, work, { recursive: true, filter: (src) => !path.basename(src).startsWith('.') });
      // As root, the samples run as nobody: they are code, and need nothing of the hub's.
      const asRoot = process.getuid?.() === 0;
      if (asRoot) chownTree(work, 65534, 65534);
      const child = spawn(python, ['-c', RUNNER, ...files.map((f) => path.join(work, f))], {
        cwd: work,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: work, LANG: 'C.UTF-8', MPLBACKEND: 'Agg', PYTHONUNBUFFERED: '1' },
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(RUN_TIMEOUT_MS)]),
        killSignal: 'SIGKILL',
      });
      if (child.pid !== undefined) {
        try {
          os.setPriority(child.pid, NICENESS);
        } catch {
          /* a platform without priorities: run at the normal one */
        }
      }
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4000)));
      const code = await new Promise<number | null>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', resolve);
      });
      const results = stdout
        .split('\n')
        .filter((l) => l.startsWith('OERHUB-RUN '))
        .map((l) => JSON.parse(l.slice('OERHUB-RUN '.length)) as { file: string; error: string | null });
      if (results.length !== files.length) throw new Error(`the sample runner stopped (exit ${code}): ${stderr.slice(-1000)}`);
      for (const r of results) if (r.error) this.o.log.warn({ sample: r.file, err: r.error.slice(0, 500) }, 'a sample failed part-way; it is shown with the outputs it has');
      // Into the cache in one rename, so a reader never sees half of it.
      fs.mkdirSync(this.o.cacheDir, { recursive: true, mode: 0o700 });
      const tmp = fs.mkdtempSync(path.join(this.o.cacheDir, '.tmp-'));
      for (const f of files) fs.copyFileSync(path.join(work, f), path.join(tmp, f));
      fs.rmSync(dest, { recursive: true, force: true });
      fs.renameSync(tmp, dest);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
}

function chownTree(dir: string, uid: number, gid: number): void {
  fs.chownSync(dir, uid, gid);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else fs.chownSync(p, uid, gid);
  }
}

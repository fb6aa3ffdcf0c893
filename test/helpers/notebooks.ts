import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { notebookVenv } from './venv.js';

/** The parts of an nbformat 4 notebook the tests read. */
export interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
}

export interface NotebookCell {
  cell_type: string;
  source: string | string[];
  outputs?: NotebookOutput[];
}

export interface Notebook {
  cells: NotebookCell[];
  metadata: Record<string, unknown>;
  nbformat: number;
}

export interface NotebookRun {
  /** File name, relative to the folder that was run. */
  name: string;
  /** Absolute path of the executed notebook (written back in place, outputs included). */
  file: string;
  /** null when every cell ran; otherwise nbclient's message (with the traceback). */
  error: string | null;
}

/**
 * Executes notebooks top to bottom with nbclient, in the notebook venv (test/helpers/venv.ts),
 * each with its own folder as the working directory, and writes each executed notebook back
 * in place. One Python process runs them one after another. The kernel is the venv's own
 * `python3` (ipykernel's built-in kernelspec uses the interpreter it is installed in).
 */
const RUNNER = String.raw`
import json, os, sys, traceback
import nbformat
from nbclient import NotebookClient

timeout = int(sys.argv[1])
for path in sys.argv[2:]:
    nb = nbformat.read(path, as_version=4)
    error = None
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    except Exception as e:  # CellExecutionError carries the cell's traceback in its message
        error = f"{type(e).__name__}: {e}"
    nbformat.write(nb, path)
    print("OERHUB-RUN " + json.dumps({"file": path, "error": error}), flush=True)
`;

export async function executeNotebooks(dir: string, names: readonly string[], cellTimeoutS = 120): Promise<NotebookRun[]> {
  const python = path.join(notebookVenv(), 'bin', 'python');
  const files = names.map((n) => path.resolve(dir, n));
  const child = spawn(python, ['-c', RUNNER, String(cellTimeoutS), ...files], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    // No proxy settings leak in; MPLBACKEND keeps any matplotlib import headless.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? dir, LANG: 'C.UTF-8', MPLBACKEND: 'Agg', PYTHONUNBUFFERED: '1' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const runs = new Map<string, string | null>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('OERHUB-RUN ')) continue;
    const parsed: unknown = JSON.parse(line.slice('OERHUB-RUN '.length));
    const { file, error } = parsed as { file: string; error: string | null };
    runs.set(file, error);
  }
  return files.map((file, i) => {
    if (!runs.has(file)) {
      throw new Error(`the notebook runner stopped (exit ${code}) before ${names[i]}:\n${stderr.slice(-4000)}`);
    }
    return { name: names[i] ?? file, file, error: runs.get(file) ?? null };
  });
}

export function readNotebook(file: string): Notebook {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Notebook;
}

/** nbformat stores multi-line strings either whole or as a list of lines. */
export function joinText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join('');
  return JSON.stringify(value);
}

export interface OutputPart {
  cell: number;
  output: NotebookOutput;
  /** A mime type for display data, or `stream:stdout` / `stream:stderr` / `error`. */
  kind: string;
  text: string;
}

/** Every piece of every code cell's outputs, as text. */
export function outputParts(nb: Notebook): OutputPart[] {
  const parts: OutputPart[] = [];
  nb.cells.forEach((cell, i) => {
    for (const output of cell.outputs ?? []) {
      if (output.output_type === 'stream') {
        parts.push({ cell: i, output, kind: `stream:${output.name ?? '?'}`, text: joinText(output.text) });
      } else if (output.output_type === 'error') {
        parts.push({ cell: i, output, kind: 'error', text: `${output.ename ?? ''}: ${output.evalue ?? ''}` });
      } else {
        for (const [mime, value] of Object.entries(output.data ?? {})) {
          parts.push({ cell: i, output, kind: mime, text: joinText(value) });
        }
      }
    }
  });
  return parts;
}

/** Undo the HTML escaping of an attribute value (Folium puts the whole map page in iframe srcdoc="..."). */
export function unescapeHtml(s: string): string {
  return s.replace(/&(quot|amp|lt|gt|#39|#x27);/g, (_m, e: string) => ({ quot: '"', amp: '&', lt: '<', gt: '>', '#39': "'", '#x27': "'" })[e] ?? _m);
}

/** The documents inside every <iframe srcdoc="..."> of an HTML string, unescaped. */
export function iframeDocuments(html: string): string[] {
  return [...html.matchAll(/<iframe\b[^>]*\bsrcdoc="([^"]*)"/g)].map((m) => unescapeHtml(m[1] ?? ''));
}

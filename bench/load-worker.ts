/**
 * The benchmark's load generator, run as a child of bench/proxy.ts so that its CPU time is never
 * counted as the hub's (the hub runs inside the parent process). Speaks to the parent over IPC
 * only (bench/bench-protocol.ts); sends traffic only to the addresses the parent gives it, which
 * are all 127.0.0.1. Every job is bounded in time.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import {
  Samples,
  type HttpLoadJob,
  type HttpLoadResult,
  type ParentMessage,
  type WorkerMessage,
  type WorkerResult,
  type WsChurnJob,
  type WsChurnResult,
  type WsRoundTripJob,
  type WsRoundTripResult,
} from './bench-protocol.js';

function send(msg: WorkerMessage): void {
  process.send?.(msg);
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const CHUNKED = /\r\ntransfer-encoding:[^\r]*chunked/i;
const CONNECTION_CLOSE = /\r\nconnection:[ \t]*close/i;
/** Time allowed for requests still in flight when the window closes. */
const DRAIN_MS = 5000;

/** Index just past the end of a chunked body starting at `start`, or -1 if it is not all here yet. */
function chunkedEnd(buf: Buffer, start: number): number {
  let at = start;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', at);
    if (lineEnd === -1) return -1;
    const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
    if (Number.isNaN(size)) throw new Error('bad chunk size');
    if (size === 0) {
      // No trailers expected from Jupyter: the last chunk is "0\r\n\r\n".
      const end = buf.indexOf(HEADER_END, lineEnd);
      return end === -1 ? -1 : end + 4;
    }
    const next = lineEnd + 2 + size + 2;
    if (next > buf.length) return -1;
    at = next;
  }
}

/**
 * A minimal HTTP/1.1 keep-alive load generator on raw sockets: one request in flight per
 * connection, the same pre-serialised request every time. Lighter than http.request, so on a
 * 2-core machine more of the CPU goes to the proxies under test.
 */
class HttpLoad {
  private readonly request: Buffer;
  private readonly samples = new Samples();
  private running = true;
  private inWindow = false;
  private requests = 0;
  private non200 = 0;
  private errors = 0;
  private reconnects = 0;
  private firstBadStatus: number | undefined;
  private inFlight = 0;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly job: HttpLoadJob) {
    const lines = [`GET ${job.path} HTTP/1.1`, 'Connection: keep-alive'];
    if (!Object.keys(job.headers).some((k) => k.toLowerCase() === 'host')) lines.push(`Host: ${job.host}:${job.port}`);
    for (const [k, v] of Object.entries(job.headers)) lines.push(`${k}: ${v}`);
    this.request = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  }

  async run(): Promise<HttpLoadResult> {
    for (let i = 0; i < this.job.connections; i++) this.connect();
    await sleep(this.job.warmupMs);
    this.samples.reset();
    this.requests = this.non200 = this.errors = this.reconnects = 0;
    this.inWindow = true;
    send({ type: 'window-start' });
    const t0 = performance.now();
    await sleep(this.job.durationMs);
    this.inWindow = false;
    const elapsedMs = performance.now() - t0;
    send({ type: 'window-end' });
    this.running = false;
    const drainUntil = Date.now() + DRAIN_MS;
    while (this.inFlight > 0 && Date.now() < drainUntil) await sleep(20);
    for (const s of this.sockets) s.destroy();
    return {
      kind: 'http',
      requests: this.requests,
      non200: this.non200,
      errors: this.errors,
      firstBadStatus: this.firstBadStatus,
      elapsedMs,
      latency: this.samples.summary(),
      reconnects: this.reconnects,
    };
  }

  private connect(): void {
    if (!this.running) return;
    if (this.inWindow) this.reconnects++;
    const socket = net.connect({ host: this.job.host, port: this.job.port });
    socket.setNoDelay(true);
    this.sockets.add(socket);
    let pending: Buffer = Buffer.alloc(0);
    let sentAt = 0;
    let busy = false;
    const fire = (): void => {
      if (!this.running) return;
      busy = true;
      this.inFlight++;
      sentAt = performance.now();
      socket.write(this.request);
    };
    socket.once('connect', fire);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const headerEnd = pending.indexOf(HEADER_END);
      if (headerEnd === -1) return;
      const head = pending.toString('latin1', 0, headerEnd);
      const bodyStart = headerEnd + 4;
      let end: number;
      const length = CONTENT_LENGTH.exec(head);
      if (length) end = bodyStart + Number(length[1]);
      else if (CHUNKED.test(head)) end = chunkedEnd(pending, bodyStart);
      else end = bodyStart; // no body (e.g. 204/304)
      if (end === -1 || end > pending.length) return;
      const status = Number(head.slice(9, 12));
      pending = pending.subarray(end);
      busy = false;
      this.inFlight--;
      if (this.inWindow) {
        this.requests++;
        this.samples.push((performance.now() - sentAt) * 1000);
        if (status !== 200) {
          this.non200++;
          this.firstBadStatus ??= status;
        }
      }
      if (CONNECTION_CLOSE.test(head)) {
        socket.destroy();
        return;
      }
      fire();
    });
    socket.on('error', () => {
      if (this.inWindow) this.errors++;
    });
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (busy) this.inFlight--;
      this.connect();
    });
  }
}

function openSocket(url: string, headers: Readonly<Record<string, string>>, timeoutMs: number): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: { ...headers }, handshakeTimeout: timeoutMs, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(new Error(`upgrade refused: ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}

function closeSocket(ws: WebSocket, timeoutMs: number): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, timeoutMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000);
  });
}

interface KernelReply {
  header: { msg_type: string };
  parent_header: { msg_id?: string };
}

/** Echo round trips to the stand-in upstream: each text must come back before the next goes. */
async function wsEchoes(job: WsRoundTripJob): Promise<WsRoundTripResult> {
  const deadline = Date.now() + job.timeoutMs;
  const ws = await openSocket(job.url, job.headers, 10_000);
  let expected = '';
  let onReply: (() => void) | undefined;
  ws.on('message', (data) => {
    if (String(data) === expected) onReply?.();
  });
  const roundTrip = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no echo of message ${i} within 10 s`)), 10_000);
      expected = `{"bench":${i},"pad":"0123456789abcdef0123456789abcdef"}`;
      onReply = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.send(expected);
    });
  try {
    return await timedRoundTrips(job, deadline, roundTrip);
  } finally {
    await closeSocket(ws, 5000);
  }
}

/** Warm up, then time `job.count` round trips one after another inside the window the parent counts CPU in. */
async function timedRoundTrips(job: WsRoundTripJob, deadline: number, roundTrip: (i: number) => Promise<void>): Promise<WsRoundTripResult> {
  for (let i = 0; i < job.warmup; i++) await roundTrip(i);
  const samples = new Samples();
  send({ type: 'window-start' });
  const t0 = performance.now();
  for (let i = 0; i < job.count && Date.now() < deadline; i++) {
    const start = performance.now();
    await roundTrip(job.warmup + i);
    samples.push((performance.now() - start) * 1000);
  }
  const elapsedMs = performance.now() - t0;
  send({ type: 'window-end' });
  return { kind: 'ws-rtt', messages: samples.length, elapsedMs, latency: samples.summary() };
}

async function wsRoundTrips(job: WsRoundTripJob): Promise<WsRoundTripResult> {
  if (job.message === 'echo') return wsEchoes(job);
  const deadline = Date.now() + job.timeoutMs;
  const ws = await openSocket(job.url, job.headers, 10_000);
  const session = `bench-${process.pid}-${Date.now()}`;
  let waitingFor = '';
  let onReply: (() => void) | undefined;
  const requestType = job.message === 'execute' ? 'execute_request' : 'kernel_info_request';
  const replyType = job.message === 'execute' ? '"execute_reply"' : '"kernel_info_reply"';
  const content = job.message === 'execute' ? { code: 'pass', silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true } : {};
  ws.on('message', (data) => {
    // Jupyter's tornado WebSockets leave Nagle on, so its 2nd small frame of a reply (busy, reply,
    // idle) waits for our ACK, which Linux delays ~40 ms: every path would measure that timer.
    // An unsolicited pong (RFC 6455 5.5.3: no answer expected) carries the ACK at once, through
    // the proxies too, and costs every path the same.
    ws.pong();
    const text = String(data);
    // Only the shell reply ends a round trip; iopub messages are skipped unparsed.
    if (!text.includes(replyType)) return;
    const msg = JSON.parse(text) as KernelReply;
    if (msg.parent_header.msg_id === waitingFor) onReply?.();
  });
  const roundTrip = (i: number): Promise<void> => {
    waitingFor = `${session}-${i}`;
    const msg = {
      header: { msg_id: waitingFor, username: 'bench', session, msg_type: requestType, version: '5.3', date: new Date().toISOString() },
      parent_header: {},
      metadata: {},
      content,
      channel: 'shell',
      buffers: [],
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${replyType} to message ${i} within 10 s`)), 10_000);
      onReply = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.send(JSON.stringify(msg));
    });
  };
  try {
    return await timedRoundTrips(job, deadline, roundTrip);
  } finally {
    await closeSocket(ws, 5000);
  }
}

async function wsChurn(job: WsChurnJob): Promise<WsChurnResult> {
  const deadline = Date.now() + job.timeoutMs;
  let opened = 0;
  let closed = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const t0 = performance.now();
  for (let done = 0; done < job.total && Date.now() < deadline; done += job.batch) {
    const n = Math.min(job.batch, job.total - done);
    const results = await Promise.allSettled(Array.from({ length: n }, () => openSocket(job.url, job.headers, 10_000)));
    const open: WebSocket[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') {
        opened++;
        open.push(r.value);
      } else {
        failed++;
        firstFailure ??= r.reason instanceof Error ? r.reason.message : String(r.reason);
      }
    }
    await Promise.all(open.map((ws) => closeSocket(ws, 5000)));
    closed += open.length;
  }
  return { kind: 'ws-churn', opened, closed, failed, firstFailure, elapsedMs: performance.now() - t0 };
}

async function runJob(msg: ParentMessage): Promise<void> {
  if (msg.type === 'exit') {
    process.disconnect();
    return;
  }
  try {
    const job = msg.job;
    let result: WorkerResult;
    if (job.kind === 'http') result = await new HttpLoad(job).run();
    else if (job.kind === 'ws-rtt') result = await wsRoundTrips(job);
    else result = await wsChurn(job);
    send({ type: 'result', result });
  } catch (err) {
    send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  }
}

if (!process.send) {
  console.error('bench/load-worker.ts is started by bench/proxy.ts, not by hand.');
  process.exit(2);
}
process.on('message', (msg: ParentMessage) => void runJob(msg));
// The parent went away (crash or exit): never linger.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });

/**
 * The benchmark's fast stand-in for a notebook server: a bare node:http server, run as a child
 * of bench/proxy.ts (so its CPU is its own), that answers every request under its base URL with
 * a small fixed JSON body and echoes WebSocket messages. Jupyter spends about 250 µs per request,
 * which hides what the proxies in front of it cost; this one spends a few µs.
 *
 * Like Jupyter it refuses (403) any request without `Authorization: token <secret>`, so a run
 * through the hub also shows that the proxy injected the server's secret.
 *
 * argv: <baseUrl> <secret>. Tells the parent its port over IPC: { port }.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const [baseUrl, secret] = process.argv.slice(2);
if (!process.send || !baseUrl || !secret) {
  console.error('bench/stub-upstream.ts is started by bench/proxy.ts, not by hand.');
  process.exit(2);
}
const expected = `token ${secret}`;
const BODY = Buffer.from(JSON.stringify({ started: '2026-01-01T00:00:00.000Z', last_activity: '2026-01-01T00:00:00.000Z', connections: 0, kernels: 0 }));
const EMPTY_LIST = Buffer.from('[]');

const server = http.createServer((req, res) => {
  if (req.headers.authorization !== expected || !req.url?.startsWith(baseUrl)) {
    res.writeHead(403, { 'content-type': 'application/json', 'content-length': 2 }).end('{}');
    return;
  }
  // The cullers ask for kernels: none are busy.
  const body = req.url.startsWith(`${baseUrl}api/kernels`) ? EMPTY_LIST : BODY;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 120_000;
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  if (req.headers.authorization !== expected || !req.url?.startsWith(baseUrl)) {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => ws.terminate());
  });
});
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
// The parent went away: never linger.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

/**
 * The floor: the least a Node reverse proxy can do, run as a child of bench/proxy.ts. A bare
 * node:http server that pipes every request to one target over a keep-alive pool (plain
 * http.request, no library) and splices WebSocket upgrades; no routing, no auth, no header
 * rewriting, no logging. Whatever the hub spends above this is its own work.
 *
 * argv: <target origin> <max sockets>. Tells the parent its port over IPC: { port }.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const [targetArg, maxSocketsArg] = process.argv.slice(2);
if (!process.send || !targetArg) {
  console.error('bench/floor-proxy.ts is started by bench/proxy.ts, not by hand.');
  process.exit(2);
}
const target = new URL(targetArg);
const maxSockets = Number(maxSocketsArg) || 64;
const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });

const server = http.createServer((req, res) => {
  const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 120_000;
server.on('upgrade', (req, socket, head) => {
  const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: false });
  up.on('upgrade', (answer, upstream, upstreamHead) => {
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 101} ${answer.statusMessage ?? ''}`];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    if (upstreamHead.length) socket.write(upstreamHead);
    if (head.length) upstream.write(head);
    upstream.pipe(socket).pipe(upstream);
    const both = (): void => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on('error', both).on('close', both);
    upstream.on('error', both).on('close', both);
  });
  up.on('response', (answer) => {
    socket.end(`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    answer.resume();
  });
  up.on('error', () => socket.destroy());
  up.end();
});
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpForwarder } from '../../server/proxy/http-forward.js';

/*
 * The proxy's plain-HTTP forwarder between two real node:http servers on 127.0.0.1: a stand-in
 * notebook server ("upstream") and a front server that forwards every request to it, as the
 * hub's proxy does after its checks.
 */

interface Pair {
  front: http.Server;
  upstream: http.Server;
  frontPort: number;
  errors: NodeJS.ErrnoException[];
  agent: http.Agent;
  close(): Promise<void>;
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function pair(onUpstream: http.RequestListener, options: { timeoutMs?: number; headers?: (req: http.IncomingMessage) => string[]; targetPort?: number } = {}): Promise<Pair> {
  const upstream = http.createServer(onUpstream);
  const upstreamPort = options.targetPort ?? (await listen(upstream));
  const target = new URL(`http://127.0.0.1:${upstreamPort}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8, maxFreeSockets: 8 });
  const errors: NodeJS.ErrnoException[] = [];
  const forwarder = new HttpForwarder(agent, options.timeoutMs ?? 10_000, (err, _req, res) => {
    errors.push(err);
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`proxy error ${err.code ?? ''}`);
    else res.destroy();
  });
  const front = http.createServer((req, res) => {
    const headers = options.headers?.(req) ?? ['host', req.headers.host ?? '', 'authorization', 'token the-secret', ...(req.headers['content-type'] ? ['content-type', req.headers['content-type']] : [])];
    if (req.headers['transfer-encoding']) headers.push('transfer-encoding', req.headers['transfer-encoding']);
    if (req.headers['content-length']) headers.push('content-length', req.headers['content-length']);
    forwarder.forward(req, res, target, headers);
  });
  const frontPort = await listen(front);
  return {
    front,
    upstream,
    frontPort,
    errors,
    agent,
    close: async () => {
      agent.destroy();
      front.closeAllConnections();
      upstream.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      if (upstream.listening) await new Promise<void>((resolve) => upstream.close(() => resolve()));
    },
  };
}

function request(port: number, init: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: string | string[] } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: init.method ?? 'GET', path: init.path ?? '/user/ann/api/status', headers: init.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    for (const chunk of Array.isArray(init.body) ? init.body : init.body !== undefined ? [init.body] : []) req.write(chunk);
    req.end();
  });
}

describe('the proxy forwarding a plain HTTP request to a notebook server', () => {
  it('sends exactly the headers the proxy chose (the server token, not the browser\'s) and returns status, headers and body', async () => {
    let seen: http.IncomingHttpHeaders = {};
    let seenUrl = '';
    const p = await pair((req, res) => {
      seen = req.headers;
      seenUrl = req.url ?? '';
      res.writeHead(201, 'Made', { 'content-type': 'application/json', 'x-jupyter': 'yes', 'set-cookie': ['_xsrf=abc; Path=/user/ann/', 'other=1; Path=/'], 'keep-alive': 'timeout=1234' }).end('{"ok":true}');
    });
    try {
      const r = await request(p.frontPort, { path: '/user/ann/api/contents?type=notebook', headers: { authorization: 'token browser-made-this-up', cookie: 'oerhub-user-ann=x' } });
      assert.equal(r.status, 201);
      assert.equal(r.body, '{"ok":true}');
      assert.equal(r.headers['x-jupyter'], 'yes');
      assert.deepEqual(r.headers['set-cookie'], ['_xsrf=abc; Path=/user/ann/', 'other=1; Path=/']);
      // Hop-by-hop: the server's connection to the proxy is not the browser's.
      assert.notEqual(r.headers['keep-alive'], 'timeout=1234');
      assert.equal(seenUrl, '/user/ann/api/contents?type=notebook', 'the path and query arrive unchanged');
      assert.equal(seen.authorization, 'token the-secret');
      assert.equal(seen.cookie, undefined, 'nothing the proxy did not choose is sent');
    } finally {
      await p.close();
    }
  });

  it('streams an upload in chunks and a long answer through, byte for byte', async () => {
    const p = await pair((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const got = Buffer.concat(chunks).toString();
        res.writeHead(200, { 'content-type': 'text/plain' });
        // A chunked answer larger than one socket write.
        for (let i = 0; i < 64; i++) res.write(`${i}:${got.length};`.padEnd(4096, '.'));
        res.end(`|${req.headers['transfer-encoding'] ?? 'no-te'}|${got.slice(0, 10)}`);
      });
    });
    try {
      const parts = Array.from({ length: 20 }, (_, i) => `part-${i}-`.padEnd(10_000, 'x'));
      const r = await request(p.frontPort, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' }, body: parts });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 64 * 4096 + '|chunked|part-0-xxx'.length);
      assert.ok(r.body.endsWith('|chunked|part-0-xxx'), r.body.slice(-40));
      assert.ok(r.body.startsWith('0:200000;'), 'the whole upload arrived');
    } finally {
      await p.close();
    }
  });

  it('answers the error page when the server does not answer within the timeout, as "did not answer in time"', async () => {
    const p = await pair(() => undefined, { timeoutMs: 300 });
    try {
      const r = await request(p.frontPort);
      assert.equal(r.status, 502);
      assert.equal(p.errors[0]?.code, 'ETIMEDOUT');
    } finally {
      await p.close();
    }
  });

  it('answers the error page when nothing listens at the route any more', async () => {
    const closed = http.createServer();
    const port = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const p = await pair(() => undefined, { targetPort: port });
    try {
      const r = await request(p.frontPort);
      assert.equal(r.status, 502);
      assert.equal(p.errors[0]?.code, 'ECONNREFUSED');
    } finally {
      await p.close();
    }
  });

  it('ends the request to the server when the browser goes away before the answer is complete', async () => {
    let upstreamClosed: Promise<void> | undefined;
    const p = await pair((req, res) => {
      upstreamClosed = new Promise((resolve) => res.once('close', () => resolve()));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: p.frontPort, path: '/user/ann/api/events', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => undefined);
        req.once('close', () => resolve());
        req.on('timeout', () => reject(new Error('no first event')));
        req.end();
      });
      assert.ok(upstreamClosed, 'the server got the request');
      await upstreamClosed;
      assert.deepEqual(p.errors, [], 'a browser going away is not a proxy error');
    } finally {
      await p.close();
    }
  });
});

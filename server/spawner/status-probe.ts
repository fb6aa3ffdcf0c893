import http from 'node:http';
import type { SpawnSpec } from './spawner.js';

const PROBE_TIMEOUT_MS = 2000;

/**
 * Status code of `GET <baseUrl>api/status` on 127.0.0.1:port with the server's secret: how every
 * spawner knows Jupyter is ready. Rejects on network errors and after a short timeout.
 */
export function probeStatus(port: number, spec: Pick<SpawnSpec, 'baseUrl' | 'secret'>, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path: `${spec.baseUrl}api/status`,
        headers: { authorization: `token ${spec.secret}` },
        // No keep-alive pool: each probe's socket is closed with it.
        agent: false,
        signal,
        timeout: PROBE_TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.once('timeout', () => req.destroy(new Error('status request timed out')));
    req.once('error', reject);
  });
}

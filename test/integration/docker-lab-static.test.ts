import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import type { HubClient } from '../helpers/client.js';
import { cleanupInstance, dockerHubConfig, requireDockerImage, testInstance } from '../helpers/docker.js';
import { createUsers, signInAndStart, startTestHub } from '../helpers/hub.js';
import { waitFor } from '../helpers/try.js';

/** The main bundle JupyterLab's page loads (its src, as the page has it). */
async function mainBundleOf(client: HubClient, escapedName: string): Promise<string> {
  const lab = await client.follow(`/user/${escapedName}/lab`);
  assert.equal(lab.status, 200, `${lab.url}: ${lab.body.slice(0, 300)}`);
  const src = /<script[^>]+src="([^"]*\/main\.[0-9a-f]+\.js[^"]*)"/.exec(lab.body)?.[1];
  assert.ok(src, 'JupyterLab\'s page loads a main bundle');
  return src.replace(/&amp;/g, '&');
}

/**
 * Issue 14 with the Docker spawner: the image's JupyterLab build is copied out of the image once
 * (from a container that never runs) and served by the hub, so every container of that image
 * loads the same URLs and a browser caches them across workspaces. The first server of a new
 * image serves its own while the copy is made; the bytes the hub serves are the image's own.
 */
describe('JupyterLab\'s build of a Docker image, served by the hub', function () {
  this.timeout(300_000);
  const instance = testInstance('labst');
  let hub: Hub | undefined;

  before(async () => {
    await requireDockerImage();
    hub = await startTestHub('docker-lab-static', dockerHubConfig(instance));
    await createUsers(hub, { 'labst-ann': 'labst-ann-password', 'labst-ben': 'labst-ben-password' });
  });

  after(async () => {
    await hub?.close();
    await cleanupInstance(instance);
  });

  it('the first container serves its own build while the hub copies it; the next loads the same files from the hub', async () => {
    assert.ok(hub);
    const ann = await signInAndStart(hub, 'labst-ann', 'labst-ann-password');
    const annName = (await hub.users.get('labst-ann'))!.escapedName;
    // The first start of this image: the copy has just begun, so the server serves its own.
    const own = await mainBundleOf(ann, annName);
    assert.match(own, new RegExp(`^/user/${annName}/static/lab/main\\.[0-9a-f]+\\.js`), own);
    const build = /main\.([0-9a-f]+)\.js/.exec(own)![1]!;
    const fromServer = await ann.get(own);
    assert.equal(fromServer.status, 200);

    // Once copied, the hub serves the same bytes under the build's name.
    const hubPath = `/hub/static/lab/${build}/main.${build}.js`;
    const served = await waitFor('the hub serves the image\'s build', () => ann.get(hubPath, { 'accept-encoding': 'identity' }), (r) => r.status === 200, 120_000, 500);
    assert.ok(served.raw.equals(fromServer.raw), 'the image\'s own main bundle, byte for byte');
    assert.equal(served.headers.get('cache-control'), 'public, max-age=31536000, immutable');

    // The next container of the image loads JupyterLab from the hub's origin.
    const ben = await signInAndStart(hub, 'labst-ben', 'labst-ben-password');
    const benName = (await hub.users.get('labst-ben'))!.escapedName;
    const shared = await mainBundleOf(ben, benName);
    assert.match(shared, new RegExp(`^http://127\\.0\\.0\\.1:\\d+${hubPath.replace(/\./g, '\\.')}`), shared);
    // And its JupyterLab page still works: its settings API answers through the proxy.
    assert.equal((await ben.get(`/user/${benName}/lab/api/settings`, { accept: 'application/json' })).status, 200);
  });
});

// A tab's node on durable storage (issue 14): three `raft-node serve` processes (ports
// 7500-7502 unless DURABLE_BASE_PORT says otherwise), one persistent Chromium profile with
// `durableStorage` granted. A learner tab reloaded in the middle of a write load comes back from
// the origin private file system under its stored id, with no snapshot transfer, and keeps
// applying in order; wiping its storage gives a new id. Skips, saying why, only if the native
// binary cannot be built.
import { test, expect } from '@playwright/test';
import { buildNative, Cluster, durableContext, liveState, waitFor } from './cluster.mjs';

test.describe.configure({ mode: 'serial' });

const BASE_PORT = Number(process.env.DURABLE_BASE_PORT ?? 7500);
let buildError = null;
let cluster = null;
let browser = null;

test.beforeAll(async () => {
  test.setTimeout(1_900_000);
  buildError = buildNative();
  if (buildError) return;
  cluster = new Cluster({ basePort: BASE_PORT });
  cluster.startAll();
  await cluster.waitLeader();
});

test.afterAll(async () => {
  await browser?.close();
  await cluster?.stopAll();
});

/** Puts `seq-<k>` for k in [from, to) one after another; returns the acknowledged keys. */
async function load(from, to, acknowledged, stop) {
  for (let k = from; k < to && !stop.now; k++) {
    const key = `seq-${String(k).padStart(5, '0')}`;
    await cluster.client({ op: 'put', key, value: String(k) });
    acknowledged.push(key);
  }
}

test('a learner tab reloaded mid-load comes back from OPFS under its id without a snapshot; a wiped one gets a new id', async () => {
  test.skip(buildError !== null, `raft-node could not be built: ${buildError}`);
  test.setTimeout(180_000);
  const origin = `http://${cluster.address(1)}`;
  browser = await durableContext(origin);
  const { page } = browser;
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  const link = cluster.invite(['--uses', '4']);
  await page.goto(link);
  await waitFor(page, () => window.flotilla?.live?.state().status === 'joined');
  const first = await liveState(page);
  expect(first.backend).toBe('opfs');
  expect(first.persistent).toBe(true);
  expect(first.restored).toBe(false);
  await expect(page.locator('#live-storage')).toContainText('origin private file system');
  await expect(page.locator('#live-storage')).toContainText(`node id ${first.nodeId}`);

  // A second tab of the origin cannot take the cluster's Web Lock: its own in-memory learner.
  const second = await browser.context.newPage();
  await second.goto(link);
  await waitFor(second, () => window.flotilla?.live?.state().status === 'joined');
  const other = await liveState(second);
  expect(other.backend).toBe('memory');
  expect(other.nodeId).not.toBe(first.nodeId);
  await expect(second.locator('#live-storage')).toContainText('another tab of this origin holds the stored node');
  await second.close();

  // A write load runs while the tab is reloaded.
  const acknowledged = [];
  const stop = { now: false };
  const writer = load(0, 100_000, acknowledged, stop);
  await waitFor(page, () => window.flotilla.live.state().applied > 60);
  const before = await liveState(page);
  await page.reload();
  await waitFor(page, () => window.flotilla?.live?.state().status === 'joined');
  const after = await liveState(page);
  expect(after.nodeId).toBe(first.nodeId);
  expect(after.restored).toBe(true);
  expect(after.term).toBeGreaterThanOrEqual(before.term);
  await expect(page.locator('#live-storage')).toContainText('(restored from storage)');
  // Keeps applying while the load goes on, then stops the load.
  await waitFor(page, (i) => window.flotilla.live.state().applied > i + 50, before.applied);
  stop.now = true;
  await writer;
  const { index: lastIndex } = await cluster.client({ op: 'put', key: 'marker', value: 'end' });
  await waitFor(page, (i) => window.flotilla.live.state().applied >= i, lastIndex);
  const end = await liveState(page);
  expect(end.snapshotsInstalled, 'no snapshot transfer after the reload').toBe(0);
  expect(end.applyViolations).toBe(0);
  expect(end.appliedEntries, 'the restored log was applied again from the start, in order').toBeGreaterThanOrEqual(lastIndex - 1);
  const kv = new Map(await page.evaluate(() => window.flotilla.live.kv()));
  const missing = acknowledged.filter((key) => !kv.has(key));
  expect(missing, `${acknowledged.length} acknowledged writes`).toEqual([]);

  // A flipped bit in the stored log stops the node, naming the file and offset.
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(link.split('#')[0]);
  await waitFor(page, () => window.flotilla?.live !== undefined);
  const cluster_id = end.clusterId;
  await expect
    .poll(
      () =>
        page.evaluate(async (id) => {
          const root = await navigator.storage.getDirectory();
          const dir = await (await root.getDirectoryHandle('flotilla')).getDirectoryHandle(encodeURIComponent(id));
          try {
            const file = await (await dir.getFileHandle('log-0')).createWritable({ keepExistingData: true });
            const bytes = new Uint8Array(await (await (await dir.getFileHandle('log-0')).getFile()).arrayBuffer());
            await file.write({ type: 'write', position: 12, data: new Uint8Array([bytes[12] ^ 0x40]) });
            await file.close();
            return 'flipped';
          } catch (error) {
            return error.name;
          }
        }, cluster_id),
      { timeout: 10_000 },
    )
    .toBe('flipped');
  await page.evaluate((l) => window.flotilla.live.join(l).catch(() => {}), link);
  await waitFor(page, () => window.flotilla.live.state().status === 'stopped');
  await expect(page.locator('#live-status')).toContainText(`flotilla/${cluster_id}/log-0 offset 0: checksum mismatch`);

  // Wipe the storage (the Worker is gone with the page) and join again: a new id.
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(link.split('#')[0]);
  await expect
    .poll(
      () =>
        page.evaluate(async () => {
          const root = await navigator.storage.getDirectory();
          try {
            await root.removeEntry('flotilla', { recursive: true });
            return 'wiped';
          } catch (error) {
            return error.name;
          }
        }),
      { timeout: 10_000 },
    )
    .toBe('wiped');
  await waitFor(page, () => window.flotilla?.live !== undefined);
  await page.evaluate((l) => window.flotilla.live.join(l), link);
  const fresh = await liveState(page);
  expect(fresh.status).toBe('joined');
  expect(fresh.restored).toBe(false);
  expect(fresh.nodeId).not.toBe(first.nodeId);
  expect(fresh.nodeId).toBeGreaterThan(first.nodeId);
  expect(errors).toEqual([]);
});

test('a restored tab dials every native member its stored records name, not only the invite\'s node', async ({ baseURL }) => {
  test.skip(buildError !== null, `raft-node could not be built: ${buildError}`);
  test.setTimeout(120_000);
  // The page comes from the playground's own server, as when an invite link is pasted into the
  // live view, so it still loads with the invite's node stopped.
  const tab = await durableContext(baseURL);
  try {
    const { page } = tab;
    const link = cluster.invite();
    const inviteNode = cluster.ids.find((id) => link.includes(cluster.address(id)));
    expect(inviteNode, link).toBeDefined();
    await page.goto('/');
    await waitFor(page, () => window.flotilla?.live !== undefined);
    await page.evaluate((l) => window.flotilla.live.join(l), link);
    const first = await liveState(page);
    expect(first.backend).toBe('opfs');
    // Its store holds every native member's address record before the invite's node goes.
    await waitFor(page, (n) => window.flotilla.live.state().members.filter((m) => m.kind === 'native' && m.address).length === n, cluster.ids.length);
    await cluster.stop(inviteNode);
    await page.reload();
    await waitFor(page, () => window.flotilla?.live?.state().status === 'joined');
    const after = await liveState(page);
    expect([after.nodeId, after.restored]).toEqual([first.nodeId, true]);
    const { index } = await cluster.client({ op: 'put', key: 'after-restore', value: 'seen' });
    await waitFor(page, (i) => window.flotilla.live.state().applied >= i, index);
  } finally {
    await tab.close();
    if (!cluster.processes.has(1) || !cluster.processes.has(2) || !cluster.processes.has(3)) {
      for (const id of cluster.ids) if (!cluster.processes.has(id)) cluster.start(id);
      await cluster.waitLeader();
    }
  }
});

test('where OPFS sync handles are missing, IndexedDB (strict) keeps the node across a reload', async () => {
  test.skip(buildError !== null, `raft-node could not be built: ${buildError}`);
  test.setTimeout(60_000);
  const idb = await durableContext(`http://${cluster.address(2)}`);
  try {
    const { page } = idb;
    // `?storage=indexeddb` stands in for a browser without sync access handles.
    const [base, fragment] = cluster.invite().replace(cluster.address(1), cluster.address(2)).split('#');
    await page.goto(`${base}?storage=indexeddb#${fragment}`);
    await waitFor(page, () => window.flotilla?.live?.state().status === 'joined');
    const first = await liveState(page);
    expect(first.backend).toBe('indexeddb');
    await expect(page.locator('#live-storage')).toContainText('IndexedDB');
    await cluster.client({ op: 'put', key: 'idb', value: 'kept' });
    await waitFor(page, () => window.flotilla.live.kv().some(([k]) => k === 'idb'));
    await page.reload();
    await waitFor(page, () => window.flotilla?.live?.state().status === 'joined');
    const after = await liveState(page);
    expect([after.nodeId, after.restored, after.backend]).toEqual([first.nodeId, true, 'indexeddb']);
    await waitFor(page, () => window.flotilla.live.kv().some(([k, v]) => k === 'idb' && v === 'kept'));
  } finally {
    await idb.close();
  }
});

// A browser tab as a voter (issue 14), end to end: two `raft-node serve` voters (ports
// 7510-7511 unless VOTER_BASE_PORT says otherwise) and one tab in a persistent Chromium profile
// with `durableStorage` granted, promoted with `raft-node admin add-voter <tab id>`. With one
// native node stopped, writes commit only with the tab's acknowledgement; the tab reloaded in
// the middle of the load comes back from its storage and no acknowledged write is lost; a tab
// whose storage is wiped comes back as a new learner with a new id; a tab without persistence
// cannot be promoted. Skips, saying why, only if the native binary cannot be built.
import { test, expect, chromium } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { buildNative, Cluster, durableContext, liveState, SECRET, waitFor } from './cluster.mjs';

test.describe.configure({ mode: 'serial' });

const BASE_PORT = Number(process.env.VOTER_BASE_PORT ?? 7510);
let buildError = null;
let cluster = null;
let tab = null;
/** The voter tab whose storage the second test wipes: its id stays a (silent) voter. */
let wipedVoter = null;

test.beforeAll(async () => {
  test.setTimeout(1_900_000);
  buildError = buildNative();
  if (buildError) return;
  cluster = new Cluster({ ids: [1, 2], basePort: BASE_PORT });
  cluster.startAll();
  await cluster.waitLeader();
});

test.afterAll(async () => {
  await tab?.close();
  await cluster?.stopAll();
});

/** Puts `v-<k>` one after another until `stop.now`; the keys acknowledged go to `acknowledged`. */
async function load(acknowledged, stop) {
  for (let k = 0; !stop.now; k++) {
    const key = `v-${String(k).padStart(5, '0')}`;
    await cluster.client({ op: 'put', key, value: String(k) }, { attempts: 300 });
    acknowledged.push(key);
  }
}

const isVoter = () => {
  const s = window.flotilla.live.state();
  return s.members.some((m) => m.id === s.nodeId && (m.role === 'voter' || m.role === 'leader'));
};

test('a tab without persistent storage is refused as a voter, with the reason', async () => {
  test.skip(buildError !== null, `raft-node could not be built: ${buildError}`);
  test.setTimeout(60_000);
  // An ordinary (incognito-like) context: persist() is not granted.
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(cluster.invite());
    await waitFor(page, () => window.flotilla?.live?.state().status === 'joined');
    const state = await liveState(page);
    expect(state.persistent).toBe(false);
    await expect(page.locator('#live-storage')).toContainText('persistence not granted');
    // The status frame reaches the leader after the handshake; the refusal names the reason.
    await expect
      .poll(() => cluster.cliResult(['admin', 'add-voter', String(state.nodeId)]).out, { timeout: 10_000 })
      .toContain('persist');
    const answer = cluster.cliResult(['admin', 'add-voter', String(state.nodeId)]);
    expect(answer.ok).toBe(false);
  } finally {
    await browser.close();
  }
});

test('2 native voters + 1 voter tab: writes commit with one native node down, a reload loses nothing, a wipe means a new id', async () => {
  test.skip(buildError !== null, `raft-node could not be built: ${buildError}`);
  test.setTimeout(240_000);
  const origin = `http://${cluster.address(1)}`;
  tab = await durableContext(origin);
  const { page } = tab;
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  const link = cluster.invite(['--uses', '4']);
  await page.goto(link);
  await waitFor(page, () => window.flotilla?.live?.state().status === 'joined');
  const joined = await liveState(page);
  expect([joined.backend, joined.persistent, joined.campaigns]).toEqual(['opfs', true, false]);

  // Promotion: the tab's status frame allows it; the core's catch-up rule applies.
  await expect
    .poll(() => cluster.cliResult(['admin', 'add-voter', String(joined.nodeId)]).ok, { timeout: 20_000 })
    .toBe(true);
  await waitFor(page, isVoter);

  // One native node down: every write now needs the tab's acknowledgement.
  await cluster.stop(2);
  const acknowledged = [];
  const stop = { now: false };
  const writer = load(acknowledged, stop);
  await expect.poll(() => acknowledged.length, { timeout: 30_000 }).toBeGreaterThan(20);

  // Reload the voter tab mid-load: it comes back from storage under its id, without a snapshot.
  const before = await liveState(page);
  await page.reload();
  await waitFor(page, () => window.flotilla?.live?.state().status === 'joined');
  const after = await liveState(page);
  expect(after.nodeId).toBe(joined.nodeId);
  expect(after.restored).toBe(true);
  expect(after.term).toBeGreaterThanOrEqual(before.term);
  const ackedAtReload = acknowledged.length;
  await expect.poll(() => acknowledged.length, { timeout: 30_000 }).toBeGreaterThan(ackedAtReload + 20);
  stop.now = true;
  await writer;
  const { index: lastIndex } = await cluster.client({ op: 'put', key: 'marker', value: 'end' });
  await waitFor(page, (i) => window.flotilla.live.state().applied >= i, lastIndex);
  const end = await liveState(page);
  expect(end.snapshotsInstalled, 'no snapshot transfer after the reload').toBe(0);
  expect(end.applyViolations).toBe(0);
  const kv = new Map(await page.evaluate(() => window.flotilla.live.kv()));
  expect(acknowledged.filter((key) => !kv.has(key)), `${acknowledged.length} acknowledged`).toEqual([]);
  // And the cluster, read linearizably through the remaining native node, has every one.
  const last = acknowledged[acknowledged.length - 1];
  expect((await cluster.client({ op: 'get', key: last, read: 'linearizable' })).value).toBe(kv.get(last));
  const listed = await cluster.client({ op: 'list', prefix: 'v-', limit: 100_000 });
  expect(acknowledged.filter((key) => !listed.keys.includes(key))).toEqual([]);

  // Wipe the tab's storage and come back: a new learner with a new id (the old id's key is gone
  // with the storage, so nothing can speak as it again).
  cluster.start(2);
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(link.split('#')[0]);
  await waitFor(page, () => window.flotilla?.live !== undefined);
  await expect
    .poll(
      () =>
        page.evaluate(async () => {
          try {
            await (await navigator.storage.getDirectory()).removeEntry('flotilla', { recursive: true });
            return 'wiped';
          } catch (error) {
            return error.name;
          }
        }),
      { timeout: 10_000 },
    )
    .toBe('wiped');
  await page.evaluate((l) => window.flotilla.live.join(l), link);
  const fresh = await liveState(page);
  expect(fresh.restored).toBe(false);
  expect(fresh.nodeId).toBeGreaterThan(joined.nodeId);
  expect(await page.evaluate(isVoter)).toBe(false);
  expect(errors).toEqual([]);
  wipedVoter = joined.nodeId;
});

test('the operator panel shows a silent voter tab and promotes a tab with its button, or shows why not', async () => {
  test.skip(buildError !== null || wipedVoter === null, `needs the test above: ${buildError ?? 'it did not finish'}`);
  test.setTimeout(90_000);
  const { page } = tab;
  const fresh = await liveState(page);
  const panel = page.locator('#live-operator');
  await panel.locator('summary').click();
  await page.getByLabel('Admin secret').fill(SECRET);
  await panel.getByRole('button', { name: 'Show' }).click();
  // The wiped tab's old id is still a voter that nobody hears from (reported after 10 s).
  await expect(page.locator('#live-silent')).toContainText(`voter tab ${wipedVoter} silent for`, { timeout: 30_000 });
  await expect(page.locator('#live-operator-status')).toContainText('1 silent voter tab(s)');
  // 2 native voters and the silent tab: a second tab voter would leave the campaigning voters 2
  // of 4, and the button shows the leader's refusal.
  const add = page.getByRole('button', { name: `Add tab ${fresh.nodeId} as voter` });
  await add.click();
  await expect(page.locator('#live-operator-result')).toContainText(`tab ${fresh.nodeId} refused`);
  await expect(page.locator('#live-operator-result')).toContainText('campaign');
  // The operator removes the lost voter, then the same button promotes this tab.
  cluster.cli(['admin', 'remove', String(wipedVoter)]);
  await expect(page.locator('#live-silent')).toBeEmpty({ timeout: 10_000 });
  await add.click();
  await expect(page.locator('#live-operator-result')).toContainText(`tab ${fresh.nodeId}: promotion appended`);
  await waitFor(page, isVoter);
  await expect(page.locator('#live-tabs')).toContainText('voter');
  const axe = await new AxeBuilder({ page }).include('#live-operator').analyze();
  expect(axe.violations.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
});

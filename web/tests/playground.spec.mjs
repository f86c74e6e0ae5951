// Browser tests of the playground, in Debian's Chromium (see playwright.config.mjs).
// Every test drives the simulation through window.flotilla while paused, so what it checks is a
// pure function of seed + script, not of frame timing.
import { expect, test } from '@playwright/test';
import { open, state } from './helpers.mjs';

async function freshRun(page, options = {}) {
  await page.evaluate((o) => window.flotilla.newRun({ nodes: 5, seed: 18, ...o }), options);
}

test('loads and plays without console errors', async ({ page }, testInfo) => {
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto('/');
  await page.waitForFunction(() => document.body.dataset.ready === 'true');
  // Let it play a moment at a speed where the first election happens on screen.
  await page.evaluate(() => window.flotilla.setSpeed(2));
  // Straight on, without stopping at each caption of the first scenario.
  await page.evaluate(() => window.flotilla.setNarration('off'));
  await page.evaluate(() => window.flotilla.play());
  await page.waitForFunction(() => window.flotilla.state().timeMs > 300);
  await page.screenshot({ path: testInfo.outputPath('loaded.png') });
  expect(errors).toEqual([]);
  await expect(page.locator('#checker')).toHaveText(/invariant holds/);
});

test('a leader is elected, and one per term', async ({ page }) => {
  const errors = await open(page);
  await freshRun(page);
  await page.evaluate(() => window.flotilla.advance(1000));
  const s = await state(page);
  expect(s.leader).not.toBeNull();
  const leaders = s.nodes.filter((n) => n.role === 'leader');
  expect(leaders).toHaveLength(1);
  expect(s.nodes.every((n) => n.term === leaders[0].term)).toBe(true);
  // One focusable element per node, named for a screen reader.
  await expect(page.getByRole('button', { name: `node ${s.leader}, leader, term ${leaders[0].term}` })).toHaveCount(1);
  expect(errors).toEqual([]);
});

test('crashing the leader elects another', async ({ page }, testInfo) => {
  await open(page);
  await freshRun(page, { seed: 7 });
  await page.evaluate(() => window.flotilla.advance(1000));
  const before = await state(page);
  await page.evaluate((id) => window.flotilla.crash(id), before.leader);
  await page.evaluate(() => window.flotilla.advance(2000));
  const after = await state(page);
  expect(after.leader).not.toBeNull();
  expect(after.leader).not.toBe(before.leader);
  expect(after.nodes[before.leader - 1].liveness).toBe('down');
  expect(after.nodes[after.leader - 1].term).toBeGreaterThan(before.nodes[before.leader - 1].term);
  expect(after.violations).toBe(0);
  await page.screenshot({ path: testInfo.outputPath('leader-crashed.png') });
});

test('a partitioned minority cannot commit while the majority does', async ({ page }, testInfo) => {
  await open(page);
  await freshRun(page);
  await page.evaluate(() => window.flotilla.advance(1000));
  const start = await state(page);
  const oldLeader = start.leader;
  const follower = oldLeader === 1 ? 2 : 1;
  const minority = [oldLeader, follower];
  const majority = start.nodes.map((n) => n.id).filter((id) => !minority.includes(id));
  await page.evaluate(([a, b]) => window.flotilla.partition(a, b), [minority, majority]);
  // The old leader is the only leader for now: the write goes to it and stays uncommitted.
  await page.evaluate(() => window.flotilla.propose('minority-write'));
  await page.evaluate(() => window.flotilla.advance(1500));
  // By now the majority has elected its own leader; this write goes to it.
  await page.evaluate(() => window.flotilla.propose('majority-write'));
  await page.evaluate(() => window.flotilla.advance(500));
  const s = await state(page);
  expect(majority).toContain(s.leader);
  const majorityCommit = Math.min(...majority.map((id) => s.nodes[id - 1].commit));
  for (const id of minority) {
    expect(s.nodes[id - 1].commit).toBeLessThan(majorityCommit);
    expect(s.nodes[id - 1].commit).toBe(start.nodes[id - 1].commit);
  }
  const minorityLog = await page.evaluate((id) => window.flotilla.log(id), oldLeader);
  const written = minorityLog.entries.find((e) => e.text === 'minority-write');
  expect(written?.committed).toBe(false);
  const majorityLog = await page.evaluate((id) => window.flotilla.log(id), s.leader);
  expect(majorityLog.entries.find((e) => e.text === 'majority-write')?.committed).toBe(true);
  expect(majorityLog.entries.some((e) => e.text === 'minority-write')).toBe(false);
  await page.screenshot({ path: testInfo.outputPath('minority-partition.png') });
  // Healing brings the minority back onto the majority's log.
  await page.evaluate(() => window.flotilla.heal());
  await page.evaluate(() => window.flotilla.advance(1000));
  const healed = await state(page);
  expect(healed.nodes.every((n) => n.commit === healed.nodes[healed.leader - 1].commit)).toBe(true);
  expect(healed.violations).toBe(0);
});

test('scrubbing back and forth returns the same trace hash', async ({ page }) => {
  await open(page);
  await freshRun(page, { seed: 3 });
  await page.evaluate(() => window.flotilla.advance(1200));
  const leader = (await state(page)).leader;
  await page.evaluate((id) => window.flotilla.crash(id), leader);
  await page.evaluate(() => window.flotilla.put('x', '1'));
  await page.evaluate(() => window.flotilla.advance(1800));
  const at3000 = await page.evaluate(() => window.flotilla.traceHash());
  const time = (await state(page)).timeMs;
  await page.evaluate(() => window.flotilla.seek(2000));
  const at2000 = await page.evaluate(() => window.flotilla.traceHash());
  for (const target of [100, 2600, 700, 1201]) await page.evaluate((t) => window.flotilla.seek(t), target);
  await page.evaluate(() => window.flotilla.seek(2000));
  expect(await page.evaluate(() => window.flotilla.traceHash())).toBe(at2000);
  await page.evaluate((t) => window.flotilla.seek(t), time);
  expect(await page.evaluate(() => window.flotilla.traceHash())).toBe(at3000);
  // Scrubbing replays; it does not fork: the crash is still there.
  expect((await state(page)).nodes[leader - 1].liveness).toBe('down');
  // Acting in the past forks the timeline: a different future.
  await page.evaluate(() => window.flotilla.seek(600));
  await page.evaluate(() => window.flotilla.crash(2));
  await page.evaluate((t) => window.flotilla.seek(t), time);
  expect(await page.evaluate(() => window.flotilla.traceHash())).not.toBe(at3000);
});

test('the page’s own link, opened fresh, reproduces the trace hash at the same time', async ({ page, context }) => {
  await open(page);
  await freshRun(page, { seed: 11, lossPerMille: 20 });
  await page.evaluate(() => window.flotilla.advance(900));
  await page.evaluate(() => window.flotilla.partition([1, 2]));
  await page.evaluate(() => window.flotilla.put('k', 'v'));
  await page.evaluate(() => window.flotilla.advance(700));
  await page.evaluate(() => window.flotilla.heal());
  await page.evaluate(() => window.flotilla.advance(1234));
  const first = await state(page);
  const link = await page.evaluate(() => window.flotilla.link());
  expect(link).toContain('#run=');
  const fresh = await context.newPage();
  const errors = await open(fresh, new URL(link).hash);
  const second = await state(fresh);
  expect(second.timeMs).toBe(first.timeMs);
  expect(second.traceHash).toBe(first.traceHash);
  expect(second.nodes).toEqual(first.nodes);
  expect(errors).toEqual([]);
});

test('every scenario plays to its end', async ({ page }, testInfo) => {
  // Some 25 scenarios, each played and photographed: more than the default 30 s on a loaded machine.
  test.setTimeout(120_000);
  await open(page);
  const scenarios = await page.evaluate(() => window.flotilla.scenarios());
  expect(scenarios.length).toBeGreaterThanOrEqual(7);
  // Straight through, without waiting at each caption for Next.
  await page.evaluate(() => window.flotilla.setNarration('off'));
  for (const scenario of scenarios) {
    await page.evaluate((id) => window.flotilla.loadScenario(id), scenario.id);
    await page.evaluate(() => {
      window.flotilla.setSpeed(20);
      window.flotilla.play();
    });
    // Playing stops by itself at the scenario's end.
    await page.waitForFunction(() => !window.flotilla.state().playing, null, { timeout: 10_000 });
    const s = await state(page);
    expect(s.timeMs, scenario.id).toBe(scenario.endMs);
    // Only the wiped-disk lesson breaks safety, on purpose; the checker must see it.
    if (scenario.unsafe) expect(s.violations, scenario.id).toBeGreaterThan(0);
    else expect(s.violations, scenario.id).toBe(0);
    expect(await page.evaluate(() => window.flotilla.checkScenario()), scenario.id).toBeNull();
    await page.screenshot({ path: testInfo.outputPath(`scenario-${scenario.id}.png`) });
  }
});

test('25 nodes in the compact layout, keyboard controls', async ({ page }, testInfo) => {
  const errors = await open(page);
  await freshRun(page, { nodes: 25, seed: 5 });
  await page.evaluate(() => window.flotilla.advance(1500));
  const s = await state(page);
  expect(s.nodes).toHaveLength(25);
  expect(s.leader).not.toBeNull();
  await expect(page.locator('.node-hit')).toHaveCount(25);
  // Tab to a node and open its controls with the keyboard, then crash it from there.
  const button = page.getByRole('button', { name: new RegExp(`^node ${s.leader}, leader`) });
  await button.focus();
  await page.keyboard.press('Enter');
  await expect(page.locator('#node-panel')).toBeVisible();
  await page.getByRole('button', { name: 'Crash' }).press('Enter');
  expect((await state(page)).nodes[s.leader - 1].liveness).toBe('down');
  // Space plays and pauses when focus is on the page.
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('Space');
  expect((await state(page)).playing).toBe(true);
  await page.keyboard.press('Space');
  expect((await state(page)).playing).toBe(false);
  await page.screenshot({ path: testInfo.outputPath('compact-25.png') });
  expect(errors).toEqual([]);
});

test('drag between two nodes cuts the link; a message can be dropped', async ({ page }) => {
  const errors = await open(page);
  await freshRun(page);
  await page.evaluate(() => window.flotilla.advance(1000));
  const a = page.locator('.node-hit[data-node="1"]');
  const b = page.locator('.node-hit[data-node="2"]');
  const from = await a.boundingBox();
  const to = await b.boundingBox();
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 8 });
  await page.mouse.up();
  const cuts = (await state(page)).cuts;
  expect(cuts).toEqual(expect.arrayContaining([[1, 2], [2, 1]]));
  // Pick a message on the wire through the list (the keyboard path) and drop it.
  await page.evaluate(() => {
    while (window.flotilla.state().messages === 0) window.flotilla.advance(1);
  });
  const options = page.locator('#message-list option');
  await expect.poll(() => options.count()).toBeGreaterThan(1);
  const id = await options.nth(1).getAttribute('value');
  await page.locator('#message-list').selectOption(id);
  await expect(page.locator('#message-fields')).toContainText(`#${id}`);
  await page.getByRole('button', { name: 'Drop' }).click();
  const link = await page.evaluate(() => window.flotilla.link());
  expect(decodeURIComponent(link)).toContain(`d${id}`);
  expect(errors).toEqual([]);
});

test('reduced motion starts paused; the frame exports as PNG', async ({ page }) => {
  await page.emulateMedia({ reducedMotion: 'reduce' });
  await page.goto('/');
  await page.waitForFunction(() => document.body.dataset.ready === 'true');
  expect((await state(page)).playing).toBe(false);
  const png = await page.evaluate(() => window.flotilla.pngDataUrl());
  expect(png.startsWith('data:image/png;base64,')).toBe(true);
  expect(png.length).toBeGreaterThan(10_000);
});

test('the checker badge follows the checker after an unsafe disk wipe', async ({ page }) => {
  await open(page);
  await freshRun(page, { nodes: 3, seed: 2 });
  await page.evaluate(() => window.flotilla.advance(800));
  const leader = (await state(page)).leader;
  // A voter forgets its vote and log: Raft's safety no longer holds, and the checker watches.
  const follower = leader === 1 ? 2 : 1;
  await page.evaluate((id) => window.flotilla.wipeDisk(id), follower);
  await page.evaluate((id) => window.flotilla.restart(id), follower);
  await page.evaluate(() => window.flotilla.advance(1500));
  const s = await state(page);
  const badge = await page.locator('#checker').textContent();
  expect(badge).toMatch(s.violations === 0 ? /invariant holds/ : /violated/);
});

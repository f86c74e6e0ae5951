// Client reads with a read mode (thesis §6.4), through the page API and the keyboard-driven form.
// As in playground.spec.mjs, the simulation is driven while paused, so every check is a pure
// function of seed + script.
import { expect, test } from '@playwright/test';
import { open, state } from './helpers.mjs';

/** Runs until read `id` is answered (at most `ms` simulated ms) and returns it. */
async function answered(page, id, ms = 3000) {
  return page.evaluate(
    ([readId, limit]) => {
      for (let waited = 0; waited < limit && window.flotilla.readResult(readId).status === 'pending'; waited += 10) {
        window.flotilla.advance(10);
      }
      return window.flotilla.readResult(readId);
    },
    [id, ms],
  );
}

test('a stale read in a minority returns the old value; linearizable reads do not', async ({ page, context }, testInfo) => {
  const errors = await open(page);
  await page.evaluate(() => window.flotilla.newRun({ nodes: 5, seed: 18 }));
  await page.evaluate(() => window.flotilla.advance(1000));
  const start = await state(page);
  const oldLeader = start.leader;
  expect(oldLeader).not.toBeNull();
  await page.evaluate(() => window.flotilla.put('x', 'old'));
  await page.evaluate(() => window.flotilla.advance(300));

  // The old leader and one follower are cut off; the other three elect a leader of their own.
  const follower = oldLeader === 1 ? 2 : 1;
  const minority = [oldLeader, follower];
  const majority = start.nodes.map((n) => n.id).filter((id) => !minority.includes(id));
  await page.evaluate(([a, b]) => window.flotilla.partition(a, b), [minority, majority]);
  await page.evaluate(() => window.flotilla.advance(1500));
  const split = await state(page);
  expect(majority).toContain(split.leader);
  const newLeader = split.leader;
  await page.evaluate(() => window.flotilla.put('x', 'new'));
  await page.evaluate(() => window.flotilla.advance(500));

  // A stale read at the old leader, asked with the keyboard through the form.
  await page.getByRole('textbox', { name: 'key to get' }).fill('x');
  await page.getByRole('combobox', { name: 'via' }).selectOption(String(oldLeader));
  await page.getByRole('combobox', { name: 'mode' }).selectOption('stale');
  await page.getByRole('button', { name: 'Get', exact: true }).press('Enter');
  const stale = (await state(page)).reads.at(-1);
  expect(stale).toMatchObject({ node: oldLeader, mode: 'stale', status: 'ok', value: 'old' });
  // Answered at once, at whatever the old leader has applied: nothing since the partition.
  expect(stale.answeredMs).toBe(stale.askedMs);
  expect(stale.readIndex).toBe((await state(page)).nodes[oldLeader - 1].applied);
  await expect(page.locator('#get-answer')).toHaveText(`node ${oldLeader} answered get x = old (stale read at index ${stale.readIndex})`);
  await expect(page.locator('#event-log')).toContainText(`node ${oldLeader} answered get x = old`);

  // A linearizable read there cannot be confirmed by a majority: it fails.
  const refused = await page.evaluate((id) => window.flotilla.get('x', { node: id, mode: 'linearizable' }), oldLeader);
  const refusal = await answered(page, refused.id);
  expect(refusal.status).toBe('failed');
  expect(refusal.value).toBeNull();
  expect(refusal.readIndex).toBeNull();
  await expect(page.locator('#get-answer')).toContainText(`node ${oldLeader} refused get x (linearizable read)`);
  await expect(page.locator('#event-log')).toContainText(`node ${oldLeader} refused get x`);

  // Through the majority's leader a linearizable read sees the new value, after one round.
  const fresh = await page.evaluate((id) => window.flotilla.get('x', { node: id }), newLeader);
  expect(fresh.status).toBe('pending');
  const confirmed = await answered(page, fresh.id);
  expect(confirmed).toMatchObject({ node: newLeader, mode: 'linearizable', status: 'ok', value: 'new' });
  expect(confirmed.answeredMs).toBeGreaterThan(confirmed.askedMs);
  expect(confirmed.readIndex).toBeGreaterThan(stale.readIndex);
  await expect(page.locator('#get-answer')).toHaveText(`node ${newLeader} answered get x = new (linearizable read at index ${confirmed.readIndex})`);
  await page.screenshot({ path: testInfo.outputPath('reads.png') });

  // The link carries the reads: a fresh page replays them with the same answers.
  const first = await state(page);
  expect(first.reads).toHaveLength(3);
  const link = await page.evaluate(() => window.flotilla.link());
  const other = await context.newPage();
  const otherErrors = await open(other, new URL(link).hash);
  const second = await state(other);
  expect(second.traceHash).toBe(first.traceHash);
  expect(second.reads).toEqual(first.reads);
  expect(errors).toEqual([]);
  expect(otherErrors).toEqual([]);
});

test('a bad read is refused with a range error', async ({ page }) => {
  await open(page);
  await page.evaluate(() => window.flotilla.newRun({ nodes: 3, seed: 1 }));
  const message = await page.evaluate(() => {
    try {
      window.flotilla.get('x', { node: 9 });
      return 'accepted';
    } catch (error) {
      return `${error.name}: ${error.message}`;
    }
  });
  expect(message).toMatch(/^RangeError: node 9/);
  const mode = await page.evaluate(() => {
    try {
      window.flotilla.get('x', { node: 1, mode: 'eventual' });
      return 'accepted';
    } catch (error) {
      return error.name;
    }
  });
  expect(mode).toBe('TypeError');
});

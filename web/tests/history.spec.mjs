// The history panel (web/history.js): client operations as bars, the checker's linearization
// points, and a violation explained. Driven while paused, so every check is a pure function of
// seed + script.
import { expect, test } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { open } from './helpers.mjs';

const history = (page) => page.evaluate(() => window.flotilla.history());

test('read modes: no violation until the stale read, which is the one the checker cannot place', async ({ page }) => {
  const errors = await open(page);
  await page.evaluate(() => window.flotilla.loadScenario('read-modes'));
  await page.evaluate(() => window.flotilla.seek(1650));
  const before = await history(page);
  expect(before.report.verdict).toBe('linearizable');
  expect(before.report.summary).toBe(`no violation in ${before.report.operations.length} operations`);
  // put x=1, the linearizable read at 5, the lease read (ok), the failed read, put x=2.
  expect(before.report.operations.map((op) => `${op.label}:${op.outcome}`)).toEqual([
    'put x=1:ok',
    'get x:ok',
    'get x:failed',
    'get x:ok',
    'put x=2:ok',
  ]);
  // Each operation with an effect has its linearization point inside its bar, and a value after.
  for (const op of before.report.operations.filter((op) => op.outcome === 'ok')) {
    expect(op.point).toBeGreaterThanOrEqual(op.invoke);
    expect(op.point).toBeLessThanOrEqual(op.complete);
  }
  const put2 = before.report.operations[4];
  expect([put2.before, put2.after]).toEqual(['1', '2']);
  // Node bands: leader terms, and the partition.
  expect(before.bands.some((band) => band.kind === 'leader' && band.node === 3 && band.term === 2)).toBe(true);
  expect(before.bands.some((band) => band.kind === 'leader' && band.node === 4 && band.term === 3)).toBe(true);
  const cut = before.bands.filter((band) => band.kind === 'cut').map((band) => `${band.node}@${band.startMs}`);
  expect(cut).toEqual(['1@800', '2@800', '3@800', '4@800', '5@800']);
  await expect(page.locator('#history-panel .history-summary')).toHaveText(before.report.summary);

  await page.evaluate(() => window.flotilla.seek(2300));
  const after = await history(page);
  expect(after.report.verdict).toBe('not linearizable');
  expect(after.report.violations).toHaveLength(1);
  const [violation] = after.report.violations;
  const blocked = after.report.operations[violation.blocked];
  expect(blocked).toMatchObject({ label: 'get x', result: '1', invoke: 1700, outcome: 'ok' });
  expect(violation.sentence).toBe('get x returned 1 after put x=2 completed');
  // The minimal set: put x=1, put x=2 and the stale read; no linearizable read is blamed.
  expect(violation.operations.map((id) => after.report.operations[id].label).sort()).toEqual(['get x', 'put x=1', 'put x=2']);
  await expect(page.locator('#history-panel .history-sentence')).toContainText('get x returned 1 after put x=2 completed');

  // Clicking the operation that cannot be placed seeks the run to its invocation.
  const expected = await page.evaluate(() => {
    window.flotilla.seek(1700);
    return window.flotilla.traceHash();
  });
  await page.evaluate(() => window.flotilla.seek(2300));
  await page.locator('#history-panel .history-ops button.blocked').click();
  const landed = await page.evaluate(() => ({ timeMs: window.flotilla.state().timeMs, hash: window.flotilla.traceHash() }));
  expect(landed).toEqual({ timeMs: 1700, hash: expected });
  expect(errors).toEqual([]);
});

test('the timeline is keyboard-driven: arrows select, the detail names the value before and after, Enter seeks', async ({ page }) => {
  const errors = await open(page);
  await page.evaluate(() => {
    window.flotilla.loadScenario('read-modes');
    window.flotilla.seek(1650);
  });
  const timeline = page.getByRole('group', { name: /operations timeline/ });
  await timeline.focus();
  await timeline.press('ArrowRight');
  const detail = page.locator('#history-panel .history-detail');
  await expect(detail).toContainText('put x=1 by client 1');
  await expect(detail).toContainText('x: absent → 1');
  await timeline.press('Enter');
  expect(await page.evaluate(() => window.flotilla.state().timeMs)).toBe(600);
  expect(errors).toEqual([]);
});

test('the stale-read scenario ends on the violation, axe-clean, on a phone too', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  const errors = await open(page);
  await page.evaluate(() => {
    window.flotilla.loadScenario('stale-read');
    window.flotilla.seek(1760);
  });
  expect(await page.evaluate(() => window.flotilla.checkScenario())).toBeNull();
  // The scenario opened the History tab.
  const panel = page.locator('#history-panel');
  await expect(panel).toBeVisible();
  await expect(panel.locator('.history-summary')).toHaveText('not linearizable: 1 key of 1 key fail');
  await expect(panel.locator('.history-sentence')).toContainText('get x returned 1 after put x=2 completed');
  const box = await panel.locator('canvas').boundingBox();
  expect(box.width).toBeLessThanOrEqual(390);
  expect(box.height).toBeGreaterThan(60);
  const results = await new AxeBuilder({ page }).include('#history-panel').analyze();
  expect(results.violations.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
  expect(errors).toEqual([]);
});

test('10,000 operations by 16 clients: checked, drawn and scrolled without errors', async ({ page }) => {
  const errors = await open(page);
  const figures = await page.evaluate(async () => {
    const { loadWasm } = await import('/wasm.js');
    const { mountHistoryPanel } = await import('/history.js');
    const tables = await loadWasm();
    const started = performance.now();
    const data = tables.generatedHistory(10_000, 16, 10, 7);
    const checkMs = performance.now() - started;
    const root = document.createElement('div');
    root.style.width = '800px';
    document.body.append(root);
    const panel = mountHistoryPanel(root);
    panel.update(data);
    panel.drawNow();
    // Scroll through a zoomed-in view: one draw per scroll step, as the browser would.
    const scroll = root.querySelector('.history-scroll');
    const frames = 60;
    const fitStarted = performance.now();
    for (let k = 0; k < frames; k += 1) panel.drawNow();
    const fitMs = (performance.now() - fitStarted) / frames;
    // Zoomed in to about 1/16 of the run.
    for (let k = 0; k < 4; k += 1) root.querySelector('.history-tools button').click();
    const drawStarted = performance.now();
    for (let k = 0; k < frames; k += 1) {
      scroll.dispatchEvent(new WheelEvent('wheel', { deltaX: 40, bubbles: true, cancelable: true }));
      panel.drawNow();
    }
    const drawMs = (performance.now() - drawStarted) / frames;
    return { summary: data.report.summary, clients: panel.view().clients, checkMs, drawMs, fitMs, summaryShown: root.querySelector('.history-summary').textContent };
  });
  console.log(
    `history panel, 10,000 operations by 16 clients: check + report ${figures.checkMs.toFixed(0)} ms; ` +
      `all in view ${figures.fitMs.toFixed(2)} ms per frame; zoomed in ${figures.drawMs.toFixed(2)} ms per scrolled frame ` +
      `(${(1000 / Math.max(figures.fitMs, figures.drawMs)).toFixed(0)} frames/s of drawing at worst)`,
  );
  expect(figures.summary).toBe('no violation in 10000 operations');
  expect(figures.summaryShown).toBe(figures.summary);
  expect(figures.clients).toBe(16);
  expect(errors).toEqual([]);
});

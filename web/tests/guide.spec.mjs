// The guide (web/guide/): loads without console errors, every widget on it plays to its end, a
// "now you try" prompt notices what the reader did, and axe-core finds nothing serious.
import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';

function watchErrors(page) {
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

test('every widget in the guide loads and plays to its end, without console errors', async ({ page }) => {
  test.setTimeout(90_000);
  const errors = watchErrors(page);
  await page.goto('/guide/');
  const widgets = page.locator('flotilla-raft');
  const total = await widgets.count();
  expect(total).toBeGreaterThanOrEqual(16);
  const ended = [];
  for (let k = 0; k < total; k++) {
    const widget = widgets.nth(k);
    await widget.scrollIntoViewIfNeeded();
    const result = await widget.evaluate(async (w) => {
      await w.load();
      if (w.state === null) return `${w.getAttribute('scenario')} did not load: ${w.shadowRoot.querySelector('.caption').textContent}`;
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(`${w.getAttribute('scenario') ?? 'free run'} stuck at ${w.currentTime} of ${w.duration}`), 15_000);
        w.addEventListener(
          'flotilla-end',
          () => {
            clearTimeout(timer);
            resolve({ scenario: w.getAttribute('scenario'), at: w.currentTime, duration: w.duration, violations: w.state.violations });
          },
          { once: true },
        );
        w.setAttribute('speed', '1000');
        w.play();
      });
    });
    ended.push(result);
  }
  for (const r of ended) {
    expect(typeof r === 'object' ? 'ended' : r).toBe('ended');
    expect(r.at).toBe(r.duration);
    // Only the wiped-disk run breaks safety, and the checker says so.
    expect(r.violations > 0).toBe(r.scenario === 'wiped-disk');
  }
  expect(errors).toEqual([]);
});

test('“now you try”: crashing the leader is noticed, and who took over is said', async ({ page }) => {
  await page.goto('/guide/#persistence');
  const widget = page.locator('#try-crash');
  await widget.scrollIntoViewIfNeeded();
  await widget.evaluate(async (w) => {
    await w.ready;
    w.seek(600);
  });
  const result = page.locator('[data-widget="try-crash"] .try-result');
  // A follower first: the prompt says the leader carries on.
  await widget.getByRole('combobox', { name: 'Server' }).selectOption('1');
  await widget.getByRole('button', { name: 'Crash', exact: true }).click();
  await expect(result).toContainText('You crashed node 1, a follower');
  await widget.getByRole('combobox', { name: 'Server' }).selectOption('3');
  await widget.getByRole('button', { name: 'Crash', exact: true }).click();
  await expect(result).toContainText('You crashed node 3, the leader of term 2');
  await widget.evaluate((w) => {
    w.setAttribute('speed', '2');
    w.play();
  });
  await expect(result).toContainText(/Node [245] won term \d+, \d+ ms after you crashed node 3/, { timeout: 10_000 });
});

for (const [name, viewport, colorScheme] of [
  ['desktop', { width: 1280, height: 800 }, 'light'],
  ['phone', { width: 390, height: 844 }, 'dark'],
]) {
  test(`axe: the guide has no serious or critical violation (${name}, ${colorScheme})`, async ({ browser }) => {
    test.setTimeout(60_000);
    const context = await browser.newContext({ viewport, colorScheme });
    const page = await context.newPage();
    await page.goto('/guide/#replication');
    await page.locator('#try-write').evaluate((w) => w.ready);
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    const results = await new AxeBuilder({ page }).analyze();
    const bad = results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
    expect(bad).toEqual([]);
    await context.close();
  });
}

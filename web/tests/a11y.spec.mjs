// axe-core on the playground, desktop and phone sizes (one in each colour scheme): no serious or
// critical violation, with the legend open, a scenario's narration showing and a server's menu open.
import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { open } from './helpers.mjs';

const cases = [
  ['desktop', { width: 1280, height: 800 }, 'light'],
  ['phone', { width: 390, height: 844 }, 'dark'],
];

for (const [name, viewport, colorScheme] of cases) {
  test(`axe: no serious or critical violation (${name}, ${colorScheme})`, async ({ browser }) => {
    const context = await browser.newContext({ viewport, colorScheme });
    const page = await context.newPage();
    await open(page);
    await page.evaluate(() => window.flotilla.advance(300));
    await page.locator('.legend summary').click();
    await page.locator('.node-hit[data-node="2"]').click();
    await expect(page.getByRole('menu')).toBeVisible();
    const results = await new AxeBuilder({ page }).analyze();
    const bad = results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 4).map((n) => `${n.target.join(' ')} ${n.failureSummary ?? ''}`).join('; ')}`);
    expect(bad).toEqual([]);
    await context.close();
  });
}

// axe-core on the playground, desktop and phone sizes: no serious or critical violation, with
// the legend open, a scenario's narration showing and a server's menu open.
import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { open } from './helpers.mjs';

for (const [name, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
  for (const colorScheme of ['light', 'dark']) {
    test(`axe: no serious or critical violation (${name}, ${colorScheme})`, async ({ browser }) => {
      const page = await browser.newPage({ viewport, colorScheme });
      await open(page);
      await page.evaluate(() => window.flotilla.advance(300));
      await page.locator('.legend summary').click();
      await page.locator('.node-hit[data-node="2"]').click();
      await expect(page.getByRole('menu')).toBeVisible();
      const results = await new AxeBuilder({ page }).analyze();
      const bad = results.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
      expect(bad).toEqual([]);
      await page.close();
    });
  }
}

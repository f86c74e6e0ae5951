// Shared by the browser tests: open the playground and read its state through window.flotilla.

/** Opens the playground (optionally at a fragment), waits for the core, and stops playback.
 * Returns the list that collects console errors and uncaught exceptions from then on. */
export async function open(page, fragment = '') {
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`/${fragment}`);
  await page.waitForFunction(() => document.body.dataset.ready === 'true');
  await page.evaluate(() => window.flotilla.stop());
  return errors;
}

/** The page's `window.flotilla.state()`. */
export const state = (page) => page.evaluate(() => window.flotilla.state());

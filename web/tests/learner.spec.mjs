// Browser tests of the playground as a learner meets it (issue 15): captions that are checked
// against the simulation, narration paced by the reader, actions at the server, the event log
// whichever way time moved, visible failures, phone size, legend, contrast and dark mode.
// One page for the whole file, so the wasm loads once (one worker runs the tests in order).
import { expect, test } from '@playwright/test';
import { open, state } from './helpers.mjs';

/** @type {import('@playwright/test').Page} */
let page;
let errors;

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  errors = await open(page);
});

test.afterAll(async () => {
  await page.close();
});

/** Resolves after `frames` animation frames of the page (no fixed sleep). */
const frames = (n) => page.evaluate((count) => new Promise((resolve) => {
  let left = count;
  const tick = () => (--left <= 0 ? resolve() : requestAnimationFrame(tick));
  requestAnimationFrame(tick);
}), n);

test('every caption’s predicate holds at its step, in every scenario', async () => {
  const failures = await page.evaluate(() => window.flotilla.checkCaptions());
  const report = failures.map((f) => `${f.scenario} @${f.atMs} ms “${f.caption}”: ${f.problem}`).join('\n');
  expect(report).toBe('');
  // The check does evaluate something: a caption made false is caught.
  const caught = await page.evaluate(async () => {
    const { SCENARIOS } = await import('/scenarios.js');
    const step = SCENARIOS[0].steps.find((s) => s.atMs === 256);
    const truth = step.truth;
    step.truth = (s) => s.leader === 1;
    try {
      return window.flotilla.checkCaptions(SCENARIOS[0].id).length;
    } finally {
      step.truth = truth;
    }
  });
  expect(caught).toBe(1);
  expect(errors).toEqual([]);
});

test('a scenario waits at each caption until Next; Back returns; Auto holds a reading time', async () => {
  await page.selectOption('#scenario', 'first-election');
  let s = await state(page);
  expect(s.timeMs).toBe(0);
  expect(s.playing).toBe(false);
  await expect(page.locator('#caption')).toContainText('Five servers start as followers');
  await expect(page.locator('#step-count')).toHaveText('Step 1 of 11');
  // Next plays to the next caption and stops there.
  await page.getByRole('button', { name: 'Next', exact: true }).click();
  await page.waitForFunction(() => !window.flotilla.state().playing);
  expect((await state(page)).timeMs).toBe(20);
  await frames(10);
  expect((await state(page)).timeMs).toBe(20);
  await expect(page.locator('#step-count')).toHaveText('Step 2 of 11');
  // → and Space are Next too (focus on the page, not a control).
  await page.locator('h1').click();
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => window.flotilla.state().timeMs === 196 && !window.flotilla.state().playing);
  await page.keyboard.press('Space');
  await page.waitForFunction(() => window.flotilla.state().timeMs === 229 && !window.flotilla.state().playing);
  await expect(page.locator('#caption')).toContainText('becomes a candidate');
  // Back, by button and by ←.
  await page.getByRole('button', { name: 'Back', exact: true }).click();
  expect((await state(page)).timeMs).toBe(196);
  await page.locator('h1').click();
  await page.keyboard.press('ArrowLeft');
  expect((await state(page)).timeMs).toBe(20);
  // A long quiet stretch (320 → 600 ms) fast-forwards: at 0.1× it would take 2.8 s.
  await page.evaluate(() => window.flotilla.seek(320));
  const started = Date.now();
  await page.getByRole('button', { name: 'Next', exact: true }).click();
  await page.waitForFunction(() => window.flotilla.state().timeMs === 600 && !window.flotilla.state().playing);
  expect(Date.now() - started).toBeLessThan(2700);
  // Auto: holds each caption for a time proportional to its length, then goes on by itself.
  await page.evaluate(() => window.flotilla.seek(240));
  await page.getByRole('button', { name: 'Auto', exact: true }).click();
  await expect(page.getByRole('button', { name: 'Auto', exact: true })).toHaveAttribute('aria-pressed', 'true');
  await page.waitForFunction(() => window.flotilla.state().narration.holdMs > 0);
  s = await state(page);
  expect(s.timeMs).toBe(256);
  const { readingMs } = await page.evaluate(async () => {
    const m = await import('/scenarios.js');
    return { readingMs: m.readingMs(m.SCENARIOS[0].steps.find((x) => x.atMs === 256).caption) };
  });
  expect(s.narration.holdMs).toBeGreaterThan(readingMs - 500);
  expect(s.narration.holdMs).toBeLessThanOrEqual(readingMs);
  await page.waitForFunction(() => window.flotilla.state().timeMs > 256, null, { timeout: readingMs + 3000 });
  await page.getByRole('button', { name: 'Auto', exact: true }).click();
  await page.evaluate(() => window.flotilla.stop());
});

test('Next stops at every captioned step, in order, then at the end', async () => {
  await page.evaluate(() => window.flotilla.loadScenario('leadership-transfer'));
  await page.evaluate(() => window.flotilla.setSpeed(1));
  const expected = await page.evaluate(async () => {
    const m = await import('/scenarios.js');
    const scenario = m.findScenario('leadership-transfer');
    return [...m.captionedSteps(scenario).map((step) => step.atMs).slice(1), scenario.endMs];
  });
  const stops = [];
  for (const _ of expected) {
    await page.getByRole('button', { name: 'Next', exact: true }).click();
    await page.waitForFunction(() => !window.flotilla.state().playing);
    stops.push((await state(page)).timeMs);
  }
  expect(stops).toEqual(expected);
  await expect(page.getByRole('button', { name: 'Next', exact: true })).toBeDisabled();
  await expect(page.locator('#caption')).toContainText('End of the scenario');
  await page.evaluate(() => window.flotilla.setSpeed(0.1));
});

test('hovering a server leaves it drawn (no opaque button background)', async () => {
  await page.evaluate(() => window.flotilla.loadScenario('first-election'));
  await page.evaluate(() => window.flotilla.seek(400));
  const button = page.locator('.node-hit[data-node="3"]');
  await button.hover();
  const background = await button.evaluate((b) => getComputedStyle(b).backgroundColor);
  const alpha = background.startsWith('rgba') ? Number(background.split(',')[3].replace(')', '')) : 1;
  expect(alpha, background).toBeLessThan(0.1);
  // The label drawn under the button is still there: dark text pixels at the node's centre.
  const box = await button.boundingBox();
  const png = await page.screenshot({ clip: { x: box.x + box.width * 0.3, y: box.y + box.height * 0.2, width: box.width * 0.4, height: box.height * 0.4 } });
  const dark = await page.evaluate(async (data) => {
    const image = new Image();
    image.src = `data:image/png;base64,${data}`;
    await image.decode();
    const canvas = new OffscreenCanvas(image.width, image.height);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(image, 0, 0);
    const pixels = ctx.getImageData(0, 0, image.width, image.height).data;
    let count = 0;
    for (let k = 0; k < pixels.length; k += 4) if (pixels[k] + pixels[k + 1] + pixels[k + 2] < 200) count += 1;
    return count;
  }, png.toString('base64'));
  expect(dark).toBeGreaterThan(10);
  await page.mouse.move(1, 1);
});

test('the event log shows the events up to now, however time got there', async ({ context }) => {
  await page.evaluate(() => window.flotilla.newRun({ nodes: 5, seed: 18 }));
  const log = page.locator('#event-log');
  for (let k = 0; k < 3; k++) await page.getByRole('button', { name: '+1 s' }).click();
  await expect(log).toContainText('became leader of term 2');
  await expect(log).toContainText('committed');
  // Scrubbing back before the election: it is not shown; forward again: it is.
  await page.evaluate(() => window.flotilla.seek(100));
  await expect(log).not.toContainText('became leader');
  await page.locator('#scrub').fill('2500');
  await expect(log).toContainText('became leader of term 2');
  // Single steps add events as they happen.
  await page.evaluate(() => window.flotilla.seek(190));
  await expect(log).not.toContainText('pre-candidate');
  for (let k = 0; k < 40 && !(await log.textContent()).includes('pre-candidate'); k++) await page.getByRole('button', { name: 'Step', exact: true }).click();
  await expect(log).toContainText('pre-candidate');
  // No event appears twice after going back and forth.
  await page.evaluate(() => window.flotilla.seek(3000));
  const events = await page.evaluate(() => window.flotilla.events());
  const leaders = events.filter((e) => e.text.includes('became leader of term 2'));
  expect(leaders).toHaveLength(1);
  // A shared link opens with the log up to its moment.
  const link = await page.evaluate(() => window.flotilla.link());
  const fresh = await context.newPage();
  await open(fresh, new URL(link).hash);
  await expect(fresh.locator('#event-log')).toContainText('became leader of term 2');
  expect(await fresh.evaluate(() => window.flotilla.events().length)).toBe(events.length);
  await fresh.close();
});

test('failures are visible: bad link, forked future, elections, speed in links, speed text, throttled announcements', async ({ context }) => {
  // A bad link says so, and the message stays.
  const bad = await context.newPage();
  await open(bad, '#run=not-a-run&at=5');
  await expect(bad.locator('#notice')).toBeVisible();
  await expect(bad.locator('#notice')).toContainText('does not describe a run');
  await bad.evaluate(() => window.flotilla.advance(500));
  await expect(bad.locator('#notice')).toContainText('does not describe a run');
  await bad.getByRole('button', { name: 'Dismiss' }).click();
  await expect(bad.locator('#notice')).toBeHidden();
  await bad.close();
  // Acting in the past says that the recorded future was dropped.
  await page.evaluate(() => window.flotilla.newRun({ nodes: 5, seed: 18 }));
  await page.evaluate(() => window.flotilla.advance(3000));
  await page.evaluate(() => window.flotilla.seek(1000));
  await page.evaluate(() => window.flotilla.crash(2));
  await expect(page.locator('#notice')).toContainText('to 3000 ms) was dropped');
  await page.getByRole('button', { name: 'Dismiss' }).click();
  // Elections count every election, also those of a server that crashed since.
  await page.evaluate(() => window.flotilla.newRun({ nodes: 5, seed: 18 }));
  await page.evaluate(() => window.flotilla.advance(1000));
  const leader = (await state(page)).leader;
  await page.evaluate((id) => window.flotilla.crash(id), leader);
  await page.evaluate(() => window.flotilla.advance(2000));
  const s = await state(page);
  expect(s.elections).toBe(2);
  await expect(page.locator('#stats')).toContainText('2 elections');
  // Links keep the speed.
  await page.evaluate(() => window.flotilla.setSpeed(5));
  const link = await page.evaluate(() => window.flotilla.link());
  expect(link).toContain('speed=5');
  const other = await context.newPage();
  await open(other, new URL(link).hash);
  expect((await state(other)).speed).toBe(5);
  await other.close();
  // The speed slider speaks a speed, not its logarithm.
  await expect(page.locator('#speed')).toHaveAttribute('aria-valuetext', '5 times real time');
  // The event log is not a live region; a throttled announcer speaks a summary instead.
  await expect(page.getByRole('log')).toHaveAttribute('aria-live', 'off');
  const spoken = await page.evaluate(async () => {
    const announcer = document.getElementById('announcer');
    let changes = 0;
    const observer = new MutationObserver(() => (changes += 1));
    observer.observe(announcer, { childList: true, characterData: true, subtree: true });
    window.flotilla.setSpeed(200);
    window.flotilla.play();
    const until = performance.now() + 3000;
    while (performance.now() < until) await new Promise((resolve) => requestAnimationFrame(resolve));
    window.flotilla.stop();
    observer.disconnect();
    return { changes, text: announcer.textContent };
  });
  expect(spoken.changes).toBeGreaterThanOrEqual(1);
  expect(spoken.changes).toBeLessThanOrEqual(2);
  expect(spoken.text).toMatch(/more events?\)$|node/);
  await page.evaluate(() => window.flotilla.setSpeed(0.1));
});

test('the playground says it is a simulation', async () => {
  await expect(page.locator('.tagline')).toContainText('A simulation');
  await expect(page.locator('.tagline')).toContainText('No real cluster');
});

test('a server’s actions are in a menu at the server: click, Enter, right-click; Escape returns focus', async () => {
  await page.evaluate(() => window.flotilla.newRun({ nodes: 5, seed: 18 }));
  await page.evaluate(() => window.flotilla.advance(1000));
  const s = await state(page);
  const follower = s.leader === 1 ? 2 : 1;
  const server = page.locator(`.node-hit[data-node="${follower}"]`);
  const menu = page.getByRole('menu');
  // Click: the menu opens beside the server, focus on its first item.
  await server.click();
  await expect(menu).toBeVisible();
  await expect(page.getByRole('menuitem', { name: 'Crash' })).toBeFocused();
  const serverBox = await server.boundingBox();
  const menuBox = await menu.boundingBox();
  expect(Math.abs(menuBox.y - serverBox.y)).toBeLessThan(200);
  await expect(server).toHaveAttribute('aria-expanded', 'true');
  // Escape closes it and gives focus back to the server.
  await page.keyboard.press('Escape');
  await expect(menu).toBeHidden();
  await expect(server).toBeFocused();
  // Enter opens it; arrows move; Enter acts.
  await page.keyboard.press('Enter');
  await expect(menu).toBeVisible();
  await page.keyboard.press('ArrowDown');
  await expect(page.getByRole('menuitem', { name: 'Pause' })).toBeFocused();
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('Enter');
  await expect(menu).toBeHidden();
  expect((await state(page)).nodes[follower - 1].liveness).toBe('down');
  await expect(server).toBeFocused();
  // Right-click opens it too, offering what applies now (a down server can restart).
  await server.click({ button: 'right' });
  await expect(menu).toBeVisible();
  await expect(page.getByRole('menuitem', { name: 'Restart' })).toBeVisible();
  await expect(page.getByRole('menuitem', { name: 'Crash' })).toBeHidden();
  await page.getByRole('menuitem', { name: 'Restart' }).click();
  expect((await state(page)).nodes[follower - 1].liveness).toBe('up');
  // Membership too: a voter can be removed, not added again.
  await server.click();
  await expect(page.getByRole('menuitem', { name: 'Add as voter' })).toBeHidden();
  await page.getByRole('menuitem', { name: 'Remove from the cluster' }).click();
  await page.evaluate(() => window.flotilla.advance(200));
  expect((await state(page)).config.voters).not.toContain(follower);
  await server.click();
  await expect(page.getByRole('menuitem', { name: 'Add as voter' })).toBeVisible();
  await page.keyboard.press('Escape');
});

test('legend: every message kind has a shape and an explanation; canvas text meets WCAG AA', async () => {
  const kinds = await page.evaluate(async () => {
    const m = await import('/render.js');
    return { legend: m.KIND_LEGEND.map(([k]) => k), shapes: m.KIND_SHAPES };
  });
  for (const kind of ['PreVote', 'RequestVote', 'AppendEntries', 'Heartbeat', 'TimeoutNow', 'InstallSnapshot', 'ReadIndex']) {
    expect(kinds.legend).toContain(kind);
  }
  const shapes = ['PreVote', 'RequestVote', 'AppendEntries', 'Heartbeat', 'TimeoutNow', 'InstallSnapshot', 'ReadIndex'].map((k) => kinds.shapes[k]);
  expect(new Set(shapes).size).toBe(shapes.length);
  await page.locator('.legend summary').click();
  await expect(page.locator('#legend-kinds li')).toHaveCount(9);
  await expect(page.locator('#legend-kinds')).toContainText('InstallSnapshot');
  await expect(page.locator('#legend-kinds')).toContainText('TimeoutNow');
  await expect(page.locator('#legend-kinds')).toContainText('ReadIndex');
  await page.locator('.legend summary').click();
  // Contrast of every text colour the canvas uses against what it is drawn on, both themes.
  const worst = await page.evaluate(async () => {
    const { PALETTES, termColor } = await import('/render.js');
    const probe = new OffscreenCanvas(1, 1).getContext('2d', { willReadFrequently: true });
    const rgb = (color) => {
      probe.clearRect(0, 0, 1, 1);
      probe.fillStyle = color;
      probe.fillRect(0, 0, 1, 1);
      return [...probe.getImageData(0, 0, 1, 1).data.slice(0, 3)];
    };
    const luminance = (color) => {
      const [r, g, b] = rgb(color).map((v) => {
        const c = v / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const contrast = (a, b) => {
      const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
      return (x + 0.05) / (y + 0.05);
    };
    let min = { ratio: Infinity };
    const check = (what, text, background) => {
      const ratio = contrast(text, background);
      if (ratio < min.ratio) min = { ratio, what };
    };
    for (const [theme, pal] of Object.entries(PALETTES)) {
      check(`${theme} ink on background`, pal.ink, pal.background);
      check(`${theme} muted labels on background`, pal.muted, pal.background);
      check(`${theme} muted on a down node`, pal.muted, pal.downFill);
      for (let term = 0; term <= 40; term++) {
        check(`${theme} term ${term} on its node`, pal.ink, termColor(term, pal.nodeL));
        check(`${theme} term ${term} on a paused node`, pal.ink, termColor(term, pal.pausedL));
        check(`${theme} term ${term} in a log entry`, pal.ink, termColor(term, pal.logL));
      }
    }
    check('entry count on AppendEntries', '#ffffff', (await import('/render.js')).KIND_COLORS.AppendEntries);
    return min;
  });
  expect(worst.ratio, worst.what).toBeGreaterThanOrEqual(4.5);
});

test('dark mode follows the system and the toggle, page and canvas', async ({ browser }) => {
  const dark = await browser.newPage({ colorScheme: 'dark', viewport: { width: 1000, height: 800 } });
  await open(dark);
  const luminanceOf = ([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const pageColor = () => dark.evaluate(() => getComputedStyle(document.body).backgroundColor.match(/\d+/g).slice(0, 3).map(Number));
  const canvasCorner = () => dark.evaluate(() => {
    const canvas = document.getElementById('view');
    const copy = new OffscreenCanvas(canvas.width, canvas.height);
    const ctx = copy.getContext('2d');
    ctx.drawImage(canvas, 0, 0);
    return [...ctx.getImageData(2, 2, 1, 1).data.slice(0, 3)];
  });
  expect(luminanceOf(await pageColor())).toBeLessThan(40);
  await dark.evaluate(() => window.flotilla.advance(10));
  expect(luminanceOf(await canvasCorner())).toBeLessThan(40);
  const toggle = dark.getByRole('button', { name: 'Dark mode' });
  await expect(toggle).toHaveAttribute('aria-pressed', 'true');
  await toggle.click();
  await expect(toggle).toHaveAttribute('aria-pressed', 'false');
  expect(luminanceOf(await pageColor())).toBeGreaterThan(200);
  await dark.evaluate(() => window.flotilla.advance(10));
  expect(luminanceOf(await canvasCorner())).toBeGreaterThan(200);
  await dark.evaluate(() => localStorage.removeItem('flotilla-theme'));
  await dark.close();
});

test('phone: no horizontal scroll from 360 px; ring, Next and the scenario picker visible without scrolling; 44 px targets; panels in tabs', async ({ browser }) => {
  for (const width of [390, 360]) {
    const phone = await browser.newPage({ viewport: { width, height: 844 }, hasTouch: true, isMobile: true });
    await open(phone);
    const sizes = await phone.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
    expect(sizes.scroll, `width ${width}`).toBeLessThanOrEqual(sizes.inner);
    for (const selector of ['#view', '#next', '#scenario']) {
      const box = await phone.locator(selector).boundingBox();
      expect(box.y, selector).toBeGreaterThanOrEqual(0);
      expect(box.y + box.height, `${selector} at ${width} px`).toBeLessThanOrEqual(844);
      expect(box.x + box.width, selector).toBeLessThanOrEqual(width);
    }
    const small = await phone.evaluate(() => [...document.querySelectorAll('.narration button, .transport button, .node-menu button, .side button')]
      .filter((b) => b.offsetParent !== null)
      .map((b) => ({ name: b.textContent.trim(), ...b.getBoundingClientRect().toJSON() }))
      .filter((b) => b.height < 44 || b.width < 44)
      .map((b) => `${b.name} ${Math.round(b.width)}×${Math.round(b.height)}`));
    expect(small, `width ${width}`).toEqual([]);
    // Tapping a server opens its menu without scrolling the ring away.
    await phone.locator('.node-hit[data-node="1"]').tap();
    await expect(phone.getByRole('menu')).toBeVisible();
    expect(await phone.evaluate(() => window.scrollY)).toBe(0);
    // The panels are tabs: one shows at a time; Details… opens the server's.
    await expect(phone.locator('#scenario-panel')).toBeVisible();
    await expect(phone.locator('#events-panel')).toBeHidden();
    await phone.getByRole('menuitem', { name: 'Details…' }).tap();
    await expect(phone.locator('#node-panel')).toBeVisible();
    await expect(phone.locator('#scenario-panel')).toBeHidden();
    await phone.getByRole('button', { name: 'Events', exact: true }).tap();
    await expect(phone.locator('#events-panel')).toBeVisible();
    await expect(phone.locator('#node-panel')).toBeHidden();
    await phone.close();
  }
});

test('no console errors or uncaught exceptions on the page used above', async () => {
  expect(errors).toEqual([]);
});

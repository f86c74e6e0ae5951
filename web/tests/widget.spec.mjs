// The docs widget <flotilla-raft> (web/widget/) on its test page (web/widget/test.html: three
// widgets, one with full controls and panels, one with controls="none", one dark and shorter):
// lazy loading (nothing but the element before it nears the viewport, one wasm fetch for all),
// attributes, methods and events, pausing off screen and in a hidden page, keyboard focus
// scoping, a phone viewport, the iframe page, and axe-core.
import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';

/** Collects console errors, uncaught exceptions and every request's path. */
function watch(page) {
  const seen = { errors: [], paths: [] };
  page.on('console', (m) => m.type() === 'error' && !m.text().includes('favicon') && seen.errors.push(m.text()));
  page.on('pageerror', (e) => seen.errors.push(e.message));
  page.on('request', (r) => seen.paths.push(new URL(r.url()).pathname));
  return seen;
}

const count = (paths, suffix) => paths.filter((p) => p.endsWith(suffix)).length;

/** Scrolls widget `id` into view and waits until it has loaded. */
async function show(page, id) {
  await page.locator(`#${id}`).scrollIntoViewIfNeeded();
  await page.waitForFunction((wid) => document.getElementById(wid).state !== null, id);
}

/** Plays widget `id` at `speed` until flotilla-end; returns the events it fired on the way. */
function playToEnd(page, id, speed = 200) {
  return page.evaluate(
    ([wid, x]) =>
      new Promise((resolve, reject) => {
        const w = document.getElementById(wid);
        const fired = {};
        for (const type of ['step', 'leader', 'commit', 'violation', 'end']) {
          w.addEventListener(`flotilla-${type}`, () => {
            fired[type] = (fired[type] ?? 0) + 1;
            if (type === 'end') resolve({ fired, timeMs: w.currentTime, duration: w.duration, state: w.state });
          });
        }
        setTimeout(() => reject(new Error(`${wid} did not end: at ${w.currentTime} of ${w.duration}`)), 20_000);
        w.setAttribute('speed', String(x));
        w.play();
      }),
    [id, speed],
  );
}

test('lazy: nothing loads before a widget nears the viewport; the wasm is fetched once for three', async ({ page }) => {
  const seen = watch(page);
  await page.goto('/widget/test.html?top=4000');
  await page.waitForFunction(() => customElements.get('flotilla-raft') !== undefined);
  await page.waitForTimeout(400);
  // Only the element itself: no engine, no renderer, no wasm.
  expect(count(seen.paths, '/widget/player.js')).toBe(0);
  expect(seen.paths.filter((p) => p.includes('/pkg') || p.endsWith('/render.js'))).toEqual([]);
  expect(await page.evaluate(() => document.getElementById('w1').state)).toBeNull();
  await expect(page.locator('#w1').getByRole('button', { name: /load and play/ })).toBeAttached();
  const before = await page.locator('#w2').boundingBox();
  for (const id of ['w1', 'w2', 'w3']) await show(page, id);
  // Loading reserved its height: no layout shift.
  expect((await page.locator('#w2').boundingBox()).height).toBe(before.height);
  // The widget's own package (web/pkg-widget), never the playground's.
  expect(count(seen.paths, '/pkg-widget/flotilla_wasm_bg.wasm')).toBe(1);
  expect(seen.paths.filter((p) => p.startsWith('/pkg/'))).toEqual([]);
  // No history panel here: neither its checker's package nor its module.
  expect(seen.paths.filter((p) => p.startsWith('/pkg-checker/') || p === '/history.js')).toEqual([]);
  // Each widget's own scenario module, once, and no other.
  expect(seen.paths.filter((p) => p.startsWith('/scenarios/')).sort()).toEqual(['/scenarios/common.js', '/scenarios/figure-8.js', '/scenarios/first-election.js', '/scenarios/split-vote.js']);
  expect(count(seen.paths, '/widget/player.js')).toBe(1);
  expect(count(seen.paths, '/render.js')).toBe(1);
  expect(seen.errors).toEqual([]);
});

test('each widget plays to its end, firing step, leader, commit and end', async ({ page }) => {
  const seen = watch(page);
  await page.goto('/widget/test.html');
  const ends = {};
  for (const id of ['w1', 'w2', 'w3']) {
    await show(page, id);
    ends[id] = await playToEnd(page, id);
  }
  expect(ends.w1.timeMs).toBe(1000);
  expect(ends.w1.state.leader).toBe(3);
  expect(ends.w1.fired.step).toBe(10); // 11 captions, the first shown at load
  expect(ends.w1.fired.commit).toBeGreaterThan(0);
  expect(ends.w2.state.leader).toBe(2);
  expect(ends.w3.state.scenario).toBe('figure-8');
  for (const id of ['w1', 'w2', 'w3']) {
    expect(ends[id].fired.leader).toBeGreaterThan(0);
    expect(ends[id].timeMs).toBe(ends[id].duration);
    expect(ends[id].state.violations).toBe(0);
  }
  expect(seen.errors).toEqual([]);
});

test('attributes, properties and methods', async ({ page, context }) => {
  const seen = watch(page);
  await page.goto('/widget/test.html');
  await show(page, 'w1');
  const w1 = page.locator('#w1');
  // controls="full" and panels: buttons, a time slider, three panels; the caption a polite live region.
  await expect(w1.getByRole('button', { name: 'Play' })).toBeVisible();
  await expect(w1.getByRole('slider', { name: 'Simulated time' })).toBeVisible();
  await expect(w1.locator('[data-panel]')).toHaveCount(3);
  await expect(w1.locator('.caption')).toHaveAttribute('aria-live', 'polite');
  const r = await page.evaluate(() => {
    const w = document.getElementById('w1');
    const out = { duration: w.duration, paused: w.paused };
    w.currentTime = 600;
    out.seeked = w.currentTime;
    out.leader = w.state.leader;
    out.caption = w.state.caption;
    out.label = w.shadowRoot.querySelector('canvas').getAttribute('aria-label');
    w.seek(300);
    out.back = [w.currentTime, w.state.caption];
    w.step();
    out.stepped = w.currentTime > 300;
    const acts = [];
    const leaders = [];
    w.addEventListener('flotilla-act', (e) => acts.push(e.detail.type));
    w.addEventListener('flotilla-leader', (e) => leaders.push(e.detail.leader));
    w.crash(3);
    out.down = w.state.nodes[2].liveness;
    w.seek(w.currentTime + 800);
    out.newLeader = w.state.leader;
    w.restart(3);
    w.propose('x=7');
    w.seek(w.currentTime + 300);
    out.x = w.shadowRoot.querySelector('[data-panel="kv"]').textContent;
    w.partition([w.state.leader]);
    w.heal();
    out.acts = acts;
    out.leaders = leaders;
    out.offCaption = w.state.caption;
    out.share = w.shareUrl();
    out.hash = w.state.traceHash;
    out.at = w.currentTime;
    try {
      w.crash(9);
    } catch (error) {
      out.bad = error.name;
    }
    w.reset();
    out.reset = [w.currentTime, w.state.offScript];
    return out;
  });
  expect(r.duration).toBe(1000);
  expect(r.paused).toBe(true);
  expect(r.seeked).toBe(600);
  expect(r.leader).toBe(3);
  expect(r.caption).toMatch(/client writes x=1/);
  expect(r.label).toBe(r.caption); // no alt: the canvas is labelled by the caption
  expect(r.back[0]).toBe(300);
  expect(r.back[1]).toMatch(/no-op entry/);
  expect(r.stepped).toBe(true);
  expect(r.down).toBe('down');
  expect(r.newLeader).not.toBe(3);
  expect(r.newLeader).not.toBeNull();
  expect(r.leaders).toContain(r.newLeader);
  expect(r.x).toContain('x = 7');
  expect(r.acts).toEqual(['crash', 'restart', 'propose', 'partition', 'heal']);
  expect(r.offCaption).toMatch(/^Your run: /);
  expect(r.bad).toBe('RangeError');
  expect(r.reset).toEqual([0, false]);
  // shareUrl opens the same run, at the same moment, in the playground: the same trace hash.
  expect(r.share).toContain('/index.html#run=');
  const playground = await context.newPage();
  await playground.goto(r.share);
  await playground.waitForFunction(() => document.body.dataset.ready === 'true');
  expect(await playground.evaluate(() => window.flotilla.state().timeMs)).toBe(r.at);
  expect(await playground.evaluate(() => window.flotilla.traceHash())).toBe(r.hash);
  await playground.close();
  // controls="none": no buttons at all; theme="dark" and height="280".
  await show(page, 'w2');
  await expect(page.locator('#w2').getByRole('button')).toHaveCount(0);
  await show(page, 'w3');
  expect(await page.locator('#w3').getAttribute('data-theme')).toBe('dark');
  expect((await page.locator('#w3 .stage').boundingBox()).height).toBe(280);
  // alt labels the canvas; a bad scenario fires flotilla-error with a message.
  const errorText = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const w = document.getElementById('w3');
        w.setAttribute('alt', 'Figure 8, replayed');
        const label = w.shadowRoot.querySelector('canvas').getAttribute('aria-label');
        w.addEventListener('flotilla-error', (e) => resolve(`${label} | ${e.detail.message}`), { once: true });
        w.setAttribute('scenario', 'no-such-scenario');
      }),
  );
  expect(errorText).toBe('Figure 8, replayed | flotilla-raft: no scenario "no-such-scenario"');
  expect(seen.errors).toEqual([]);
});

test('a widget off screen or in a hidden page does not advance', async ({ page }) => {
  await page.goto('/widget/test.html');
  await show(page, 'w1');
  await page.evaluate(() => {
    // Off the script (a write), the run plays on with no caption holds and no end.
    const w = document.getElementById('w1');
    w.propose('x=1');
    w.setAttribute('speed', '1');
    w.play();
  });
  await page.waitForFunction(() => document.getElementById('w1').currentTime > 0);
  // Scrolled far away: paused in effect (still "playing", time frozen).
  await page.locator('#w3').scrollIntoViewIfNeeded();
  await page.waitForTimeout(200);
  const away = await page.evaluate(() => document.getElementById('w1').currentTime);
  await page.waitForTimeout(700);
  expect(await page.evaluate(() => document.getElementById('w1').currentTime)).toBe(away);
  expect(await page.evaluate(() => document.getElementById('w1').paused)).toBe(false);
  // Back on screen it goes on.
  await page.locator('#w1').scrollIntoViewIfNeeded();
  await page.waitForFunction((t) => document.getElementById('w1').currentTime > t, away);
  // A hidden page: time stands still until it is shown again.
  await page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await page.waitForTimeout(200);
  const hidden = await page.evaluate(() => document.getElementById('w1').currentTime);
  await page.waitForTimeout(600);
  expect(await page.evaluate(() => document.getElementById('w1').currentTime)).toBe(hidden);
  await page.evaluate(() => {
    delete document.hidden;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await page.waitForFunction((t) => document.getElementById('w1').currentTime > t, hidden);
});

test('keyboard: Tab reaches each widget, Space plays it, keys do nothing while focus is elsewhere', async ({ page }) => {
  await page.goto('/widget/test.html');
  for (const id of ['w1', 'w2', 'w3']) await show(page, id);
  await page.locator('#w1').scrollIntoViewIfNeeded();
  await page.locator('#outside').focus();
  await page.keyboard.press('Space'); // presses the outside button, nothing else
  await page.keyboard.press('ArrowRight');
  const paused = () => page.evaluate(() => ['w1', 'w2', 'w3'].map((id) => document.getElementById(id).paused));
  expect(await paused()).toEqual([true, true, true]);
  expect(await page.evaluate(() => document.getElementById('w1').currentTime)).toBe(0);
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement.id)).toBe('w1');
  // Focus is visible: an outline on the host.
  expect(await page.evaluate(() => getComputedStyle(document.getElementById('w1')).outlineStyle)).toBe('solid');
  await page.keyboard.press('ArrowRight');
  expect(await page.evaluate(() => document.getElementById('w1').currentTime)).toBe(20);
  await page.keyboard.press('Space');
  expect(await paused()).toEqual([false, true, true]);
  await page.keyboard.press('Space');
  // Tab on through w1's own controls to w2 (controls="none": the host only), then w3.
  let reached = null;
  for (let k = 0; k < 40 && reached !== 'w2'; k++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement.id);
  }
  expect(reached).toBe('w2');
  await page.keyboard.press('Space');
  expect(await paused()).toEqual([true, false, true]);
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement.id)).toBe('w3');
});

test('phone: no sideways scroll, 44 px targets; the iframe page; axe finds nothing serious', async ({ browser }) => {
  for (const [viewport, colorScheme] of [
    [{ width: 360, height: 740 }, 'dark'],
    [{ width: 1280, height: 800 }, 'light'],
  ]) {
    const context = await browser.newContext({ viewport, colorScheme });
    const page = await context.newPage();
    const seen = watch(page);
    await page.goto('/widget/test.html');
    for (const id of ['w1', 'w2', 'w3']) await show(page, id);
    await page.locator('#w1').scrollIntoViewIfNeeded();
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    if (viewport.width < 480) {
      const small = await page.locator('#w1').evaluate((w) =>
        [...w.shadowRoot.querySelectorAll('button, select')].filter((b) => b.getClientRects().length > 0 && b.getBoundingClientRect().height < 44).map((b) => b.textContent),
      );
      expect(small).toEqual([]);
    }
    const results = await new AxeBuilder({ page }).analyze();
    const bad = results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
    expect(bad).toEqual([]);
    expect(seen.errors).toEqual([]);
    await context.close();
  }
});

test('embed.html passes its query to the widget', async ({ page }) => {
  const seen = watch(page);
  await page.goto('/widget/embed.html?scenario=leader-crash&controls=full&speed=300');
  await page.waitForFunction(() => document.querySelector('flotilla-raft')?.state !== null);
  expect(await page.evaluate(() => document.querySelector('flotilla-raft').duration)).toBe(2300);
  await expect(page).toHaveTitle('Flotilla: leader crash');
  await expect(page.locator('flotilla-raft').getByRole('button', { name: 'Crash' })).toBeVisible();
  expect(seen.errors).toEqual([]);
});

test('autoplay plays, except under prefers-reduced-motion', async ({ browser }) => {
  for (const reducedMotion of ['no-preference', 'reduce']) {
    const context = await browser.newContext({ reducedMotion });
    const page = await context.newPage();
    await page.goto('/widget/embed.html?scenario=first-election&autoplay');
    await page.waitForFunction(() => document.querySelector('flotilla-raft')?.state !== null);
    expect(await page.evaluate(() => document.querySelector('flotilla-raft').paused), reducedMotion).toBe(reducedMotion === 'reduce');
    await context.close();
  }
});

test('run, nodes, seed, loop and caption attributes', async ({ page }) => {
  const seen = watch(page);
  await page.goto('/widget/test.html');
  await show(page, 'w1');
  const r = await page.evaluate(async () => {
    const w1 = document.getElementById('w1');
    w1.seek(700);
    const link = w1.shareUrl();
    const hash = w1.state.traceHash;
    const make = async (attributes) => {
      const w = document.createElement('flotilla-raft');
      for (const [name, value] of Object.entries(attributes)) w.setAttribute(name, value);
      document.querySelector('h1').after(w);
      await w.load();
      return w;
    };
    const out = {};
    // run: a playground link; its scenario supplies the captions and the end.
    const fromLink = await make({ run: link, controls: 'none' });
    out.linkDuration = fromLink.duration;
    out.linkScenario = fromLink.state.scenario;
    fromLink.seek(700);
    out.linkHash = fromLink.state.traceHash === hash;
    // nodes and seed: a free run.
    const free = await make({ nodes: '3', seed: '4', caption: 'off' });
    out.freeNodes = free.state.nodes.length;
    out.freeCaptionHidden = free.shadowRoot.querySelector('.caption').classList.contains('sr');
    // loop: at the end it starts over and plays on.
    const looping = await make({ scenario: 'split-vote', loop: '', speed: '1000' });
    // On screen, or it would not advance (scroll anchoring may have moved it out of view).
    looping.scrollIntoView();
    out.loopEnds = await new Promise((resolve) => {
      let ends = 0;
      looping.addEventListener('flotilla-end', () => {
        ends += 1;
        if (ends === 2) resolve(ends);
      });
      looping.play();
    });
    out.loopPlaying = !looping.paused;
    return { ...out, hashLen: hash.length };
  });
  expect(r.linkDuration).toBe(1000); // the scenario's end
  expect(r.linkScenario).toBe('first-election');
  expect(r.linkHash).toBe(true);
  expect(r.freeNodes).toBe(3);
  expect(r.freeCaptionHidden).toBe(true);
  expect(r.loopEnds).toBe(2);
  expect(seen.errors).toEqual([]);
});

test('FlotillaRaft.wasmUrl: a site can serve the wasm from elsewhere', async ({ page }) => {
  const seen = watch(page);
  await page.goto('/widget/test.html?top=4000');
  await page.evaluate(() => {
    customElements.get('flotilla-raft').wasmUrl = `${location.origin}/pkg-widget/flotilla_wasm_bg.wasm?copy=self-hosted`;
  });
  await show(page, 'w1');
  const wasm = seen.paths.filter((p) => p.endsWith('.wasm'));
  expect(wasm).toEqual(['/pkg-widget/flotilla_wasm_bg.wasm']);
  expect(await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.includes('.wasm')).map((e) => new URL(e.name).search))).toEqual(['?copy=self-hosted']);
});

test('panels="history": the stale-read scenario ends on the violation, explained; clicking an operation seeks the widget', async ({ page }) => {
  const seen = watch(page);
  await page.goto('/widget/test.html');
  await page.evaluate(() => {
    const w = document.createElement('flotilla-raft');
    w.id = 'wh';
    w.setAttribute('scenario', 'stale-read');
    w.setAttribute('panels', 'history');
    w.setAttribute('controls', 'full');
    document.querySelector('main').prepend(w);
  });
  await show(page, 'wh');
  await playToEnd(page, 'wh');
  const wh = page.locator('#wh');
  const panel = wh.locator('[data-panel="history"]');
  await expect(panel).toHaveAttribute('aria-label', 'Client history');
  await expect(panel.locator('.history-summary')).toHaveText('not linearizable: 1 key of 1 key fail');
  await expect(panel.locator('.history-sentence')).toContainText('get x returned 1 after put x=2 completed');
  // The violation's operations are buttons; the blocked one seeks the widget to its invocation.
  const blocked = panel.locator('.history-ops button.blocked');
  await expect(blocked).toHaveCount(1);
  const before = await page.evaluate(() => document.getElementById('wh').currentTime);
  await blocked.click();
  const after = await page.evaluate(() => document.getElementById('wh').currentTime);
  expect(after).toBeLessThan(before);
  const results = await new AxeBuilder({ page }).include('#wh').analyze();
  expect(results.violations.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
  // The checker came from its own package, fetched once, beside the widget's (which has none).
  expect(count(seen.paths, '/pkg-checker/flotilla_wasm_checker_bg.wasm')).toBe(1);
  expect(count(seen.paths, '/pkg-widget/flotilla_wasm_bg.wasm')).toBe(1);
  expect(seen.errors).toEqual([]);
});

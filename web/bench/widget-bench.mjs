// `npm run bench:widget` (also the end of `npm run bench:web`): the docs widget's budgets, printed.
//   1. what a page with one widget transfers, gzip-compressed (JS + wasm), as a static host
//      compressing its files would send it (level 9, each file on its own), and with brotli;
//   2. time from scrolling a widget into view to its first frame (its flotilla-load event, fired
//      after the first draw): the first widget of a page (fetches and compiles the wasm) and a
//      later one (the wasm already compiled); median of 5 fresh pages each;
//   3. frames per second while a page of ten autoplaying widgets is scrolled through.
// Runs in Debian's Chromium through Playwright, against scripts/serve.mjs on a spare port.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';

const root = fileURLToPath(new URL('../..', import.meta.url));
const port = Number(process.env.BENCH_PORT ?? 8098);
const base = `http://127.0.0.1:${port}`;

function startServer() {
  const server = spawn(process.execPath, ['scripts/serve.mjs'], { cwd: root, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    server.stdout.once('data', () => resolve(server));
    server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];

const server = await startServer();
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  // 1. Transfer: every script and wasm file a widget page fetches, gzipped as a host would.
  {
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    const paths = new Set();
    page.on('request', (r) => {
      const path = new URL(r.url()).pathname;
      if (/\.(m?js|wasm)$/.test(path)) paths.add(path);
    });
    await page.goto(`${base}/widget/test.html`);
    await page.evaluate(() => document.getElementById('w1').ready);
    let raw = 0;
    let gzip = 0;
    let brotli = 0;
    const rows = [];
    for (const path of [...paths].sort()) {
      const bytes = readFileSync(`${root}/web${path}`);
      const packed = gzipSync(bytes, { level: 9 }).length;
      raw += bytes.length;
      gzip += packed;
      brotli += brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
      rows.push(`${path} ${(packed / 1024).toFixed(1)} KB`);
    }
    console.log(`widget transfer, gzip -9 per file: ${(gzip / 1024).toFixed(1)} KB (${(raw / 1024).toFixed(1)} KB raw) over ${paths.size} files [goal <= 250 KB]; brotli 11: ${(brotli / 1024).toFixed(1)} KB`);
    console.log(`  ${rows.join(', ')}`);
    await page.close();
  }

  // 2. First frame after scrolling into view.
  const firstFrame = async (id) => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    await page.goto(`${base}/widget/test.html?top=3000`);
    await page.waitForFunction(() => customElements.get('flotilla-raft') !== undefined);
    if (id !== 'w1') {
      // Warm: the first widget loaded (and compiled the wasm) before.
      await page.evaluate(() => document.getElementById('w1').load());
    }
    const ms = await page.evaluate(
      (wid) =>
        new Promise((resolve) => {
          const w = document.getElementById(wid);
          let started = 0;
          w.addEventListener('flotilla-load', () => resolve(performance.now() - started), { once: true });
          started = performance.now();
          w.scrollIntoView();
        }),
      id,
    );
    await page.close();
    return ms;
  };
  const cold = [];
  const warm = [];
  for (let k = 0; k < 5; k++) {
    cold.push(await firstFrame('w1'));
    warm.push(await firstFrame('w3'));
  }
  const list = (values) => values.map((v) => v.toFixed(0)).join(', ');
  console.log(`first frame after scrolling into view: first widget of a page median ${median(cold).toFixed(0)} ms (${list(cold)}), a later widget median ${median(warm).toFixed(0)} ms (${list(warm)}) [goal <= 500 ms]`);

  // 3. Ten autoplaying widgets, scrolled through at a steady pace; then the same page under
  //    prefers-reduced-motion (nothing autoplays), as the baseline of this machine at this moment.
  for (const reducedMotion of ['no-preference', 'reduce']) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 800 }, reducedMotion });
    const page = await context.newPage();
    await page.goto(`${base}/bench/ten-widgets.html`);
    await page.evaluate(() => document.querySelector('flotilla-raft').ready);
    const result = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const end = document.documentElement.scrollHeight - innerHeight;
          const started = performance.now();
          const duration = 8000;
          let frames = 0;
          let worst = 0;
          let last = started;
          const tick = (now) => {
            frames += 1;
            worst = Math.max(worst, now - last);
            last = now;
            const t = (now - started) / duration;
            scrollTo(0, Math.min(1, t) * end);
            if (t < 1) requestAnimationFrame(tick);
            else {
              const loaded = [...document.querySelectorAll('flotilla-raft')].filter((w) => w.state !== null).length;
              resolve({ fps: (frames * 1000) / (now - started), worst, loaded });
            }
          };
          requestAnimationFrame(tick);
        }),
    );
    const what = reducedMotion === 'reduce' ? 'baseline: the same ten widgets, not playing (reduced motion)' : 'ten autoplaying widgets';
    console.log(`${what}, scrolled top to bottom in 8 s: ${result.fps.toFixed(1)} fps, longest frame ${result.worst.toFixed(0)} ms, ${result.loaded} of 10 loaded on the way${reducedMotion === 'reduce' ? '' : ' [goal >= 50 fps]'}`);
    await context.close();
  }
} finally {
  await browser.close();
  server.kill();
}

// `npm run bench:web`: a benchmark of the playground that prints figures (not a timed test).
//   1. wasm time per 60 fps frame, 5 nodes (idle and under 100 writes/s)
//   2. frames per second of the playground page with 25 nodes playing
//   3. fast-forward speed of a 5-node cluster under 100 writes/s, in × real time
//   4. wasm vs native speed of the core on the same seeded workload (raft_core::sim::run_seed)
// Runs in Debian's Chromium through Playwright, against scripts/serve.mjs on a spare port.
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';

const root = fileURLToPath(new URL('../..', import.meta.url));
const port = Number(process.env.BENCH_PORT ?? 8097);
const workload = { seed: 1, runs: 4, nodes: 5, ticks: 20_000 };

function startServer() {
  const server = spawn(process.execPath, ['scripts/serve.mjs'], { cwd: root, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    server.stdout.once('data', () => resolve(server));
    server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

/**
 * Runs a native example of the wasm crate and parses the JSON line it prints last. Built with
 * the wasm package's own profile (wasm-release: fat LTO, one codegen unit), so wasm is compared
 * with native under the same optimisation settings.
 */
function nativeExample(name, args = []) {
  const cargoArgs = ['run', '--profile', 'wasm-release', '-q', '-p', 'flotilla-wasm', '--example', name, '--', ...args.map(String)];
  // BENCH_CARGO_ROOT: build the native side from another checkout of the same workspace.
  const output = execFileSync('cargo', cargoArgs, { cwd: process.env.BENCH_CARGO_ROOT ?? root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(output.trim().split('\n').pop());
}

const server = await startServer();
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => document.body.dataset.ready === 'true');
  await page.evaluate(() => window.flotilla.stop());
  const run = (name, options) =>
    page.evaluate(async ([n, o]) => (await import('/bench/bench-page.js'))[n](o), [name, options]);

  const idle = await run('wasmFrameTime', { nodes: 5 });
  const loaded = await run('wasmFrameTime', { nodes: 5, writesPerSecond: 100 });
  console.log(`wasm time per frame, 5 nodes, 1x real time: mean ${idle.meanMs.toFixed(3)} ms, p99 ${idle.p99Ms.toFixed(3)} ms (idle); mean ${loaded.meanMs.toFixed(3)} ms, p99 ${loaded.p99Ms.toFixed(3)} ms (100 writes/s)`);

  await page.evaluate(() => {
    window.flotilla.newRun({ nodes: 25, seed: 5 });
    window.flotilla.setSpeed(1);
    window.flotilla.play();
  });
  const fps = await page.evaluate(
    () =>
      new Promise((resolve) => {
        let frames = 0;
        const started = performance.now();
        const tick = (now) => {
          frames += 1;
          if (now - started < 5000) requestAnimationFrame(tick);
          else resolve((frames * 1000) / (now - started));
        };
        requestAnimationFrame(tick);
      }),
  );
  await page.evaluate(() => window.flotilla.stop());
  console.log(`playground with 25 nodes playing at 1x: ${fps.toFixed(1)} fps (headless Chromium, software rendering)`);

  await run('fastForward', { nodes: 5, writesPerSecond: 100, simulatedMs: 10_000 }); // warm-up
  const ff = await run('fastForward', { nodes: 5, writesPerSecond: 100 });
  console.log(`fast-forward, 5 nodes, 100 writes/s: ${ff.timesRealTime.toFixed(0)}x real time (${ff.simulatedMs / 1000} s simulated in ${ff.elapsedMs.toFixed(0)} ms, ${ff.committed} entries committed, ${ff.violations} violations)`);

  const nativeFf = nativeExample('fast_forward');
  console.log(`  native reference, same run: ${nativeFf.bindingsTimesRealTime}x through the bindings, ${nativeFf.bareTimesRealTime}x for the bare raft_core::sim::Simulation (the core simulator's own limit)`);

  const wasm = await run('coreWorkload', workload);
  const native = nativeExample('core_bench', Object.values(workload));
  const same = wasm.hash === native.hash ? 'same trace hash' : `DIFFERENT trace hashes ${wasm.hash} / ${native.hash}`;
  console.log(`core workload (run_seed, seeds ${workload.seed}..${workload.seed + workload.runs - 1}, ${workload.nodes} nodes, ${workload.ticks} ticks, all faults): wasm ${wasm.ms.toFixed(0)} ms, native ${native.ms.toFixed(0)} ms, wasm speed ${(native.ms / wasm.ms).toFixed(2)}x native (${same})`);

  // The README's picture: log replication, while AppendEntries carry the first write.
  await page.evaluate(() => {
    window.flotilla.loadScenario('log-replication');
    window.flotilla.setSpeed(0.1);
  });
  await page.evaluate(() => window.flotilla.seek(612));
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${root}web/screenshot.png` });
  console.log('saved web/screenshot.png');
} finally {
  await browser.close();
  server.kill();
}

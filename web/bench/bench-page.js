// The in-browser half of `npm run bench:web`: measures the wasm core in the page's own V8.
// Loaded by bench.mjs into a playground page; returns plain numbers.

import { loadWasm } from '../wasm.js';
import { readFrame, readLogs } from '../model.js';
import { PLAYGROUND_OPTIONS } from '../scenarios.js';

const percentile = (values, p) => values.slice().sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];

/** Wasm time per 60 fps frame at 1× real time: advance 1/60 s, then read what a frame draws. */
export async function wasmFrameTime({ nodes = 5, writesPerSecond = 0, frames = 1200 } = {}) {
  const tables = await loadWasm();
  const cluster = new tables.SimCluster({ ...PLAYGROUND_OPTIONS, nodes });
  cluster.runUntil(2000); // past the first election
  const times = [];
  const warmUpFrames = 120; // let V8 tier the wasm up before measuring
  let simulated = cluster.nowMs;
  let nextWrite = simulated;
  let written = 0;
  for (let frame = 0; frame < frames + warmUpFrames; frame++) {
    const started = performance.now();
    simulated += 1000 / 60;
    if (writesPerSecond > 0) {
      while (nextWrite <= simulated) {
        cluster.act({ type: 'put', key: `k${written % 64}`, value: String(written) });
        written += 1;
        nextWrite += 1000 / writesPerSecond;
      }
    }
    cluster.runUntil(Math.floor(simulated));
    readFrame(cluster, tables);
    readLogs(cluster, 80);
    cluster.drainEvents();
    if (frame >= warmUpFrames) times.push(performance.now() - started);
  }
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  cluster.free();
  return { nodes, writesPerSecond, meanMs: mean, p99Ms: percentile(times, 0.99), maxMs: Math.max(...times) };
}

/** How much faster than real time a 5-node cluster runs under `writesPerSecond` writes. */
export async function fastForward({ nodes = 5, writesPerSecond = 100, simulatedMs = 60_000 } = {}) {
  const tables = await loadWasm();
  const cluster = new tables.SimCluster({ ...PLAYGROUND_OPTIONS, nodes });
  const interval = 1000 / writesPerSecond;
  for (let t = 1000, k = 0; t < simulatedMs; t += interval, k++) {
    cluster.schedule(Math.floor(t), { type: 'put', key: `k${k % 64}`, value: String(k) });
  }
  const started = performance.now();
  for (let t = 0; t < simulatedMs; t += 1000) {
    cluster.runUntil(t + 1000);
    cluster.drainEvents(); // as the playground does each frame
  }
  const elapsedMs = performance.now() - started;
  const result = {
    nodes,
    writesPerSecond,
    simulatedMs,
    elapsedMs,
    timesRealTime: simulatedMs / elapsedMs,
    committed: cluster.committedIndex,
    violations: cluster.violationCount,
  };
  cluster.free();
  return result;
}

/** The same seeded workload as the native core_bench example. */
export async function coreWorkload({ seed, runs, nodes, ticks }) {
  const tables = await loadWasm();
  tables.runSeedWorkload(seed, 1, nodes, ticks); // warm-up, as on the native side
  const started = performance.now();
  const [hash, committed] = tables.runSeedWorkload(seed, runs, nodes, ticks).split(' ');
  return { hash, committed: Number(committed), ms: performance.now() - started };
}

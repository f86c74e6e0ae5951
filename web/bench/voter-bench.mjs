// `npm run bench:voter`: what a browser voter costs (issue 14). Put latency p50/p99 at 1 and 64
// clients (`raft-node bench`, sessions on, 256-byte values) against two clusters on this machine,
// measured in the same run, one after the other:
//   A. 3 native voters (ports 7520-7522);
//   B. 2 native voters + 1 voter tab (ports 7530-7531; the tab in headless Chromium with OPFS
//      sync access handles and persistent storage granted, promoted with `admin add-voter`).
// In B every commit needs one of the two: the other native voter or the tab, so B's latency
// includes the tab's path (WebSocket, wasm, OPFS write + flush) whenever the tab answers first.
// Prints a table and a JSON line. Not a test: nothing is asserted.
import { Cluster, buildNative, durableContext, waitFor } from '../tests/cluster.mjs';

const OPS = { 1: Number(process.env.VOTER_BENCH_OPS_1 ?? 1000), 64: Number(process.env.VOTER_BENCH_OPS_64 ?? 10000) };
const CLIENTS = [1, 64];

function bench(cluster, clients) {
  const out = cluster.cli(['bench', '--clients', String(clients), '--ops', String(OPS[clients])]).trim().split('\n');
  return JSON.parse(out[out.length - 1]);
}

async function measure(cluster) {
  const rows = [];
  // A short warm-up so the first figures do not include connection set-up.
  cluster.cli(['bench', '--clients', '8', '--ops', '500']);
  for (const clients of CLIENTS) rows.push(bench(cluster, clients));
  return rows;
}

const error = buildNative();
if (error) {
  console.error(`voter-bench: raft-node could not be built: ${error}`);
  process.exit(1);
}

const results = {};
const native = new Cluster({ ids: [1, 2, 3], basePort: 7520 });
try {
  native.startAll();
  await native.waitLeader();
  results['3 native voters'] = await measure(native);
} finally {
  await native.stopAll();
}

const mixed = new Cluster({ ids: [1, 2], basePort: 7530 });
let tab = null;
try {
  mixed.startAll();
  await mixed.waitLeader();
  tab = await durableContext(`http://${mixed.address(1)}`);
  await tab.page.goto(mixed.invite());
  await waitFor(tab.page, () => window.flotilla?.live?.state().status === 'joined');
  const state = await tab.page.evaluate(() => window.flotilla.live.state());
  if (state.backend !== 'opfs' || !state.persistent) throw new Error(`the tab cannot vote: ${JSON.stringify(state)}`);
  for (let k = 0; ; k++) {
    const answer = mixed.cliResult(['admin', 'add-voter', String(state.nodeId)]);
    if (answer.ok) break;
    if (k > 40) throw new Error(`add-voter refused: ${answer.out}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await waitFor(tab.page, () => {
    const s = window.flotilla.live.state();
    return s.members.some((m) => m.id === s.nodeId && m.role === 'voter');
  });
  results['2 native + 1 voter tab'] = await measure(mixed);
  const after = await tab.page.evaluate(() => window.flotilla.live.state());
  results.tab = { nodeId: after.nodeId, applied: after.applied, applyViolations: after.applyViolations };
} finally {
  await tab?.close();
  await mixed.stopAll();
}

console.log('\nput latency, same machine, same run (raft-node bench, 256-byte values, sessions)');
console.log('cluster                   clients   ops     p50 ms   p99 ms   ops/s');
for (const [name, rows] of Object.entries(results)) {
  if (!Array.isArray(rows)) continue;
  for (const r of rows) {
    console.log(
      `${name.padEnd(26)}${String(r.clients).padEnd(10)}${String(r.ops).padEnd(8)}${r.p50_ms.toFixed(2).padStart(7)}  ${r.p99_ms.toFixed(2).padStart(7)}  ${Math.round(r.ops_per_sec)}`,
    );
  }
}
console.log(JSON.stringify(results));

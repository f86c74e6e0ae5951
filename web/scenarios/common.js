// What every scenario shares: the playground's timing, input makers, the predicates captions
// claim, and the caption clock. Each scenario is a module of its own in this folder (a seed +
// config + input script, with a one-line caption per step; steps without a caption only add
// inputs), so that a docs widget fetches only the one it shows (loadScenario); the playground
// imports them all through web/scenarios.js.
// Times are simulated milliseconds. Steps without inputs only caption what the core does on its
// own at that moment: the runs are deterministic, so the captions stay true (the browser tests
// play every scenario to its end and check its outcome).

/** The playground's timing: elections after 200–400 ms of silence, heartbeats every 50 ms,
 * messages take 10–20 ms — slow enough to watch at 0.1×. Servers snapshot every 200 entries,
 * as a real deployment would, so long busy runs keep short logs (and fast-forward stays fast). */
export const PLAYGROUND_OPTIONS = Object.freeze({
  nodes: 5,
  seed: 18,
  tickMs: 10,
  electionTimeoutTicks: 20,
  heartbeatIntervalTicks: 5,
  latencyMsMin: 10,
  latencyMsMax: 20,
  snapshotIntervalEntries: 200,
});

/** Every scenario, in the playground's order; each is `./<id>.js`. */
export const SCENARIO_IDS = Object.freeze([
  'first-election', 'split-vote', 'log-replication', 'leader-crash', 'minority-partition', 'figure-8',
  'pre-vote', 'no-pre-vote', 'membership-change', 'catch-up', 'log-compaction', 'snapshot',
  'snapshot-chunks', 'leadership-transfer', 'browser-voter', 'read-modes', 'stale-read',
  'lease-reads', 'barrier', 'client-sessions', 'log-repair', 'check-quorum', 'persistence', 'wiped-disk',
  'joint-consensus', 'remove-leader',
]);

/** The scenario with `id`, fetched on first use; undefined for an id that is not a scenario. */
export async function loadScenario(id) {
  if (!SCENARIO_IDS.includes(id)) return undefined;
  return (await import(`./${id}.js`)).default;
}

export const put = (key, value) => ({ type: 'put', key, value });
export const read = (node, mode) => ({ type: 'read', node, key: 'x', mode });

// ----- what captions claim, as predicates over `window.flotilla.state()` ----------------------
// Each captioned step has `truth(s)`: true when the picture at that moment shows what the
// caption says. The browser tests evaluate every one (flotilla.checkCaptions()).

export const node = (s, id) => s.nodes[id - 1];
export const others = (s, id) => s.nodes.filter((n) => n.id !== id);
/** `id` leads `term`: the only leader, in that term. */
export const leads = (s, id, term) => s.leader === id && node(s, id).role === 'leader' && node(s, id).term === term && s.nodes.filter((n) => n.role === 'leader' && n.term === term).length === 1;
/** Messages of `kind` on the wire, from `from` (any if null), matching `match`. */
export const wire = (s, kind, from = null, match = () => true) => s.wire.filter((m) => m.kind === kind && (from === null || m.from === from) && match(m));
export const noLeader = (s) => s.nodes.every((n) => n.role !== 'leader');
export const allFollowers = (s, ids) => ids.every((id) => node(s, id).role === 'follower');
export const read_ = (s, k) => s.reads[k];
/** The same ids, in any order. */
export const same = (ids, expected) => Array.isArray(ids) && ids.length === expected.length && expected.every((id) => ids.includes(id));

// ----- playing a scenario -----------------------------------------------------------------------

/** Schedules every input of `scenario` on a fresh `cluster`. */
export function scheduleScenario(cluster, scenario) {
  for (const step of scenario.steps) {
    for (const input of step.inputs ?? []) cluster.schedule(step.atMs, input);
  }
}

/** The steps that have a caption, in order. */
export function captionedSteps(scenario) {
  return scenario.steps.filter((step) => step.caption);
}

/** Auto narration holds a caption this long (wall-clock ms): about 15 characters a second, a
 * short caption at least 2.5 s, a long one at most 12 s. */
export function readingMs(caption) {
  return Math.min(12_000, Math.max(2_500, 1_000 + 65 * caption.length));
}

/** The caption in force at `timeMs`, with its position among the captioned steps. */
export function captionAt(scenario, timeMs) {
  let current = null;
  captionedSteps(scenario).forEach((step, k) => {
    if (step.atMs <= timeMs) current = { index: k, caption: step.caption, atMs: step.atMs };
  });
  return current;
}

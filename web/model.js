// Turns the wasm frame arrays into plain objects: the state the renderer draws and the page API
// returns. Pure functions; no DOM, no wasm calls beyond reading one cluster.

export const ROLES = ['follower', 'pre-candidate', 'candidate', 'leader'];
export const LIVENESS = ['up', 'down', 'paused'];
export const MEMBERSHIP = ['none', 'voter', 'learner'];

/** Rows of `stride` numbers as objects keyed by `fields`. */
function rows(array, fields, stride) {
  const out = [];
  for (let at = 0; at + stride <= array.length; at += stride) {
    const row = {};
    for (let k = 0; k < stride; k++) row[fields[k]] = array[at + k];
    out.push(row);
  }
  return out;
}

/**
 * One frame of a cluster: nodes, messages on the wire, cut links, and the leader's view of its
 * followers. `tables` is what loadWasm() resolved to.
 */
export function readFrame(cluster, tables) {
  const nodes = rows(cluster.nodeFrame(), tables.nodeFields, tables.nodeStride).map((row, k) => ({
    id: k + 1,
    ...row,
    role: row.liveness === 1 ? 'down' : ROLES[row.role],
    liveness: LIVENESS[row.liveness],
    member: MEMBERSHIP[row.member] ?? 'none',
    campaigns: row.campaigns !== 0,
  }));
  const messages = rows(cluster.messageFrame(), tables.messageFields, tables.messageStride).map((m) => ({
    ...m,
    kindName: tables.messageKinds[m.kind] ?? 'Other',
  }));
  const cutArray = cluster.cutLinks();
  const cuts = [];
  for (let k = 0; k + 1 < cutArray.length; k += 2) cuts.push([cutArray[k], cutArray[k + 1]]);
  const leader = cluster.leader() ?? null;
  const progress = [];
  if (leader !== null) {
    const p = cluster.progressFrame(leader);
    for (let k = 0; k + 4 < p.length; k += 5) {
      progress.push({ id: p[k], match: p[k + 1], next: p[k + 2], state: ['probe', 'replicate', 'snapshot'][p[k + 3]], inflight: p[k + 4] });
    }
  }
  return {
    timeMs: cluster.nowMs,
    tick: Math.floor(cluster.nowMs / cluster.tickMs),
    tickMs: cluster.tickMs,
    leader,
    committed: cluster.committedIndex,
    violations: cluster.violationCount,
    nodes,
    messages,
    cuts,
    progress,
  };
}

/**
 * The tail of each node's log, `count` entries each, as `{first, terms}` at index id - 1; only
 * the nodes in `ids` when given (a compact layout draws two lanes, not fifty).
 */
export function readLogs(cluster, count, ids = null) {
  const logs = new Array(cluster.nodeCount).fill(null);
  for (const id of ids ?? logs.map((_, k) => k + 1)) {
    const array = cluster.logTerms(id, count);
    logs[id - 1] = { first: array[0], terms: Array.from(array.subarray(1)) };
  }
  return logs;
}

/** The state the page API hands out: plain data, safe to JSON.stringify. */
export function publicState(frame, traceHash) {
  return {
    tick: frame.tick,
    timeMs: frame.timeMs,
    leader: frame.leader,
    committed: frame.committed,
    violations: frame.violations,
    traceHash,
    nodes: frame.nodes.map((n) => ({
      id: n.id,
      role: n.role,
      liveness: n.liveness,
      term: n.term,
      commit: n.commit,
      last: n.last,
      applied: n.applied,
      leader: n.leader || null,
      votedFor: n.votedFor || null,
      member: n.member,
      campaigns: n.campaigns,
      snapshot: n.snapshot,
      lastTerm: n.lastTerm,
      timerElapsed: n.timerElapsed,
      timerTimeout: n.timerTimeout,
      votesGranted: n.votesGranted,
    })),
    messages: frame.messages.length,
    /** Messages on the wire: [{id, kind, from, to, term, entries, index, flag}], for checks. */
    wire: frame.messages.map((m) => ({
      id: m.id,
      kind: m.kindName,
      from: m.from,
      to: m.to,
      term: m.term,
      entries: m.entries,
      index: m.index,
      flag: m.flag,
    })),
    cuts: frame.cuts,
    /** The leader's view of each follower: [{id, match, next, state, inflight}]. */
    progress: frame.progress,
  };
}

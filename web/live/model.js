// Live cluster state (from the Worker) → the frame the playground's one renderer draws
// (web/render.js). The renderer places nodes by position 1..n; a live cluster's ids are native
// ids (1, 2, 3…) and browser ids (≥ 2^32), so each member gets a slot, and a short label.
// Pure functions, no DOM.

export const BROWSER_ID_MIN = 2 ** 32;

/** Members in drawing order: native nodes by id, then tabs by id. */
export function orderedMembers(state) {
  const natives = state.members.filter((m) => m.kind === 'native').sort((a, b) => a.id - b.id);
  const tabs = state.members.filter((m) => m.kind === 'browser').sort((a, b) => a.id - b.id);
  return [...natives, ...tabs];
}

/** A short label: a native node's id, or "tab" plus the low digits of a browser peer's id. */
export function memberLabel(member, ownId) {
  if (member.kind === 'native') return String(member.id);
  const short = `tab ${member.id - BROWSER_ID_MIN}`;
  return member.id === ownId ? `${short} (you)` : short;
}

/** An answer of a member's `/v1/cluster` older than this is not used (its node may be gone). */
export const VIEW_FRESH_MS = 3000;

/**
 * The freshest answer from each node, by node id, among `views` (address → {atMs, answer}),
 * dropping those older than VIEW_FRESH_MS at `nowMs`. Two addresses may name one node (the
 * invite's host and its address record): the newer answer wins.
 */
export function answersById(views, nowMs) {
  const byId = new Map();
  for (const view of views.values()) {
    const answer = view?.answer;
    if (!answer || !Number.isSafeInteger(answer.node) || nowMs - view.atMs > VIEW_FRESH_MS) continue;
    const known = byId.get(answer.node);
    if (!known || known.atMs < view.atMs) byId.set(answer.node, { atMs: view.atMs, answer });
  }
  return new Map([...byId].map(([id, { answer }]) => [id, answer]));
}

const figure = (value) => (Number.isSafeInteger(value) && value >= 0 ? value : null);

/**
 * `state` (the Worker's) with each member's figures merged from the members' own `/v1/cluster`
 * answers (`views`: address → {atMs, answer}; see native-node/src/cluster_view.rs):
 *   term, raftRole, commit, applied: from the member's own answer (this tab's from its node);
 *   matchIndex, leaderContactMs: what the leader tracks of it (its answer's `members`);
 *   lag: the leader's commit minus the member's applied, or minus its match index when only
 *   the leader speaks for it (another tab: `lagFrom` 'match').
 * Anything not known is null, never 0: a member that does not answer is not "at index 0".
 * `clusterCommit` is the leader's commit index, or null. Adds fields, changes none.
 */
export function mergeViews(state, views, nowMs) {
  const answers = answersById(views, nowMs);
  // The leader's answer: from the leader the tab follows if it answered, else from any member
  // that says it leads (the highest term's).
  let leaderAnswer = answers.get(state.leader);
  if (leaderAnswer?.role !== 'leader') {
    leaderAnswer = [...answers.values()].filter((a) => a.role === 'leader').sort((a, b) => b.term - a.term)[0];
  }
  const clusterCommit = leaderAnswer === undefined ? null : figure(leaderAnswer.commit_index);
  const progress = new Map((leaderAnswer?.members ?? []).map((m) => [m.id, m]));
  const members = state.members.map((m) => {
    const own = m.id === state.nodeId;
    const answer = answers.get(m.id);
    const tracked = progress.get(m.id);
    const commit = own ? figure(state.commit) : figure(answer?.commit_index);
    const applied = own ? figure(state.applied) : figure(answer?.applied_index);
    const matchIndex = figure(tracked?.match_index);
    let lag = null;
    let lagFrom = null;
    if (clusterCommit !== null && applied !== null) {
      lag = Math.max(0, clusterCommit - applied);
      lagFrom = 'applied';
    } else if (clusterCommit !== null && matchIndex !== null) {
      lag = Math.max(0, clusterCommit - matchIndex);
      lagFrom = 'match';
    }
    return {
      ...m,
      term: own ? figure(state.term) : figure(answer?.term),
      raftRole: own ? state.role : answer?.role ?? null,
      commit,
      applied,
      matchIndex,
      lag,
      lagFrom,
      leaderContactMs: figure(tracked?.last_contact_ms),
    };
  });
  return { ...state, members, clusterCommit };
}

/**
 * The renderer's frame for `state` (merged by mergeViews, or not: then only the tab's own
 * figures are known). Figures not known are null; the renderer writes them as "unknown".
 */
export function liveFrame(state) {
  const members = orderedMembers(state);
  const slotOf = new Map(members.map((m, k) => [m.id, k + 1]));
  const nodes = members.map((m, k) => {
    const own = m.id === state.nodeId;
    const down = m.kind === 'native' && !m.connected;
    const commit = own ? state.commit : m.commit ?? null;
    const applied = own ? state.applied : m.applied ?? null;
    return {
      id: k + 1,
      label: memberLabel(m, state.nodeId),
      memberId: m.id,
      kind: m.kind,
      own,
      role: down ? 'down' : m.role === 'leader' ? 'leader' : 'follower',
      liveness: down ? 'down' : 'up',
      member: m.role === 'learner' ? 'learner' : 'voter',
      // A member's own term if it answered, else the term this tab follows.
      term: m.term ?? state.term,
      commit,
      applied,
      last: applied ?? 0,
      snapshot: own ? state.snapshotIndex : 0,
      timerElapsed: 0,
      timerTimeout: 0,
      votesGranted: 0,
      lastContactMs: m.lastContactMs,
      // The figures the renderer writes under the ring (render.js drawFigures).
      figures: {
        commit,
        applied,
        matchIndex: m.matchIndex ?? null,
        lag: own && (state.clusterCommit ?? null) === null ? state.lag ?? null : m.lag ?? null,
        lagFrom: m.lagFrom ?? null,
        contact: contactText(m, state.nodeId),
      },
    };
  });
  return {
    timeMs: 0,
    tick: 0,
    tickMs: 10,
    leader: state.leader === null ? null : slotOf.get(state.leader) ?? null,
    committed: state.clusterCommit ?? state.commit,
    violations: state.applyViolations,
    nodes,
    messages: [],
    cuts: [],
    progress: [],
    ownSlot: slotOf.get(state.nodeId) ?? null,
  };
}

const agoText = (ms) => (ms === null || ms === undefined ? 'never' : `${Math.round(ms)} ms ago`);

/**
 * Last contact. A tab hears only from the leader (a follower sends a learner nothing), so for
 * another member the leader's word counts: when it last heard from it. For a native member the
 * tab's own socket is said too.
 */
function contactText(m, ownId) {
  if (m.id === ownId) return 'this tab';
  const heard = m.role === 'leader' ? null : m.leaderContactMs ?? null;
  if (m.kind === 'browser') return heard === null ? 'unknown' : `leader heard it ${agoText(heard)}`;
  const socket = m.connected ? 'connected' : 'not connected';
  return heard === null ? `${socket}, ${agoText(m.lastContactMs)}` : `${socket}; leader heard it ${agoText(heard)}`;
}

/** A figure for text: the number, or "unknown". */
export const figureText = (value) => (value === null || value === undefined ? 'unknown' : String(value));

/** The lag for text: "unknown", a number, or "≈ N (match index)" when the leader's match stands in. */
export function lagText(figures) {
  if (figures.lag === null || figures.lag === undefined) return 'unknown';
  return figures.lagFrom === 'match' ? `${figures.lag} (by match index)` : String(figures.lag);
}

/** One line per member for the text table beside the canvas. */
export function memberRows(state) {
  return orderedMembers(state).map((m) => {
    const own = m.id === state.nodeId;
    const lag = own && (state.clusterCommit ?? null) === null ? state.lag : m.lag ?? null;
    const applied = own ? state.applied : m.applied ?? null;
    const matchIndex = m.matchIndex ?? null;
    return {
      id: m.id,
      label: memberLabel(m, state.nodeId),
      kind: m.kind,
      role: m.role,
      address: m.address ?? (m.kind === 'browser' ? 'browser' : '?'),
      commit: figureText(own ? state.commit : m.commit ?? null),
      // Another tab's applied index is its own to know; the leader's match index says how far
      // its log reaches.
      applied: applied === null && matchIndex !== null ? `unknown (log to ${matchIndex})` : figureText(applied),
      lag: lagText({ lag, lagFrom: own ? 'applied' : m.lagFrom ?? null }),
      contact: contactText(m, state.nodeId),
    };
  });
}

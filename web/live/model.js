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

/**
 * The renderer's frame for `state`. What the tab knows of others is what it sees: the term and
 * leader it follows, its own commit/applied, and whether a socket to each native member is up.
 */
export function liveFrame(state) {
  const members = orderedMembers(state);
  const slotOf = new Map(members.map((m, k) => [m.id, k + 1]));
  const nodes = members.map((m, k) => {
    const own = m.id === state.nodeId;
    const down = m.kind === 'native' && !m.connected;
    return {
      id: k + 1,
      label: memberLabel(m, state.nodeId),
      memberId: m.id,
      kind: m.kind,
      own,
      role: down ? 'down' : m.role === 'leader' ? 'leader' : 'follower',
      liveness: down ? 'down' : 'up',
      member: m.role === 'learner' ? 'learner' : 'voter',
      term: state.term,
      commit: own ? state.commit : 0,
      applied: own ? state.applied : 0,
      last: own ? state.applied : 0,
      snapshot: own ? state.snapshotIndex : 0,
      timerElapsed: 0,
      timerTimeout: 0,
      votesGranted: 0,
      lastContactMs: m.lastContactMs,
    };
  });
  return {
    timeMs: 0,
    tick: 0,
    tickMs: 10,
    leader: state.leader === null ? null : slotOf.get(state.leader) ?? null,
    committed: state.commit,
    violations: state.applyViolations,
    nodes,
    messages: [],
    cuts: [],
    progress: [],
    ownSlot: slotOf.get(state.nodeId) ?? null,
  };
}

/** One line per member for the text table beside the canvas. */
export function memberRows(state, nowLabel = (ms) => (ms === null ? 'never' : `${Math.round(ms)} ms ago`)) {
  return orderedMembers(state).map((m) => ({
    id: m.id,
    label: memberLabel(m, state.nodeId),
    kind: m.kind,
    role: m.role,
    address: m.address ?? (m.kind === 'browser' ? 'browser' : '?'),
    contact: m.id === state.nodeId ? 'this tab' : m.kind === 'browser' ? 'via the leader' : m.connected ? `connected, ${nowLabel(m.lastContactMs)}` : `not connected, ${nowLabel(m.lastContactMs)}`,
  }));
}

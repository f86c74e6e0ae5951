// The side panels: DOM that shows the richer, slower views (a node in full, a message in full,
// scenario steps, the event log, the checker). Each function takes data and writes DOM; none
// reads the simulation itself.

const $ = (id) => document.getElementById(id);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** The accessible name of a node's button: "node 3, leader, term 4". */
export function nodeLabel(node) {
  const state = node.liveness === 'down' ? 'down' : node.liveness === 'paused' ? `paused ${node.role}` : node.role;
  const member = node.liveness === 'down' ? '' : node.member === 'learner' ? ', learner' : node.member === 'none' ? ', not a member' : '';
  const quiet = node.campaigns === false ? ', never campaigns' : '';
  return `node ${node.id}, ${state}, term ${node.term}${member}${quiet}`;
}

/** Keeps one focusable button per node over the canvas, placed on the node's circle. */
export function syncNodeButtons(container, layout, frame, onActivate) {
  while (container.children.length > layout.nodes.length) container.lastChild.remove();
  while (container.children.length < layout.nodes.length) {
    const button = element('button', undefined, 'node-hit');
    button.type = 'button';
    const id = container.children.length + 1;
    button.dataset.node = String(id);
    button.setAttribute('aria-haspopup', 'menu');
    button.setAttribute('aria-expanded', 'false');
    button.addEventListener('click', (event) => {
      // A click that ended a drag was handled by the drag; the keyboard sends detail 0.
      if (button.dataset.dragged === '1') {
        button.dataset.dragged = '0';
        return;
      }
      onActivate(id, event);
    });
    container.append(button);
  }
  layout.nodes.forEach((p, k) => {
    const button = container.children[k];
    // At least 44 px to touch (WCAG 2.5.5), where the ring has room for it.
    const half = layout.compact ? p.r : Math.max(p.r, 22);
    const size = `${Math.round(half * 2)}px`;
    if (button.style.width !== size) {
      button.style.width = size;
      button.style.height = size;
    }
    button.style.left = `${Math.round(p.x - half)}px`;
    button.style.top = `${Math.round(p.y - half)}px`;
    const label = nodeLabel(frame.nodes[k]);
    if (button.getAttribute('aria-label') !== label) button.setAttribute('aria-label', label);
  });
}

/** The checker badge: green while every invariant holds. */
export function showChecker(violations) {
  const badge = $('checker');
  if (violations.length === 0) {
    badge.className = 'checker ok';
    badge.textContent = '✓ Every safety invariant holds';
    badge.title = 'election safety, log matching, leader completeness, state-machine safety, commit monotonicity';
  } else {
    const first = violations[0];
    badge.className = 'checker bad';
    badge.textContent = `✗ ${first.property} violated at ${first.timeMs} ms`;
    badge.title = first.detail;
  }
}

/** The scenario's steps, with the current one marked; clicking a step seeks to it. */
export function showSteps(scenario, current, onSeek) {
  const list = $('steps');
  if (list.dataset.scenario !== (scenario?.id ?? '')) {
    list.replaceChildren();
    list.dataset.scenario = scenario?.id ?? '';
    for (const step of (scenario?.steps ?? []).filter((s) => s.caption)) {
      const item = element('li');
      const button = element('button', `${step.atMs} ms: ${step.caption}`);
      button.type = 'button';
      button.addEventListener('click', () => onSeek(step.atMs));
      item.append(button);
      list.append(item);
    }
  }
  [...list.children].forEach((item, k) => {
    const state = current && k === current.index ? 'current' : current && k < current.index ? 'done' : '';
    if (item.className === state) return;
    item.className = state;
    // Keep the current step in view inside the list (without scrolling the page).
    if (state === 'current') list.scrollTop = Math.max(0, item.offsetTop - list.offsetTop - list.clientHeight / 3);
  });
}

function eventItem(line) {
  const item = element('li', undefined, line.tone);
  const time = element('time', `${line.timeMs} ms`);
  item.append(time, document.createTextNode(line.text));
  return item;
}

let shownEvents = { history: null, count: 0 };

/**
 * The event log shows the events of `history` (oldest first) up to `nowMs`, the newest `keep` of
 * them: appended while time moves on, redrawn when it goes back or the history changes.
 */
export function showEvents(history, nowMs, keep = 200) {
  // How many lines are at or before now (binary search: the history is in time order).
  let low = 0;
  let high = history.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (history[middle].timeMs <= nowMs) low = middle + 1;
    else high = middle;
  }
  const count = low;
  const list = $('event-log');
  // The history only grows by appending; truncating it makes a new array.
  const same = shownEvents.history === history && shownEvents.count <= count;
  if (same && shownEvents.count === count) return;
  if (same) {
    for (const line of history.slice(Math.max(shownEvents.count, count - keep), count)) list.append(eventItem(line));
    while (list.children.length > keep) list.firstChild.remove();
  } else {
    list.replaceChildren(...history.slice(Math.max(0, count - keep), count).map(eventItem));
  }
  shownEvents = { history, count };
  list.scrollTop = list.scrollHeight;
}

export function clearEvents() {
  $('event-log').replaceChildren();
  shownEvents = { history: null, count: 0 };
}

/** The node panel: summary, leader's progress table, log tail, key-value state. */
export function showNode(view, log, kv, nodeCount) {
  const panel = $('node-panel');
  if (!view) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  $('node-heading').textContent = `Node ${view.id}`;
  const parts = [`${view.role}`, `term ${view.term}`];
  if (view.liveness !== 'up') parts.push(view.liveness);
  if (view.liveness !== 'down') {
    parts.push(view.voters.includes(view.id) ? 'voter' : view.learners.includes(view.id) ? 'learner' : 'not a member');
  }
  if (view.votedFor) parts.push(`voted for ${view.votedFor}`);
  if (view.leader && view.leader !== view.id) parts.push(`follows ${view.leader}`);
  parts.push(`commit ${view.commit}`, `applied ${view.applied}`, `last ${view.last}`);
  // A leader's timer is check-quorum's: ticks since a majority last answered (thesis §6.2).
  const timer = view.role === 'leader' ? 'majority silent' : 'timer';
  if (view.timerTimeout) parts.push(`${timer} ${view.timerElapsed}/${view.timerTimeout} ticks`);
  if (view.clockSlowPercent) parts.push(`clock ${view.clockSlowPercent}% slow`);
  if (view.votes.length) parts.push(`votes: ${view.votes.map((v) => `${v.id}${v.granted ? '✓' : '✗'}`).join(' ')}`);
  $('node-summary').textContent = parts.join(' · ');

  const table = $('node-progress');
  table.replaceChildren();
  if (view.progress.length) {
    const head = element('tr');
    for (const name of ['follower', 'match', 'next', 'state', 'in flight']) head.append(element('th', name));
    table.append(head);
    for (const p of view.progress) {
      const row = element('tr');
      for (const value of [p.id, p.matchIndex, p.nextIndex, p.state, p.inflight]) row.append(element('td', String(value)));
      table.append(row);
    }
  } else {
    const row = element('tr');
    row.append(element('td', 'Only a leader tracks its followers.'));
    table.append(row);
  }

  const entries = $('node-log');
  entries.replaceChildren();
  for (const e of log.entries.slice().reverse()) {
    entries.append(element('li', `${e.index} · term ${e.term} · ${e.text}${e.committed ? '' : ' (not committed)'}`, e.committed ? '' : 'uncommitted'));
  }
  $('node-kv').textContent = kv.length ? kv.map((p) => `${p.key}=${p.value}`).join(', ') : 'empty';

  const peers = $('link-peer');
  if (peers.options.length !== nodeCount - 1 || peers.dataset.node !== String(view.id)) {
    peers.replaceChildren();
    peers.dataset.node = String(view.id);
    for (let id = 1; id <= nodeCount; id++) {
      if (id !== view.id) peers.append(new Option(`node ${id}`, String(id)));
    }
  }
}

/** The client get's server choice: the leader (resolved when asked) or one node by id. */
export function syncReadNodes(nodeCount) {
  const select = $('get-node');
  if (select.options.length === nodeCount + 1) return;
  const chosen = select.value;
  select.replaceChildren(new Option('the leader', ''));
  for (let id = 1; id <= nodeCount; id++) select.append(new Option(`node ${id}`, String(id)));
  select.value = Number(chosen) <= nodeCount ? chosen : '';
}

/** The answer to the client's latest get, next to the control (`read` as `readResult` gives it). */
export function showReadAnswer(read) {
  const answer = $('get-answer');
  const text = read ? read.text : '';
  // Rewritten only when it changes, so screen readers announce each answer once.
  if (answer.textContent !== text) answer.textContent = text;
  answer.classList.toggle('failed', read?.status === 'failed');
}

/** The message list (refreshed while paused) and the selected message's fields. */
export function showMessages(frame, selectedId, details) {
  const list = $('message-list');
  const wanted = frame.messages.map((m) => String(m.id));
  const have = [...list.options].slice(1).map((o) => o.value);
  if (wanted.join(',') !== have.join(',')) {
    list.replaceChildren(new Option(`${frame.messages.length} in flight`, ''));
    for (const m of frame.messages) {
      list.append(new Option(`#${m.id} ${m.kindName} ${m.from}→${m.to}`, String(m.id)));
    }
  }
  list.value = selectedId !== null && wanted.includes(String(selectedId)) ? String(selectedId) : '';
  const fields = $('message-fields');
  fields.replaceChildren();
  $('message-drop').disabled = !details;
  $('message-duplicate').disabled = !details;
  if (!details) return;
  const rows = [
    ['message', `#${details.id} ${details.kind}`],
    ['from → to', `${details.from} → ${details.to}`],
    ['term', details.term],
    ['sent → arrives', `${details.sentMs} → ${details.deliverMs} ms`],
    ...(details.ok === undefined ? [] : [['outcome', details.ok ? 'granted / accepted' : 'refused / rejected']]),
    ...details.fields,
  ];
  for (const [name, value] of rows) fields.append(element('dt', name), element('dd', String(value)));
}

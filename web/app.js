// The playground: wires the timeline (wasm), the renderer (canvas) and the panels (DOM) to the
// controls, runs the animation loop, keeps the URL fragment in step with the run, and exposes
// `window.flotilla` for tests and the docs widget.
//
// Determinism: the simulation only ever moves through whole simulated milliseconds driven by
// the timeline; wall-clock time decides how far to go per frame, never what happens. Nothing
// here uses Math.random.

import { loadWasm } from './wasm.js';
import { Timeline } from './timeline.js';
import { publicState, readFrame, readLogs } from './model.js';
import { computeLayout, drawFrame, hitMessage, hitNode } from './render.js';
import { hidpiCanvas } from './canvas.js';
import { PLAYGROUND_OPTIONS, SCENARIOS, captionAt, findScenario, scheduleScenario } from './scenarios.js';
import { decodeFragment, encodeFragment } from './share.js';
import { describeEvents } from './eventlog.js';
import * as panels from './panels.js';

const SPEED_MIN = 0.01;
const SPEED_MAX = 1000;
/** Most wall-clock time one frame spends simulating; beyond it playback slows instead of the page. */
const FRAME_BUDGET_MS = 20;
/** Entries per log lane fetched each frame (more than any lane can show). */
const LOG_TAIL = 80;
const PANEL_REFRESH_MS = 250;
const URL_REFRESH_MS = 500;

const $ = (id) => document.getElementById(id);

const app = {
  tables: null,
  timeline: null,
  scenario: null,
  scenarioDone: false,
  playing: false,
  speed: 0.1,
  displayMs: 0,
  lastFrameAt: null,
  selectedNode: null,
  selectedMessage: null,
  drag: null,
  layout: null,
  ctx: null,
  width: 0,
  height: 0,
  frame: null,
  logs: null,
  dirty: true,
  panelsAt: 0,
  urlAt: 0,
  wasPlayingWhenHidden: false,
  reducedMotion: matchMedia('(prefers-reduced-motion: reduce)').matches,
  /** Id of the latest client get asked from the page, whose answer shows next to the control. */
  lastReadId: null,
};

const cluster = () => app.timeline.cluster;

// ----- runs --------------------------------------------------------------------------------

function startRun(newCluster, { scenario = null, atMs = 0, play = false } = {}) {
  app.timeline?.dispose();
  app.timeline = new Timeline(newCluster);
  app.scenario = scenario;
  app.scenarioDone = false;
  app.selectedNode = null;
  app.selectedMessage = null;
  app.lastReadId = null;
  panels.clearEvents();
  panels.showReadAnswer(null);
  if (atMs > 0) app.timeline.seek(atMs);
  app.displayMs = cluster().nowMs;
  $('scenario').value = scenario?.id ?? '';
  syncRunForm();
  setPlaying(play);
  refresh(true);
}

function loadScenario(id, { play = !app.reducedMotion } = {}) {
  const scenario = findScenario(id);
  if (!scenario) throw new RangeError(`no scenario ${id}`);
  const fresh = new app.tables.SimCluster(scenario.options);
  scheduleScenario(fresh, scenario);
  startRun(fresh, { scenario, play });
}

function newRun(options, { play = !app.reducedMotion } = {}) {
  startRun(new app.tables.SimCluster({ ...PLAYGROUND_OPTIONS, ...options }), { play });
}

function syncRunForm() {
  const options = cluster().options();
  $('opt-nodes').value = options.nodes;
  $('opt-seed').value = options.seed;
  $('opt-latency').value = `${options.latencyMsMin}-${options.latencyMsMax}`;
  $('opt-loss').value = options.lossPerMille;
  $('opt-prevote').checked = options.preVote;
  $('opt-voters').value = options.votersInitial;
  $('opt-snapshot').value = options.snapshotIntervalEntries;
}

// ----- time --------------------------------------------------------------------------------

function setPlaying(playing) {
  app.playing = playing;
  $('play').textContent = playing ? 'Pause' : 'Play';
  $('play').setAttribute('aria-pressed', String(playing));
  app.lastFrameAt = null;
  if (!playing) app.displayMs = cluster().nowMs;
  updateUrl(true);
}

function setSpeed(speed) {
  app.speed = Math.min(SPEED_MAX, Math.max(SPEED_MIN, speed));
  $('speed').value = String(Math.log10(app.speed));
  $('speed-out').textContent = `${app.speed < 1 ? app.speed.toPrecision(2).replace(/\.?0+$/, '') : Math.round(app.speed)}×`;
}

/** Moves the view to `timeMs` (simulated milliseconds). */
function seek(timeMs) {
  app.timeline.seek(Math.max(0, Math.floor(timeMs)));
  app.displayMs = cluster().nowMs;
  app.scenarioDone = app.scenario ? cluster().nowMs >= app.scenario.endMs : false;
  refresh(true);
  updateUrl(true);
}

/** Runs forward to `target` within the frame's budget; returns whether it got there. */
function simulateTo(target) {
  const started = performance.now();
  const chunk = Math.max(1, Math.ceil(app.speed * 4));
  while (cluster().nowMs < target) {
    app.timeline.advanceTo(Math.min(target, cluster().nowMs + chunk));
    drainEvents();
    if (performance.now() - started > FRAME_BUDGET_MS) return false;
  }
  return true;
}

function stepOnce() {
  setPlaying(false);
  cluster().stepEvent();
  app.timeline.endMs = Math.max(app.timeline.endMs, cluster().nowMs);
  drainEvents();
  app.displayMs = cluster().nowMs;
  refresh(true);
}

// ----- acting ------------------------------------------------------------------------------

/** Does `inputs` (objects such as {type: 'crash', node: 3}) at the next millisecond, together. */
function act(inputs) {
  app.timeline.act((c) => {
    const at = c.nowMs + 1;
    for (const input of inputs) c.schedule(at, input);
    c.runUntil(at);
  });
  drainEvents();
  app.displayMs = cluster().nowMs;
  app.scenarioDone = true; // the user went off script: do not stop at the scenario's end
  refresh(true);
  updateUrl(true);
}

function linkIsCut(a, b) {
  return app.frame.cuts.some(([from, to]) => (from === a && to === b) || (from === b && to === a));
}

function toggleLink(a, b) {
  const type = linkIsCut(a, b) ? 'restoreLink' : 'cutLink';
  act([{ type, from: a, to: b }, { type, from: b, to: a }]);
}

function partition(groupA, groupB) {
  const all = app.frame.nodes.map((n) => n.id);
  const a = [...new Set(groupA.map(Number))];
  const b = groupB ? [...new Set(groupB.map(Number))] : all.filter((id) => !a.includes(id));
  if (a.length + b.length === all.length && a.every((id) => !b.includes(id))) {
    act([{ type: 'partition', side: a }]);
    return;
  }
  const inputs = [];
  for (const x of a) for (const y of b) if (x !== y) inputs.push({ type: 'cutLink', from: x, to: y }, { type: 'cutLink', from: y, to: x });
  act(inputs);
}

/**
 * A client reads `key` through server `node` (default: the leader now, else node 1) with `mode`
 * ('linearizable', 'lease' or 'stale'). Returns the read as `readResult` gives it: answered at
 * once for stale and lease reads, pending while a ReadIndex round is on the wire.
 */
function get(key, { node = null, mode = 'linearizable' } = {}) {
  const id = cluster().readsAsked;
  const via = Number(node) || cluster().leader() || 1;
  act([{ type: 'read', node: via, key: String(key), mode }]);
  app.lastReadId = id;
  const read = cluster().readResult(id) ?? null;
  panels.showReadAnswer(read);
  return read;
}

function nodeAction(action, id) {
  if (action === 'isolate') act([{ type: 'partition', side: [id] }]);
  else act([{ type: action, node: id }]);
}

// ----- the loop ----------------------------------------------------------------------------

function frameLoop(now) {
  requestAnimationFrame(frameLoop);
  if (document.hidden || !app.timeline) return;
  if (app.playing) {
    const dt = app.lastFrameAt === null ? 0 : Math.min(100, now - app.lastFrameAt);
    app.lastFrameAt = now;
    let next = app.displayMs + dt * app.speed;
    const end = app.scenario && !app.scenarioDone ? app.scenario.endMs : Infinity;
    if (next >= end) next = end;
    const reached = simulateTo(Math.floor(next));
    app.displayMs = reached ? next : cluster().nowMs;
    if (cluster().nowMs >= end) {
      app.scenarioDone = true;
      setPlaying(false);
    }
    app.dirty = true;
  }
  if (app.dirty) {
    app.dirty = false;
    refresh(false);
  }
}

function drainEvents() {
  const rows = cluster().drainEvents();
  if (rows.length === 0) return;
  const violations = cluster().violationCount ? cluster().violations() : [];
  panels.appendEvents(describeEvents(rows, violations, (id) => cluster().readResult(id)));
}

/** Reads the frame, draws it, and (at most a few times a second, or when forced) the panels. */
function refresh(force) {
  app.frame = readFrame(cluster(), app.tables);
  if (!app.layout || app.layout.nodes.length !== app.frame.nodes.length) relayout();
  const ids = app.layout.compact ? [app.frame.leader, app.selectedNode].filter(Boolean) : null;
  app.logs = readLogs(cluster(), LOG_TAIL, ids);
  drawFrame(app.ctx, app.layout, {
    frame: app.frame,
    logs: app.logs,
    timeMs: app.reducedMotion ? app.frame.timeMs : app.displayMs,
    selectedNode: app.selectedNode,
    selectedMessage: app.selectedMessage,
    drag: app.drag?.moved ? app.drag : null,
  });
  panels.syncNodeButtons($('node-buttons'), app.layout, app.frame, selectNode);
  showTime();
  const now = performance.now();
  if (force || now - app.panelsAt > PANEL_REFRESH_MS) {
    app.panelsAt = now;
    refreshPanels();
  }
  if (now - app.urlAt > URL_REFRESH_MS) updateUrl(false);
}

function showTime() {
  const c = cluster();
  const scrub = $('scrub');
  const max = Math.max(app.timeline.endMs, app.scenario?.endMs ?? 0, c.nowMs, 1000);
  if (Number(scrub.max) !== max || Number($('marks').dataset.length) !== c.scriptLength) {
    scrub.max = String(max);
    showMarks(c, max);
  }
  if (document.activeElement !== scrub || !scrub.matches(':active')) scrub.value = String(c.nowMs);
  scrub.setAttribute('aria-valuetext', `${c.nowMs} milliseconds`);
  $('time-out').textContent = `${(c.nowMs / 1000).toFixed(3)} s · tick ${app.frame.tick}${app.timeline.inPast ? ' · replay' : ''}`;
  const caption = app.scenario ? captionAt(app.scenario, c.nowMs) : null;
  const text = app.scenario
    ? `${caption?.caption ?? ''}${app.scenarioDone && c.nowMs >= app.scenario.endMs ? ' — End of the scenario: press Play to go on, or act on the cluster.' : ''}`
    : 'Free play: click a server for its controls, drag between two servers to cut a link.';
  if ($('caption').textContent !== text) $('caption').textContent = text;
  panels.showSteps(app.scenario, caption, seek);
}

/** Ticks above the time slider where the script has inputs (at most one per pixel-ish slot). */
function showMarks(c, max) {
  const marks = $('marks');
  marks.dataset.length = String(c.scriptLength);
  const slots = new Map();
  for (const item of c.scriptItems()) {
    const slot = Math.round((item.timeMs / max) * 400);
    if (!slots.has(slot)) slots.set(slot, item);
  }
  marks.replaceChildren(
    ...[...slots.values()].map((item) => {
      const tick = document.createElement('i');
      tick.style.left = `${(item.timeMs / max) * 100}%`;
      tick.title = `${item.timeMs} ms: ${item.text}`;
      return tick;
    }),
  );
}

function refreshPanels() {
  const c = cluster();
  panels.showChecker(c.violationCount ? c.violations() : []);
  $('trace-hash').textContent = c.traceHash();
  panels.syncReadNodes(c.nodeCount);
  // Follows the timeline: answered once the run gets there, gone when scrubbed back before it.
  if (app.lastReadId !== null) panels.showReadAnswer(c.readResult(app.lastReadId) ?? null);
  const st = c.stats();
  $('stats').textContent =
    `${st.messagesDelivered} messages delivered, ${st.messagesDropped} lost · ${st.elections} elections · ` +
    `${st.committed} entries committed · ${st.snapshotsTaken} snapshots taken, ${st.snapshotsInstalled} sent · ` +
    `${st.membershipChanges} membership changes`;
  if (app.selectedNode !== null) {
    panels.showNode(c.node(app.selectedNode), c.nodeLog(app.selectedNode, 12), c.kv(app.selectedNode, 20), c.nodeCount);
    const peer = Number($('link-peer').value);
    $('link-toggle').textContent = peer && linkIsCut(app.selectedNode, peer) ? 'Restore' : 'Cut';
  } else {
    panels.showNode(null);
  }
  const details = app.selectedMessage !== null ? c.message(app.selectedMessage) : undefined;
  if (app.selectedMessage !== null && !details) app.selectedMessage = null;
  panels.showMessages(app.frame, app.selectedMessage, details);
}

function relayout() {
  app.layout = computeLayout(app.frame.nodes.length, app.width, app.height);
}

function updateUrl(force) {
  const now = performance.now();
  if (!force && now - app.urlAt < URL_REFRESH_MS) return;
  app.urlAt = now;
  const fragment = encodeFragment({ run: cluster().run(), atMs: cluster().nowMs, scenario: app.scenario?.id });
  if (location.hash !== fragment) history.replaceState(null, '', fragment);
  $('share-link').href = fragment;
}

// ----- selection and pointer ---------------------------------------------------------------

function selectNode(id) {
  app.selectedNode = app.selectedNode === id ? null : id;
  refresh(true);
  if (app.selectedNode !== null) $('node-heading').scrollIntoView({ block: 'nearest' });
}

function selectMessage(id) {
  app.selectedMessage = id;
  if (id !== null) setPlaying(false);
  refresh(true);
}

function canvasPoint(event) {
  const box = $('view').getBoundingClientRect();
  return { x: event.clientX - box.left, y: event.clientY - box.top };
}

function wirePointer() {
  const buttons = $('node-buttons');
  buttons.addEventListener('pointerdown', (event) => {
    const id = Number(event.target.dataset?.node);
    if (!id) return;
    event.target.setPointerCapture(event.pointerId);
    app.drag = { from: id, ...canvasPoint(event), startX: event.clientX, startY: event.clientY, moved: false, button: event.target };
  });
  buttons.addEventListener('pointermove', (event) => {
    if (!app.drag) return;
    Object.assign(app.drag, canvasPoint(event));
    if (Math.hypot(event.clientX - app.drag.startX, event.clientY - app.drag.startY) > 6) app.drag.moved = true;
    app.dirty = true;
  });
  const finish = (event) => {
    const drag = app.drag;
    app.drag = null;
    if (!drag?.moved) return;
    drag.button.dataset.dragged = '1';
    const { x, y } = canvasPoint(event);
    const target = hitNode(app.layout, x, y);
    if (target && target !== drag.from) toggleLink(drag.from, target);
    app.dirty = true;
  };
  buttons.addEventListener('pointerup', finish);
  buttons.addEventListener('pointercancel', () => {
    app.drag = null;
    app.dirty = true;
  });
  $('view').addEventListener('pointerdown', (event) => {
    const { x, y } = canvasPoint(event);
    const message = hitMessage(app.frame, app.layout, app.displayMs, x, y);
    selectMessage(message ? message.id : null);
  });
}

// ----- controls ----------------------------------------------------------------------------

function wireControls() {
  $('play').addEventListener('click', () => setPlaying(!app.playing));
  $('step').addEventListener('click', stepOnce);
  $('skip').addEventListener('click', () => seek(cluster().nowMs + 1000));
  $('speed').addEventListener('input', (event) => setSpeed(10 ** Number(event.target.value)));
  $('scrub').addEventListener('input', (event) => {
    setPlaying(false);
    seek(Number(event.target.value));
  });
  document.addEventListener('keydown', (event) => {
    const tag = event.target.tagName;
    if (['INPUT', 'SELECT', 'TEXTAREA', 'BUTTON', 'A', 'SUMMARY'].includes(tag)) return;
    if (event.key === ' ') {
      event.preventDefault();
      setPlaying(!app.playing);
    } else if (event.key === '.') {
      stepOnce();
    } else if (event.key === 'Escape') {
      app.selectedNode = null;
      app.selectedMessage = null;
      refresh(true);
    }
  });
  const select = $('scenario');
  select.append(new Option('Free play (no script)', ''));
  for (const s of SCENARIOS) select.append(new Option(s.title, s.id));
  select.addEventListener('change', () => (select.value ? loadScenario(select.value) : newRun(cluster().options())));
  $('restart').addEventListener('click', () => (app.scenario ? loadScenario(app.scenario.id) : newRun(cluster().options())));
  document.querySelectorAll('[data-node-action]').forEach((button) => {
    button.addEventListener('click', () => app.selectedNode !== null && nodeAction(button.dataset.nodeAction, app.selectedNode));
  });
  $('link-toggle').addEventListener('click', () => {
    const peer = Number($('link-peer').value);
    if (app.selectedNode !== null && peer) toggleLink(app.selectedNode, peer);
  });
  $('link-set').addEventListener('click', () => {
    const peer = Number($('link-peer').value);
    const [min, max] = parseRange($('link-latency').value);
    const loss = Number($('link-loss').value) || 0;
    if (app.selectedNode === null || !peer) return;
    const link = { latencyMsMin: min, latencyMsMax: max, lossPerMille: loss };
    act([{ type: 'setLink', from: app.selectedNode, to: peer, ...link }, { type: 'setLink', from: peer, to: app.selectedNode, ...link }]);
  });
  $('heal').addEventListener('click', () => act([{ type: 'heal' }]));
  $('client').addEventListener('submit', (event) => {
    event.preventDefault();
    act([{ type: 'put', key: $('client-key').value, value: $('client-value').value }]);
  });
  $('client-get').addEventListener('submit', (event) => {
    event.preventDefault();
    try {
      get($('get-key').value, { node: $('get-node').value || null, mode: $('get-mode').value });
    } catch (error) {
      $('get-answer').textContent = `Cannot read: ${error.message}`;
    }
  });
  $('new-run').addEventListener('submit', (event) => {
    event.preventDefault();
    const [min, max] = parseRange($('opt-latency').value);
    try {
      newRun({
        nodes: Number($('opt-nodes').value),
        seed: Number($('opt-seed').value),
        latencyMsMin: min,
        latencyMsMax: max,
        lossPerMille: Number($('opt-loss').value) || 0,
        preVote: $('opt-prevote').checked,
        votersInitial: Number($('opt-voters').value) || 0,
        snapshotIntervalEntries: Number($('opt-snapshot').value) || 0,
      });
    } catch (error) {
      $('caption').textContent = `Cannot start that run: ${error.message}`;
    }
  });
  $('message-list').addEventListener('change', (event) => selectMessage(event.target.value ? Number(event.target.value) : null));
  $('message-drop').addEventListener('click', () => app.selectedMessage !== null && act([{ type: 'dropMessage', id: app.selectedMessage }]));
  $('message-duplicate').addEventListener('click', () => app.selectedMessage !== null && act([{ type: 'duplicateMessage', id: app.selectedMessage }]));
  $('copy-link').addEventListener('click', () => {
    updateUrl(true);
    navigator.clipboard?.writeText(location.href).catch(() => {});
  });
  $('export-png').addEventListener('click', exportPng);
  document.addEventListener('visibilitychange', () => {
    // A hidden tab does not play: nobody is watching, and the time would jump on return.
    if (document.hidden) {
      app.wasPlayingWhenHidden = app.playing;
      if (app.playing) setPlaying(false);
    } else if (app.wasPlayingWhenHidden) {
      setPlaying(true);
    }
  });
}

function parseRange(text) {
  const [a, b] = String(text).split('-').map((v) => Math.max(0, Math.floor(Number(v) || 0)));
  return [Math.min(a, b ?? a), Math.max(a, b ?? a)];
}

function exportPng() {
  const canvas = $('view');
  const link = document.createElement('a');
  link.download = `flotilla-${cluster().traceHash()}-${cluster().nowMs}ms.png`;
  link.href = canvas.toDataURL('image/png');
  link.click();
}

// ----- page API ----------------------------------------------------------------------------

function installPageApi(ready) {
  const state = () => ({
    ...publicState(readFrame(cluster(), app.tables), cluster().traceHash()),
    scenario: app.scenario?.id ?? null,
    playing: app.playing,
    speed: app.speed,
    endMs: app.timeline.endMs,
    /** Client reads, oldest first: [{id, node, key, mode, askedMs, answeredMs, readIndex, status, value, error, text}]. */
    reads: cluster().readResults(),
  });
  window.flotilla = {
    ready,
    /** {tick, timeMs, leader, committed, violations, traceHash, nodes: [{id, role, term, commit, ...}]} */
    state,
    crash: (id) => act([{ type: 'crash', node: id }]),
    restart: (id) => act([{ type: 'restart', node: id }]),
    pauseNode: (id) => act([{ type: 'pause', node: id }]),
    resumeNode: (id) => act([{ type: 'resume', node: id }]),
    timeout: (id) => act([{ type: 'campaign', node: id }]),
    isolate: (id) => act([{ type: 'partition', side: [id] }]),
    snapshot: (id) => act([{ type: 'snapshot', node: id }]),
    /** Crashes `id` and wipes its disk: unsafe on purpose, to show the checker at work. */
    wipeDisk: (id) => act([{ type: 'wipeDisk', node: id }]),
    addVoter: (id) => act([{ type: 'addVoter', node: id }]),
    addLearner: (id) => act([{ type: 'addLearner', node: id }]),
    removeServer: (id) => act([{ type: 'removeServer', node: id }]),
    /** Asks the leader to hand over to `id` (or to the best other voter without one). */
    transferLeadership: (id) => act([{ type: 'transferLeadership', node: id ?? null }]),
    /** Cuts every link between the two groups (groupB defaults to everyone else). */
    partition,
    heal: () => act([{ type: 'heal' }]),
    propose: (value) => act([{ type: 'propose', data: String(value) }]),
    put: (key, value) => act([{ type: 'put', key: String(key), value: String(value) }]),
    /** Reads `key` through `node` (default: the leader) with `mode`; returns the read, maybe still pending. */
    get,
    /** Client read `id` as `get` returned it, up to date (or undefined). */
    readResult: (id) => cluster().readResult(id),
    cutLink: (a, b) => act([{ type: 'cutLink', from: a, to: b }, { type: 'cutLink', from: b, to: a }]),
    dropMessage: (id) => act([{ type: 'dropMessage', id }]),
    duplicateMessage: (id) => act([{ type: 'duplicateMessage', id }]),
    /** Moves to simulated time `timeMs` (milliseconds, not ticks: one tick is `state().tickMs` ms). */
    seek,
    /** Runs `ms` simulated milliseconds forward, paused or not. */
    advance: (ms) => seek(cluster().nowMs + ms),
    step: stepOnce,
    play: () => setPlaying(true),
    stop: () => setPlaying(false),
    setSpeed,
    traceHash: () => cluster().traceHash(),
    /** Node `id`'s log tail: {commit, last, entries: [{index, term, committed, text}]}. */
    log: (id, limit = 64) => cluster().nodeLog(id, limit),
    /** Node `id`'s key-value state as [{key, value}]. */
    kv: (id) => cluster().kv(id, 100),
    /** The fragment that reproduces this run at this moment. */
    link: () => {
      updateUrl(true);
      return location.href;
    },
    scenarios: () => SCENARIOS.map((s) => ({ id: s.id, title: s.title, endMs: s.endMs })),
    loadScenario: (id, options) => loadScenario(id, options ?? { play: false }),
    /** The scenario's own check of its end state: null when it holds, else what is wrong. */
    checkScenario: () => (app.scenario ? app.scenario.check(state()) : 'no scenario loaded'),
    newRun: (options) => newRun(options, { play: false }),
    pngDataUrl: () => $('view').toDataURL('image/png'),
  };
}

// ----- start -------------------------------------------------------------------------------

async function main() {
  const ready = loadWasm();
  installPageApi(ready.then(() => true));
  app.tables = await ready;
  app.ctx = hidpiCanvas($('view'), (width, height) => {
    app.width = width;
    app.height = height;
    if (app.frame) {
      relayout();
      app.dirty = true;
    }
  });
  setSpeed(0.1);
  wireControls();
  wirePointer();
  const shared = decodeFragment(location.hash);
  let started = false;
  if (shared) {
    try {
      const scenario = shared.scenario ? findScenario(shared.scenario) ?? null : null;
      startRun(app.tables.SimCluster.fromRun(shared.run), { scenario, atMs: shared.atMs, play: false });
      started = true;
    } catch (error) {
      $('caption').textContent = `This link does not describe a run (${error.message}); starting the first scenario.`;
    }
  }
  if (!started) loadScenario('first-election');
  document.body.dataset.ready = 'true';
  requestAnimationFrame(frameLoop);
}

main();

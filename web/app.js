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
import { KIND_LEGEND, computeLayout, drawFrame, drawMessageGlyph, hitMessage, hitNode } from './render.js';
import { hidpiCanvas } from './canvas.js';
import { PLAYGROUND_OPTIONS, SCENARIOS, captionAt, captionedSteps, findScenario, readingMs, scheduleScenario } from './scenarios.js';
import { decodeFragment, encodeFragment } from './share.js';
import { describeEvents } from './eventlog.js';
import * as panels from './panels.js';
import { mountHistoryPanel } from './history.js';
import { installLive } from './live/page.js';

const SPEED_MIN = 0.01;
const SPEED_MAX = 1000;
/** Most wall-clock time one frame spends simulating; beyond it playback slows instead of the page. */
const FRAME_BUDGET_MS = 20;
/** Entries per log lane fetched each frame (more than any lane can show). */
const LOG_TAIL = 80;
const PANEL_REFRESH_MS = 250;
const URL_REFRESH_MS = 500;
/** Longest wall-clock time the stretch between two captions takes: quieter stretches fast-forward. */
const SEGMENT_WALL_MS_MAX = 2000;
/** A forward seek runs this many simulated ms between event drains (the wasm keeps 4096 rows). */
const SEEK_CHUNK_MS = 500;
/** The screen-reader announcer speaks at most once per this many wall-clock ms. */
const ANNOUNCE_EVERY_MS = 2500;
/** Event history kept per run (the oldest go first beyond it; a long fast run makes many). */
const HISTORY_LINES_MAX = 100_000;
/** Event log rows kept on the page. */
const EVENT_ROWS_SHOWN = 200;

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
  /** 'light' or 'dark': the system's preference unless the toggle chose. */
  theme: 'light',
  /** The node whose action menu is open, else null. */
  menuNode: null,
  /** Id of the latest client get asked from the page, whose answer shows next to the control. */
  lastReadId: null,
  /** Every event of this branch of the run, oldest first: {timeMs, text, tone, candidateTerm?}. */
  history: [],
  /** The history holds every event up to and including this simulated time. */
  historyMs: -1,
  /** The cluster's time at the last drain of its events. */
  drainedMs: -1,
  /** Narration of a scenario: 'step' (wait for Next at each caption), 'auto' (hold each caption
   * for a reading time, then go on) or 'off' (play straight through). */
  narration: 'step',
  /** Auto narration: the wall-clock time (performance.now) until which the caption is held. */
  holdUntil: null,
  /** The stretch being played between two captions: {from, to} in simulated ms. */
  segment: null,
  /** The leader's joint configuration {old, new} while one is in force, else null (drawn). */
  joint: null,
  /** Events not yet announced to screen readers, and when the announcer last spoke. */
  unannounced: [],
  announcedAt: 0,
};

const cluster = () => app.timeline.cluster;

/** The history panel (web/history.js) and the checker behind it, which re-checks only the keys
 * whose operations changed; `revision` is the cluster's history revision last shown. */
const ops = { panel: null, checker: null, cluster: null, revision: -1, data: null };

function refreshHistory() {
  const c = cluster();
  if (c !== ops.cluster || c.historyRevision !== ops.revision) {
    ops.cluster = c;
    ops.revision = c.historyRevision;
    ops.data = ops.checker.check(c);
  } else if (ops.data.now === c.nowMs) {
    return;
  }
  // Bars still in flight grow to now even when nothing new happened.
  ops.data.now = c.nowMs;
  ops.panel.update(ops.data);
}

// ----- runs --------------------------------------------------------------------------------

function startRun(newCluster, { scenario = null, atMs = 0, play = false } = {}) {
  app.timeline?.dispose();
  app.timeline = new Timeline(newCluster);
  app.scenario = scenario;
  app.scenarioDone = false;
  app.selectedNode = null;
  app.selectedMessage = null;
  app.lastReadId = null;
  app.history = [];
  app.historyMs = -1;
  app.drainedMs = -1;
  app.holdUntil = null;
  app.segment = null;
  app.unannounced = [];
  recordEvents(false);
  panels.clearEvents();
  panels.showReadAnswer(null);
  if (atMs > 0) seekTo(atMs);
  app.displayMs = cluster().nowMs;
  $('scenario').value = scenario?.id ?? '';
  syncRunForm();
  setPlaying(play);
  refresh(true);
}

function loadScenario(id, { play = app.narration === 'auto' && !app.reducedMotion } = {}) {
  const scenario = findScenario(id);
  if (!scenario) throw new RangeError(`no scenario ${id}`);
  const fresh = new app.tables.SimCluster(scenario.options);
  scheduleScenario(fresh, scenario);
  startRun(fresh, { scenario, play });
  if (scenario.panel) showTab(scenario.panel);
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
  $('opt-drift').checked = options.driftingClocks;
  $('opt-voters').value = options.votersInitial;
  $('opt-snapshot').value = options.snapshotIntervalEntries;
}

// ----- time --------------------------------------------------------------------------------

function setPlaying(playing) {
  app.playing = playing;
  $('play').textContent = playing ? 'Pause' : 'Play';
  $('play').setAttribute('aria-pressed', String(playing));
  app.lastFrameAt = null;
  app.holdUntil = null;
  app.segment = null;
  if (!playing) app.displayMs = cluster().nowMs;
  showNarration();
  updateUrl(true);
}

function speedText(speed) {
  return speed < 1 ? speed.toPrecision(2).replace(/\.?0+$/, '') : String(Math.round(speed));
}

function setSpeed(speed) {
  if (!Number.isFinite(speed)) return;
  app.speed = Math.min(SPEED_MAX, Math.max(SPEED_MIN, speed));
  $('speed').value = String(Math.log10(app.speed));
  $('speed-out').textContent = `${speedText(app.speed)}×`;
  $('speed').setAttribute('aria-valuetext', `${speedText(app.speed)} times real time`);
  if (app.timeline) updateUrl(true);
}

// ----- narration: a scenario waits at each caption ----------------------------------------

/** The next captioned time after `timeMs` in the scenario, else its end. */
function nextStop(timeMs) {
  const step = captionedSteps(app.scenario).find((s) => s.atMs > timeMs);
  return step ? step.atMs : app.scenario.endMs;
}

/** Whether the run waits at a caption for the reader (a scenario, narrated, not yet done). */
function narrated() {
  return app.scenario !== null && !app.scenarioDone && app.narration !== 'off';
}

/** Next (button, Space, →): plays to the next caption; while playing, jumps straight to it. */
function nextStep() {
  if (!app.scenario || app.scenarioDone) {
    setPlaying(!app.playing);
    return;
  }
  if (app.playing && app.holdUntil === null) {
    seek(nextStop(cluster().nowMs));
    arriveAtStop(performance.now());
    return;
  }
  setPlaying(true);
}

/** Back (button, ←): to the caption before the one showing, paused. */
function previousStep() {
  if (!app.scenario) return;
  const now = cluster().nowMs;
  const current = captionAt(app.scenario, now);
  const steps = captionedSteps(app.scenario);
  let target = 0;
  // Mid-way to the next caption: back to the start of this one; at a caption: the one before.
  if (current) target = current.atMs < now ? current.atMs : steps[Math.max(0, current.index - 1)].atMs;
  setPlaying(false);
  seek(target);
}

function setNarration(mode) {
  if (!['step', 'auto', 'off'].includes(mode)) throw new RangeError(`no narration mode ${mode}`);
  app.narration = mode;
  app.holdUntil = null;
  showNarration();
}

/** Reached a caption (or the end) while playing: wait for Next, hold it, or stop at the end. */
function arriveAtStop(now) {
  app.segment = null;
  if (cluster().nowMs >= app.scenario.endMs) {
    app.scenarioDone = true;
    setPlaying(false);
  } else if (app.narration === 'step') {
    setPlaying(false);
  } else if (app.narration === 'auto') {
    const caption = captionAt(app.scenario, cluster().nowMs);
    app.holdUntil = now + readingMs(caption?.caption ?? '');
    showNarration();
  }
}

function showNarration() {
  const scenario = app.scenario;
  const bar = $('narration');
  if (!bar) return;
  const steps = scenario ? captionedSteps(scenario) : [];
  const current = scenario && app.timeline ? captionAt(scenario, cluster().nowMs) : null;
  const set = (element, property, value) => {
    if (element[property] !== value) element[property] = value;
  };
  set($('back'), 'disabled', !scenario || cluster().nowMs === 0);
  set($('next'), 'disabled', !scenario || app.scenarioDone);
  set($('auto'), 'disabled', !scenario);
  set($('next'), 'textContent', app.playing && app.holdUntil === null && narrated() ? 'Skip ahead' : 'Next');
  $('auto').setAttribute('aria-pressed', String(app.narration === 'auto'));
  set($('step-count'), 'textContent', scenario ? `Step ${current ? current.index + 1 : 0} of ${steps.length}${app.scenarioDone ? ' · end' : ''}` : '');
  bar.dataset.waiting = String(Boolean(scenario) && !app.playing && !app.scenarioDone);
}

/**
 * Moves the timeline to `timeMs`, keeping the event history whole: times already seen replay
 * silently; new ground is run in chunks, each chunk's events recorded.
 */
function seekTo(timeMs) {
  const target = Math.max(0, Math.floor(timeMs));
  if (target <= app.historyMs) {
    recordEvents(app.timeline.seek(target));
    return;
  }
  if (cluster().nowMs !== app.historyMs) recordEvents(app.timeline.seek(app.historyMs));
  while (cluster().nowMs < target) {
    app.timeline.advanceTo(Math.min(target, cluster().nowMs + SEEK_CHUNK_MS));
    recordEvents(false);
  }
}

/** Moves the view to `timeMs` (simulated milliseconds). */
function seek(timeMs) {
  seekTo(timeMs);
  app.displayMs = cluster().nowMs;
  app.scenarioDone = app.scenario ? cluster().nowMs >= app.scenario.endMs : false;
  app.holdUntil = null;
  app.segment = null;
  refresh(true);
  updateUrl(true);
}

/** Runs forward to `target` within the frame's budget; returns whether it got there. */
function simulateTo(target, speed) {
  const started = performance.now();
  const chunk = Math.max(1, Math.ceil(speed * 4));
  while (cluster().nowMs < target) {
    app.timeline.advanceTo(Math.min(target, cluster().nowMs + chunk));
    recordEvents(false);
    if (performance.now() - started > FRAME_BUDGET_MS) return false;
  }
  return true;
}

function stepOnce() {
  setPlaying(false);
  cluster().stepEvent();
  app.timeline.endMs = Math.max(app.timeline.endMs, cluster().nowMs);
  recordEvents(false, true);
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
  const fork = app.timeline.lastFork;
  if (fork) {
    // The recorded future is gone: its events too, and the reader is told.
    app.history = app.history.filter((line) => line.timeMs <= fork.atMs);
    app.historyMs = fork.atMs;
    showNotice(
      `You acted at ${fork.atMs} ms, in the past: the run recorded after it (to ${fork.droppedToMs} ms) was dropped, and this is a new branch from here.`,
    );
  }
  recordEvents(false);
  app.displayMs = cluster().nowMs;
  app.scenarioDone = true; // the user went off script: do not stop at the scenario's end
  app.holdUntil = null;
  showNarration();
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
  if (app.playing && app.holdUntil !== null) {
    // Auto narration holds the caption for its reading time, then plays on.
    app.lastFrameAt = now;
    if (now >= app.holdUntil) {
      app.holdUntil = null;
      showNarration();
    }
  } else if (app.playing) {
    const dt = app.lastFrameAt === null ? 0 : Math.min(100, now - app.lastFrameAt);
    app.lastFrameAt = now;
    let stop = Infinity;
    let speed = app.speed;
    if (narrated()) {
      stop = nextStop(cluster().nowMs);
      if (!app.segment || app.segment.to !== stop) app.segment = { from: cluster().nowMs, to: stop };
      // Fast-forward a long quiet stretch so it takes at most SEGMENT_WALL_MS_MAX.
      speed = Math.max(app.speed, (app.segment.to - app.segment.from) / SEGMENT_WALL_MS_MAX);
    } else if (app.scenario && !app.scenarioDone) {
      stop = app.scenario.endMs;
    }
    app.effectiveSpeed = speed;
    let next = app.displayMs + dt * speed;
    if (next >= stop) next = stop;
    const reached = simulateTo(Math.floor(next), speed);
    app.displayMs = reached ? next : cluster().nowMs;
    if (cluster().nowMs >= stop) arriveAtStop(now);
    app.dirty = true;
  }
  if (app.dirty) {
    app.dirty = false;
    refresh(false);
  }
}

/**
 * Drains the cluster's events into the history. `replayed`: the cluster was restored from a
 * checkpoint, so events up to `historyMs` are ones already recorded. `partial`: a single step,
 * after which other events at the same millisecond may still come.
 */
function recordEvents(replayed, partial = false) {
  const rows = cluster().drainEvents();
  const now = cluster().nowMs;
  // The cluster ran from at or before the history's edge: what it reports up to the edge is
  // already recorded, and anything recorded past the edge (a single step's) is reported again.
  const overlaps = replayed || app.drainedMs <= app.historyMs;
  app.drainedMs = now;
  if (rows.length > 0) {
    if (overlaps && app.history.length && app.history[app.history.length - 1].timeMs > app.historyMs) {
      app.history = app.history.filter((line) => line.timeMs <= app.historyMs);
    }
    const violations = cluster().violationCount ? cluster().violations() : [];
    // In time order (the merged commit line comes last from describeEvents), so the history is.
    let lines = describeEvents(rows, violations, (id) => cluster().readResult(id)).sort((a, b) => a.timeMs - b.timeMs);
    if (overlaps) lines = lines.filter((line) => line.timeMs > app.historyMs);
    for (const line of lines) app.history.push(line);
    if (app.history.length > HISTORY_LINES_MAX) app.history = app.history.slice(-Math.floor(HISTORY_LINES_MAX * 0.9));
    app.unannounced.push(...lines);
  }
  app.historyMs = Math.max(app.historyMs, partial ? now - 1 : now);
}

/** Speaks new events to screen readers, at most once per ANNOUNCE_EVERY_MS: the most important
 * of them, and how many others came with it. The event log itself is not a live region. */
function announce(now) {
  if (app.unannounced.length === 0 || now - app.announcedAt < ANNOUNCE_EVERY_MS) return;
  const lines = app.unannounced;
  app.unannounced = [];
  app.announcedAt = now;
  const rank = (line) => (line.tone === 'bad' ? 3 : line.tone === 'leader' ? 2 : line.tone.startsWith('read') ? 1 : 0);
  const top = lines.reduce((best, line) => (rank(line) >= rank(best) ? line : best));
  const others = lines.length - 1;
  $('announcer').textContent = `${top.text}${others > 0 ? ` (and ${others} more event${others === 1 ? '' : 's'})` : ''}`;
}

/** Elections started up to now: the terms in which some server became a candidate. */
function electionsUpTo(timeMs) {
  const terms = new Set();
  for (const line of app.history) if (line.timeMs <= timeMs && line.candidateTerm) terms.add(line.candidateTerm);
  return terms.size;
}

/** A message that stays until dismissed (a bad link, a dropped future). */
function showNotice(text) {
  $('notice-text').textContent = text;
  $('notice').hidden = false;
}

/** Reads the frame, draws it, and (at most a few times a second, or when forced) the panels. */
function refresh(force) {
  app.frame = readFrame(cluster(), app.tables);
  if (!app.layout || app.layout.nodes.length !== app.frame.nodes.length) relayout();
  const ids = app.layout.compact ? [app.frame.leader, app.selectedNode].filter(Boolean) : null;
  app.logs = readLogs(cluster(), LOG_TAIL, ids);
  // The configuration is an object from the wasm: read it at the panels' pace, not every frame.
  if (force || performance.now() - app.panelsAt > PANEL_REFRESH_MS) app.joint = jointOf(cluster());
  drawFrame(app.ctx, app.layout, {
    frame: app.frame,
    logs: app.logs,
    timeMs: app.reducedMotion ? app.frame.timeMs : app.displayMs,
    selectedNode: app.selectedNode,
    selectedMessage: app.selectedMessage,
    drag: app.drag?.moved ? app.drag : null,
    theme: app.theme,
    joint: app.joint,
  });
  panels.syncNodeButtons($('node-buttons'), app.layout, app.frame, selectNode);
  showTime();
  panels.showEvents(app.history, cluster().nowMs, EVENT_ROWS_SHOWN);
  announce(performance.now());
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
  const fast = app.playing && app.holdUntil === null && narrated() && app.effectiveSpeed > app.speed * 1.01;
  $('time-out').textContent =
    `${(c.nowMs / 1000).toFixed(3)} s · tick ${app.frame.tick}${app.timeline.inPast ? ' · replay' : ''}${fast ? ` · fast-forward ${speedText(app.effectiveSpeed)}×` : ''}`;
  const caption = app.scenario ? captionAt(app.scenario, c.nowMs) : null;
  const text = app.scenario
    ? `${caption?.caption ?? ''}${app.scenarioDone && c.nowMs >= app.scenario.endMs ? ' — End of the scenario: press Play to go on, or act on the cluster.' : ''}`
    : 'Free play: click a server for its controls, drag between two servers to cut a link.';
  if ($('caption').textContent !== text) $('caption').textContent = text;
  panels.showSteps(app.scenario, caption, (atMs) => {
    setPlaying(false);
    seek(atMs);
  });
  showNarration();
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

/** The leader's joint configuration {old, new} while one is in force (thesis §4.3), else null. */
function jointOf(c) {
  const leader = c.leader();
  const node = leader ? c.node(leader) : null;
  return node?.votersOutgoing?.length ? { old: [...node.votersOutgoing], new: [...node.voters] } : null;
}

const plural = (count, noun) => `${count} ${noun}${count === 1 ? '' : 's'}`;

function refreshPanels() {
  const c = cluster();
  panels.showChecker(c.violationCount ? c.violations() : []);
  $('trace-hash').textContent = c.traceHash();
  panels.syncReadNodes(c.nodeCount);
  // Follows the timeline: answered once the run gets there, gone when scrubbed back before it.
  if (app.lastReadId !== null) panels.showReadAnswer(c.readResult(app.lastReadId) ?? null);
  const st = c.stats();
  $('stats').textContent =
    `${st.messagesDelivered} messages delivered, ${st.messagesDropped} lost · ${plural(electionsUpTo(c.nowMs), 'election')} · ` +
    `${st.committed} entries committed · ${st.snapshotsTaken} snapshots taken, ${st.snapshotsInstalled} sent · ` +
    `${st.membershipChanges} membership changes`;
  const nodeTab = document.querySelector('[data-tab="node-panel"]');
  if (nodeTab.disabled !== (app.selectedNode === null)) nodeTab.disabled = app.selectedNode === null;
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
  refreshHistory();
}

function relayout() {
  app.layout = computeLayout(app.frame.nodes.length, app.width, app.height);
}

function updateUrl(force) {
  const now = performance.now();
  if (!force && now - app.urlAt < URL_REFRESH_MS) return;
  app.urlAt = now;
  const fragment = encodeFragment({ run: cluster().run(), atMs: cluster().nowMs, scenario: app.scenario?.id, speed: app.speed });
  if (location.hash !== fragment) history.replaceState(null, '', fragment);
  $('share-link').href = fragment;
}

// ----- selection and pointer ---------------------------------------------------------------

/** A click (or Enter) on a server: select it (its details fill the panel) and open its menu. */
function selectNode(id) {
  app.selectedNode = id;
  refresh(true);
  openMenu(id);
}

// ----- the menu at a server ------------------------------------------------------------------

const nodeButton = (id) => $('node-buttons').querySelector(`[data-node="${id}"]`);
const menuItems = () => [...$('node-menu').querySelectorAll('[role="menuitem"]')].filter((item) => !item.hidden);

/** Opens server `id`'s action menu beside it, offering what applies now, focus on the first. */
function openMenu(id) {
  const menu = $('node-menu');
  const node = app.frame.nodes[id - 1];
  const place = app.layout.nodes[id - 1];
  if (!node || !place) return;
  app.menuNode = id;
  const down = node.liveness === 'down';
  const paused = node.liveness === 'paused';
  const leaderView = app.frame.leader !== null ? cluster().node(app.frame.leader) : null;
  const config = leaderView ? { voters: [...leaderView.voters], learners: [...leaderView.learners] } : null;
  const show = {
    crash: !down,
    restart: down,
    pause: !down && !paused,
    resume: paused,
    campaign: !down && !paused && node.member === 'voter' && node.role !== 'leader',
    isolate: true,
    transferLeadership: !down && app.frame.leader !== null && app.frame.leader !== id && node.member === 'voter',
    snapshot: !down,
    // Membership, as the leader's configuration has it.
    addVoter: app.frame.leader !== null && !config?.voters.includes(id),
    addLearner: app.frame.leader !== null && !config?.voters.includes(id) && !config?.learners.includes(id),
    removeServer: app.frame.leader !== null && app.frame.leader !== id && Boolean(config?.voters.includes(id) || config?.learners.includes(id)),
    details: true,
  };
  for (const item of menu.querySelectorAll('[data-menu-action]')) item.hidden = !show[item.dataset.menuAction];
  $('node-menu-title').textContent = `Node ${id}: ${panels.nodeLabel(node).replace(/^node \d+, /, '')}`;
  menu.hidden = false;
  // Beside the server, inside the picture.
  const width = menu.offsetWidth;
  const height = menu.offsetHeight;
  const left = place.x + place.r + 8 + width <= app.width ? place.x + place.r + 8 : Math.max(0, place.x - place.r - 8 - width);
  const top = Math.min(Math.max(0, place.y - place.r), Math.max(0, app.height - height));
  menu.style.left = `${Math.round(left)}px`;
  menu.style.top = `${Math.round(top)}px`;
  const button = nodeButton(id);
  button?.setAttribute('aria-expanded', 'true');
  menuItems()[0]?.focus();
}

/** Closes the menu; `returnFocus`: back to its server's button. */
function closeMenu(returnFocus) {
  if (app.menuNode === null) return;
  const id = app.menuNode;
  app.menuNode = null;
  $('node-menu').hidden = true;
  const button = nodeButton(id);
  button?.setAttribute('aria-expanded', 'false');
  if (returnFocus) button?.focus();
}

/** On a phone the side panels are tabs: shows panel `id` (its button pressed), hides the rest. */
function showTab(id) {
  for (const button of document.querySelectorAll('[data-tab]')) {
    const shown = button.dataset.tab === id;
    button.setAttribute('aria-pressed', String(shown));
    $(button.dataset.tab).classList.toggle('tab-shown', shown);
  }
}

function wireTabs() {
  for (const button of document.querySelectorAll('[data-tab]')) button.addEventListener('click', () => showTab(button.dataset.tab));
}

function wireMenu() {
  const menu = $('node-menu');
  menu.addEventListener('click', (event) => {
    const item = event.target.closest('[data-menu-action]');
    if (!item || app.menuNode === null) return;
    const id = app.menuNode;
    const action = item.dataset.menuAction;
    if (action === 'details') {
      closeMenu(false);
      showTab('node-panel');
      $('node-heading').scrollIntoView({ block: 'nearest' });
      $('node-heading').focus();
      return;
    }
    closeMenu(true);
    nodeAction(action, id);
  });
  menu.addEventListener('keydown', (event) => {
    const items = menuItems();
    const at = items.indexOf(document.activeElement);
    const move = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (move) {
      event.preventDefault();
      items[(at + move + items.length) % items.length].focus();
    } else if (event.key === 'Home' || event.key === 'End') {
      event.preventDefault();
      items[event.key === 'Home' ? 0 : items.length - 1].focus();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      closeMenu(true);
    } else if (event.key === 'Tab') {
      closeMenu(false);
    }
  });
  document.addEventListener('pointerdown', (event) => {
    if (app.menuNode !== null && !menu.contains(event.target) && !event.target.closest?.('.node-hit')) closeMenu(false);
  });
  $('node-buttons').addEventListener('contextmenu', (event) => {
    const id = Number(event.target.dataset?.node);
    if (!id) return;
    event.preventDefault();
    app.selectedNode = id;
    refresh(true);
    openMenu(id);
  });
}

// ----- theme and legend ----------------------------------------------------------------------

const prefersDark = matchMedia('(prefers-color-scheme: dark)');

function applyTheme() {
  const chosen = document.documentElement.dataset.theme;
  app.theme = chosen === 'dark' || chosen === 'light' ? chosen : prefersDark.matches ? 'dark' : 'light';
  $('theme').setAttribute('aria-pressed', String(app.theme === 'dark'));
  drawLegend();
  ops.panel?.setTheme(app.theme);
  app.dirty = true;
}

function wireTheme() {
  let saved = null;
  try {
    saved = localStorage.getItem('flotilla-theme');
  } catch {
    saved = null;
  }
  if (saved === 'dark' || saved === 'light') document.documentElement.dataset.theme = saved;
  $('theme').addEventListener('click', () => {
    const next = app.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem('flotilla-theme', next);
    } catch {
      // Private browsing: the choice lasts for this page only.
    }
    applyTheme();
  });
  prefersDark.addEventListener('change', applyTheme);
  applyTheme();
}

/** The legend's message kinds, each drawn by the renderer's own glyph function. */
function drawLegend() {
  const list = $('legend-kinds');
  const ratio = window.devicePixelRatio || 1;
  const item = (m, text) => {
    const li = document.createElement('li');
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(22 * ratio);
    canvas.height = Math.round(22 * ratio);
    canvas.setAttribute('aria-hidden', 'true');
    const ctx = canvas.getContext('2d');
    ctx.scale(ratio, ratio);
    drawMessageGlyph(ctx, m, 11, 11, { theme: app.theme });
    li.append(canvas, document.createTextNode(text));
    return li;
  };
  list.replaceChildren(
    ...KIND_LEGEND.map(([kindName, text]) => item({ kindName, entries: kindName === 'AppendEntries' ? 2 : 0, flag: -1 }, text)),
    item({ kindName: 'RequestVoteResponse', entries: 0, flag: 1 }, 'a reply: hollow, in its request’s shape; green centre: granted or accepted'),
    item({ kindName: 'AppendEntriesResponse', entries: 0, flag: 0 }, 'red centre: refused or rejected'),
  );
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
  $('next').addEventListener('click', nextStep);
  $('back').addEventListener('click', previousStep);
  $('auto').addEventListener('click', () => {
    setNarration(app.narration === 'auto' ? 'step' : 'auto');
    if (app.narration === 'auto' && app.scenario && !app.scenarioDone && !app.playing) setPlaying(true);
  });
  $('notice-close').addEventListener('click', () => {
    $('notice').hidden = true;
  });
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
    if (event.key === ' ' || event.key === 'ArrowRight') {
      event.preventDefault();
      if (app.scenario && !app.scenarioDone) nextStep();
      else if (event.key === ' ') setPlaying(!app.playing);
    } else if (event.key === 'ArrowLeft') {
      if (app.scenario) {
        event.preventDefault();
        previousStep();
      }
    } else if (event.key === '.') {
      stepOnce();
    } else if (event.key === 'Escape') {
      closeMenu(true);
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
        driftingClocks: $('opt-drift').checked,
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

/** A short picture of the state, for a failed caption check. */
function stateSummary(s) {
  const nodes = s.nodes.map((n) => `${n.id}:${n.role}/t${n.term}/c${n.commit}/l${n.last}/${n.member}`).join(' ');
  const wire = s.wire.map((m) => `${m.kind}${m.entries ? `[${m.entries}]` : ''} ${m.from}→${m.to} t${m.term}`).join(', ');
  return `at ${s.timeMs} ms, leader ${s.leader}, config ${JSON.stringify(s.config)}; ${nodes}; wire: ${wire || 'empty'}`;
}

/**
 * Plays each scenario (or only `id`) to each captioned step and evaluates the step's `truth`
 * predicate on the state at that moment. Returns the steps whose predicate is missing or fails.
 */
function checkCaptions(id = null, state) {
  const failures = [];
  for (const scenario of SCENARIOS.filter((s) => id === null || s.id === id)) {
    loadScenario(scenario.id, { play: false });
    for (const step of captionedSteps(scenario)) {
      seek(step.atMs);
      const s = state();
      let verdict;
      try {
        verdict = step.truth ? step.truth(s) : 'no truth predicate';
      } catch (error) {
        verdict = `the predicate threw: ${error.message}`;
      }
      if (verdict !== true) {
        failures.push({ scenario: scenario.id, atMs: step.atMs, caption: step.caption, problem: `${verdict === false ? 'false' : verdict}; ${stateSummary(s)}` });
      }
    }
  }
  return failures;
}

function installPageApi(ready) {
  const state = () => ({
    ...publicState(readFrame(cluster(), app.tables), cluster().traceHash()),
    scenario: app.scenario?.id ?? null,
    playing: app.playing,
    speed: app.speed,
    endMs: app.timeline.endMs,
    /** Client reads, oldest first: [{id, node, key, mode, askedMs, answeredMs, readIndex, status, value, error, text}]. */
    reads: cluster().readResults(),
    /** The leader's configuration in effect (null without a leader): {voters, learners}. */
    config: configOf(cluster().leader()),
    elections: electionsUpTo(cluster().nowMs),
    narration: { mode: app.narration, holdMs: app.holdUntil === null ? 0 : Math.max(0, Math.round(app.holdUntil - performance.now())) },
  });
  const configOf = (id) => {
    if (!id) return null;
    const node = cluster().node(id);
    return { voters: [...node.voters], learners: [...node.learners], votersOutgoing: [...(node.votersOutgoing ?? [])] };
  };
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
    /** Narration of scenarios: 'step' (wait at each caption for Next), 'auto' or 'off'. */
    setNarration,
    next: nextStep,
    back: previousStep,
    /** Every captioned step of scenario `id` (default: all) whose truth predicate fails at its
     * moment: [{scenario, atMs, caption, problem}]. Leaves the scenario loaded, paused. */
    checkCaptions: (id = null) => checkCaptions(id, state),
    /** The event log's lines shown now: [{timeMs, text}]. */
    events: () => app.history.filter((line) => line.timeMs <= cluster().nowMs).map(({ timeMs, text }) => ({ timeMs, text })),
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
    scenarios: () => SCENARIOS.map((s) => ({ id: s.id, title: s.title, endMs: s.endMs, unsafe: Boolean(s.unsafe) })),
    loadScenario: (id, options) => loadScenario(id, options ?? { play: false }),
    /** The scenario's own check of its end state: null when it holds, else what is wrong. */
    checkScenario: () => (app.scenario ? app.scenario.check(state()) : 'no scenario loaded'),
    newRun: (options) => newRun(options, { play: false }),
    pngDataUrl: () => $('view').toDataURL('image/png'),
    /** The history panel's data up to now: {report: {verdict, summary, operations, violations},
     * bands, nodes, now}; and how many keys its last check searched. */
    history: () => {
      refreshHistory();
      return ops.data;
    },
    historyKeysChecked: () => ops.checker.keysChecked,
  };
}

// ----- start -------------------------------------------------------------------------------

async function main() {
  const ready = loadWasm();
  installPageApi(ready.then(() => true));
  installLive(window.flotilla, { theme: () => app.theme });
  app.tables = await ready;
  ops.checker = new app.tables.HistoryChecker();
  ops.panel = mountHistoryPanel($('history-view'), {
    onSeek: (timeMs) => {
      setPlaying(false);
      seek(timeMs);
    },
  });
  app.ctx = hidpiCanvas($('view'), (width, height) => {
    app.width = width;
    app.height = height;
    if (app.frame) {
      relayout();
      app.dirty = true;
    }
  });
  setSpeed(0.1);
  wireTheme();
  wireControls();
  wireMenu();
  wireTabs();
  wirePointer();
  const shared = decodeFragment(location.hash);
  let started = false;
  if (shared) {
    if (shared.speed !== null) setSpeed(shared.speed);
    try {
      const scenario = shared.scenario ? findScenario(shared.scenario) ?? null : null;
      startRun(app.tables.SimCluster.fromRun(shared.run), { scenario, atMs: shared.atMs, play: false });
      started = true;
    } catch (error) {
      showNotice(`This link does not describe a run (${error.message}). Showing the first scenario instead.`);
    }
  } else if (location.hash.length > 1 && !location.hash.startsWith('#join=')) {
    showNotice('This link holds no run (it needs #run=…). Showing the first scenario instead.');
  }
  if (!started) loadScenario('first-election', { play: false });
  document.body.dataset.ready = 'true';
  requestAnimationFrame(frameLoop);
}

main();

// The widget's engine, loaded only when a <flotilla-raft> comes near the viewport: one run of the
// simulator (the playground's Timeline over the wasm SimCluster), played at a speed with the
// scenario's captions, drawn by the playground's renderer. It owns no DOM beyond the canvas it is
// handed; the element (flotilla-raft.js) does the rest and turns `emit` calls into DOM events.
//
// Determinism, as in the playground: the simulation only moves through whole simulated
// milliseconds; wall-clock time decides how far to go per frame, never what happens.

import { loadChecker, loadWasm } from '../wasm.js';
import { Timeline } from '../timeline.js';
import { publicState, readFrame, readLogs } from '../model.js';
import { computeLayout, drawFrame } from '../render.js';
import { hidpiCanvas } from '../canvas.js';
import { PLAYGROUND_OPTIONS, captionAt, captionedSteps, loadScenario, readingMs, scheduleScenario } from '../scenarios/common.js';
import { decodeFragment, encodeFragment } from '../share.js';
import { describeEvents } from '../eventlog.js';

/** Entries per log lane read each frame (more than a lane can show). */
const LOG_TAIL = 80;
/** Most wall-clock time one frame spends simulating; beyond it playback slows, not the page. */
const FRAME_BUDGET_MS = 12;
/** At 1× or slower, the stretch between two captions takes at most this long: quiet stretches
 * fast-forward (faster speeds shrink it in proportion). */
const SEGMENT_WALL_MS_MAX = 2000;
/** A forward seek runs this many simulated ms between event drains (the wasm keeps 4096 rows). */
const SEEK_CHUNK_MS = 500;
/** A run without a scenario (or with no `at` in its link) plays this long past its last input. */
const FREE_RUN_TAIL_MS = 1500;
/** ...and at least this long in all. */
const FREE_RUN_MIN_MS = 3000;

/** The widget's wasm package (web/pkg-widget: no browser peer, built for size), once per page. */
const loadWidgetWasm = (wasmUrl) => loadWasm(wasmUrl, 'widget');
export { loadWidgetWasm as loadWasm, readingMs };
/** The playground's history panel module and the checker behind it (web/pkg-checker: 33 KB
 * that the widget's package leaves out), shown by `panels="history"`: loaded only by a widget
 * that has that panel. Resolves to `{mountHistoryPanel, HistoryChecker}`; the checker's
 * `check(cluster.historyData().history)` gives the panel's report. */
export const loadHistoryPanel = async (checkerWasmUrl) => {
  const [panel, HistoryChecker] = await Promise.all([import('../history.js'), loadChecker(checkerWasmUrl)]);
  return { mountHistoryPanel: panel.mountHistoryPanel, HistoryChecker };
};

/** Throws a RangeError naming the widget, for a spec that cannot be run. */
const bad = (text) => new RangeError(`flotilla-raft: ${text}`);

/** Scenarios fetched so far, by id (each is a module of its own: a widget loads only its own). */
const scenarios = new Map();
const findScenario = (id) => scenarios.get(id);

/** The run's scenario id: `spec.scenario`, or the one a `run` link names. */
function scenarioIdOf(spec) {
  return (spec.run ? runFragment(spec.run)?.scenario : null) ?? spec.scenario ?? null;
}

/** The `run` attribute's fields (a run text, a link, or its fragment), or null. */
function runFragment(run) {
  const text = run.trim();
  const hashAt = text.indexOf('#');
  return decodeFragment(hashAt >= 0 ? text.slice(hashAt) : text.startsWith('run=') ? text : `run=${text}`);
}

/** Fetches the scenario `spec` names (if any, and not yet fetched), so that buildRun can run. */
export async function prepareRun(spec) {
  const id = scenarioIdOf(spec);
  if (id && !scenarios.has(id)) {
    const scenario = await loadScenario(id);
    if (scenario) scenarios.set(id, scenario);
  }
}

/**
 * What to run, from the element's attributes: `{scenario, run, nodes, seed}` (once prepareRun
 * fetched the scenario). `run` is a run text or a playground link (or its fragment); a link's
 * scenario and time come with it.
 */
export function buildRun(tables, spec) {
  if (spec.run) {
    const fragment = runFragment(spec.run);
    if (!fragment) throw bad('the run attribute holds no run text');
    let cluster;
    try {
      cluster = tables.SimCluster.fromRun(fragment.run);
    } catch (error) {
      throw bad(`the run attribute is not a run text (${error.message})`);
    }
    const scenarioId = fragment.scenario ?? spec.scenario ?? null;
    const scenario = scenarioId ? findScenario(scenarioId) ?? null : null;
    const lastInput = cluster.scriptItems().reduce((latest, item) => Math.max(latest, item.timeMs), 0);
    const endMs = scenario ? scenario.endMs : fragment.atMs > 0 ? fragment.atMs : Math.max(FREE_RUN_MIN_MS, lastInput + FREE_RUN_TAIL_MS);
    return { cluster, scenario, endMs };
  }
  if (spec.scenario) {
    const scenario = findScenario(spec.scenario);
    if (!scenario) throw bad(`no scenario "${spec.scenario}"`);
    const cluster = new tables.SimCluster(scenario.options);
    scheduleScenario(cluster, scenario);
    return { cluster, scenario, endMs: scenario.endMs };
  }
  const options = { ...PLAYGROUND_OPTIONS };
  if (spec.nodes !== null) options.nodes = spec.nodes;
  if (spec.seed !== null) options.seed = spec.seed;
  let cluster;
  try {
    cluster = new tables.SimCluster(options);
  } catch (error) {
    throw bad(`cannot start that run (${error.message})`);
  }
  return { cluster, scenario: null, endMs: FREE_RUN_MIN_MS };
}

export class Player {
  /**
   * `tables`: what loadWasm() resolved to; `built`: buildRun's result; `emit(type, detail)`: the
   * element's event sink ('step', 'leader', 'commit', 'violation', 'end', 'change', 'act').
   */
  constructor(tables, built, emit) {
    this.tables = tables;
    this.emit = emit;
    this.scenario = built.scenario;
    this.endMs = built.endMs;
    this.timeline = new Timeline(built.cluster);
    this.speed = 0.1;
    this.playing = false;
    /** The reader acted on the run: the scenario's captions no longer describe it. */
    this.offScript = false;
    this.ended = false;
    this.displayMs = 0;
    this.lastFrameAt = null;
    this.holdUntil = null;
    this.segment = null;
    /** What the run looked like at the last observation, to notice changes. */
    this.seen = { leader: null, committed: 0, violations: 0, captionAt: -1 };
    /** The latest notable event since the reader acted (for the caption), and older ones. */
    this.events = [];
    this.ctx = null;
    this.width = 0;
    this.height = 0;
    this.layout = null;
    this.frame = null;
    this.theme = 'light';
    this.reducedMotion = false;
    /** joint(): the last answer, for which simulated time, read at which wall-clock time. */
    this.jointCache = null;
    this.jointKey = null;
    this.jointAt = undefined;
    // The starting caption is the baseline, not a change.
    this.emit = () => {};
    this.observe(false);
    this.emit = emit;
  }

  get cluster() {
    return this.timeline.cluster;
  }

  get nowMs() {
    return this.cluster.nowMs;
  }

  /** The run's length: the scenario's end (or the link's time), or further if the reader went on. */
  get duration() {
    return Math.max(this.endMs, this.timeline.endMs);
  }

  /** Draws on `canvas` from now on (its backing store follows its size and the pixel ratio). */
  attachCanvas(canvas) {
    this.ctx = hidpiCanvas(canvas, (width, height) => {
      this.width = width;
      this.height = height;
      this.layout = null;
      this.draw();
    });
  }

  dispose() {
    this.timeline.dispose();
  }

  // ----- time ---------------------------------------------------------------------------------

  setPlaying(playing) {
    if (playing && this.ended && !this.offScript) this.seek(0);
    this.playing = playing;
    this.lastFrameAt = null;
    this.holdUntil = null;
    this.segment = null;
    if (!playing) this.displayMs = this.nowMs;
    this.emit('change');
  }

  /** Moves to `timeMs` (simulated ms), exactly, by the timeline. */
  seek(timeMs) {
    const target = Math.max(0, Math.floor(Number(timeMs) || 0));
    const back = target < this.nowMs;
    if (back) {
      this.timeline.seek(target);
      this.cluster.drainEvents();
    } else {
      while (this.nowMs < target) this.advanceTo(Math.min(target, this.nowMs + SEEK_CHUNK_MS));
    }
    this.displayMs = this.nowMs;
    this.holdUntil = null;
    this.segment = null;
    this.ended = this.nowMs >= this.endMs && !this.offScript;
    this.observe(!back);
    this.draw();
    this.emit('change');
  }

  /** Handles one event of the simulation (the next message delivery or timer). */
  stepEvent() {
    this.setPlaying(false);
    this.cluster.stepEvent();
    this.timeline.endMs = Math.max(this.timeline.endMs, this.nowMs);
    this.displayMs = this.nowMs;
    this.collect();
    this.observe(true);
    this.draw();
  }

  /** The next captioned time after `timeMs`, else the end. */
  nextStop(timeMs) {
    if (!this.scenario || this.offScript) return this.offScript ? Infinity : this.endMs;
    const step = captionedSteps(this.scenario).find((s) => s.atMs > timeMs);
    return step ? step.atMs : this.endMs;
  }

  /** To the next caption (→). */
  nextCaption() {
    const stop = this.nextStop(this.nowMs);
    if (Number.isFinite(stop)) this.seek(stop);
  }

  /** To the caption before the one showing (←), or its start when mid-way. */
  previousCaption() {
    if (!this.scenario) return this.seek(0);
    const current = captionAt(this.scenario, this.nowMs);
    const steps = captionedSteps(this.scenario);
    let target = 0;
    if (current) target = current.atMs < this.nowMs ? current.atMs : steps[Math.max(0, current.index - 1)].atMs;
    this.seek(target);
  }

  /** One animation frame at wall-clock `now`: plays forward if playing. */
  frameTick(now) {
    if (!this.playing) return;
    if (this.holdUntil !== null) {
      // Each caption is held for a reading time (shorter at faster speeds).
      this.lastFrameAt = now;
      if (now < this.holdUntil) return;
      this.holdUntil = null;
    }
    const dt = this.lastFrameAt === null ? 0 : Math.min(100, now - this.lastFrameAt);
    this.lastFrameAt = now;
    const stop = this.nextStop(this.nowMs);
    let speed = this.speed;
    if (Number.isFinite(stop) && this.scenario && !this.offScript) {
      if (!this.segment || this.segment.to !== stop) this.segment = { from: this.nowMs, to: stop };
      speed = Math.max(speed, (this.segment.to - this.segment.from) / (SEGMENT_WALL_MS_MAX / Math.max(1, this.speed)));
    }
    let next = this.displayMs + dt * speed;
    if (next >= stop) next = stop;
    const started = performance.now();
    const target = Math.floor(next);
    const chunk = Math.max(1, Math.ceil(speed * 4));
    while (this.nowMs < target && performance.now() - started < FRAME_BUDGET_MS) {
      this.advanceTo(Math.min(target, this.nowMs + chunk));
    }
    this.displayMs = this.nowMs >= target ? next : this.nowMs;
    this.observe(true);
    if (this.nowMs >= stop) this.arrive(now, stop);
    this.draw();
  }

  /** Reached a caption or the end while playing. */
  arrive(now, stop) {
    this.segment = null;
    if (stop >= this.endMs && !this.offScript) {
      this.ended = true;
      this.playing = false;
      this.displayMs = this.nowMs;
      this.emit('end', { timeMs: this.nowMs });
      this.emit('change');
      return;
    }
    const caption = this.scenario ? captionAt(this.scenario, this.nowMs) : null;
    if (caption) this.holdUntil = now + readingMs(caption.caption) / Math.max(1, this.speed);
  }

  advanceTo(timeMs) {
    this.timeline.advanceTo(timeMs);
    this.collect();
  }

  /** Drains the cluster's events, keeping the notable ones (for the caption once off script). */
  collect() {
    const rows = this.cluster.drainEvents();
    if (rows.length === 0 || !this.offScript) return;
    const violations = this.cluster.violationCount ? this.cluster.violations() : [];
    const lines = describeEvents(rows, violations, (id) => this.cluster.readResult(id));
    for (const line of lines) if (line.tone === 'leader' || line.tone === 'bad' || line.tone.startsWith('read')) this.events.push(line);
    if (this.events.length > 20) this.events = this.events.slice(-20);
  }

  // ----- what changed -----------------------------------------------------------------------

  /** Compares the run with what was last seen; `forward`: emits leader, commit and violation
   * events for changes (a seek back only moves the baseline). Caption changes always emit. */
  observe(forward) {
    const c = this.cluster;
    const leader = c.leader() ?? null;
    const committed = c.committedIndex;
    const violations = c.violationCount;
    const seen = this.seen;
    if (forward) {
      if (leader !== seen.leader) this.emit('leader', { leader, term: leader ? c.node(leader).term : null, timeMs: c.nowMs });
      if (committed > seen.committed) this.emit('commit', { index: committed, timeMs: c.nowMs });
      if (violations > seen.violations) this.emit('violation', { count: violations, violations: c.violations(), timeMs: c.nowMs });
    }
    seen.leader = leader;
    seen.committed = committed;
    seen.violations = violations;
    const caption = this.caption();
    if (caption.key !== seen.captionAt) {
      seen.captionAt = caption.key;
      this.emit('step', caption);
    }
  }

  /** The caption in force: `{index, count, caption, atMs, key}`. */
  caption() {
    if (this.offScript) {
      const last = this.events[this.events.length - 1];
      const text = last ? `Your run: ${last.text} (at ${last.timeMs} ms).` : 'Your run: the scenario’s captions no longer apply.';
      return { index: -1, count: 0, caption: text, atMs: last?.timeMs ?? this.nowMs, key: `off:${this.events.length}` };
    }
    if (!this.scenario) return { index: -1, count: 0, caption: '', atMs: 0, key: 'none' };
    const current = captionAt(this.scenario, this.nowMs);
    const count = captionedSteps(this.scenario).length;
    if (!current) return { index: -1, count, caption: '', atMs: 0, key: -1 };
    return { index: current.index, count, caption: current.caption, atMs: current.atMs, key: current.index };
  }

  // ----- acting -------------------------------------------------------------------------------

  /** Does `inputs` at the next millisecond; the run leaves the scenario's script. */
  act(inputs, what) {
    this.timeline.act((c) => {
      const at = c.nowMs + 1;
      for (const input of inputs) c.schedule(at, input);
      if (!this.offScript) c.drainEvents();
      this.offScript = true;
      c.runUntil(at);
    });
    this.collect();
    this.ended = false;
    this.displayMs = this.nowMs;
    this.holdUntil = null;
    this.segment = null;
    this.emit('act', what);
    this.observe(true);
    this.draw();
    this.emit('change');
  }

  /** Cuts every link between the groups (b defaults to everyone else). */
  partition(a, b) {
    const all = Array.from({ length: this.cluster.nodeCount }, (_, k) => k + 1);
    const sideA = [...new Set([a].flat().map(Number))];
    if (sideA.some((id) => !all.includes(id))) throw bad(`no such server in ${JSON.stringify(a)}`);
    const sideB = b === undefined || b === null ? all.filter((id) => !sideA.includes(id)) : [...new Set([b].flat().map(Number))];
    if (sideB.some((id) => !all.includes(id))) throw bad(`no such server in ${JSON.stringify(b)}`);
    const inputs = [];
    for (const x of sideA) for (const y of sideB) if (x !== y) inputs.push({ type: 'cutLink', from: x, to: y }, { type: 'cutLink', from: y, to: x });
    this.act(inputs, { type: 'partition', a: sideA, b: sideB });
  }

  /** The node id checked, or a RangeError. */
  nodeId(id) {
    const n = Number(id);
    if (!Number.isInteger(n) || n < 1 || n > this.cluster.nodeCount) throw bad(`no server ${id} (the run has ${this.cluster.nodeCount})`);
    return n;
  }

  // ----- observing and drawing --------------------------------------------------------------

  /** The state, as the playground's page API gives it, plus the widget's own fields. */
  state() {
    const c = this.cluster;
    const caption = this.caption();
    return {
      ...publicState(readFrame(c, this.tables), c.traceHash()),
      scenario: this.scenario?.id ?? null,
      playing: this.playing,
      ended: this.ended,
      offScript: this.offScript,
      duration: this.duration,
      caption: caption.caption,
      step: caption.index,
    };
  }

  /** The playground link that opens this run at this moment. */
  fragment() {
    return encodeFragment({ run: this.cluster.run(), atMs: this.nowMs, scenario: this.offScript ? null : this.scenario?.id, speed: this.speed });
  }

  /** The leader's joint configuration {old, new} (thesis §4.3), else null; read from the wasm at
   * most every 250 ms of wall-clock time while playing, at once after a seek or an act. */
  joint() {
    const now = performance.now();
    const key = `${this.nowMs}`;
    if (this.jointAt === undefined || now - this.jointAt > 250 || !this.playing) {
      if (this.jointKey !== key) {
        const leader = this.cluster.leader();
        const node = leader ? this.cluster.node(leader) : null;
        this.jointCache = node?.votersOutgoing?.length ? { old: [...node.votersOutgoing], new: [...node.voters] } : null;
        this.jointKey = key;
      }
      this.jointAt = now;
    }
    return this.jointCache;
  }

  draw() {
    if (!this.ctx || this.width === 0) return;
    const frame = readFrame(this.cluster, this.tables);
    if (!this.layout || this.layout.nodes.length !== frame.nodes.length) this.layout = computeLayout(frame.nodes.length, this.width, this.height);
    const ids = this.layout.compact ? [frame.leader].filter(Boolean) : null;
    drawFrame(this.ctx, this.layout, {
      frame,
      logs: readLogs(this.cluster, LOG_TAIL, ids),
      timeMs: this.reducedMotion ? frame.timeMs : this.displayMs,
      selectedNode: null,
      selectedMessage: null,
      drag: null,
      theme: this.theme,
      joint: this.joint(),
    });
    this.frame = frame;
  }
}

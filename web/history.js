// The history panel: a Porcupine-style view of client operations beside the cluster that made
// them. One row per client, each operation a bar from invocation to response; node rows with
// crashes, pauses, partitions and leader terms as bands; each operation's linearization point
// from the checker; and, when the checker finds none, the minimal non-linearizable set with
// the operation that cannot be placed.
//
// It draws a plain object, `{report, bands, nodes, now}`, which the wasm HistoryChecker makes
// from a simulated run and `raft-node check --html` embeds for a native one, so the same code
// shows both. Like render.js, the drawing is pure (state in, pixels out); only
// mountHistoryPanel touches the DOM. It imports nothing but render.js and canvas.js, which the
// native report inlines.

import { PALETTES, termColor } from './render.js';
import { hidpiCanvas } from './canvas.js';

/** Outcome colours (contrast ≥ 3:1 on the background in both themes). Each outcome also has its
 * own shape: ok a solid bar, failed a hatched bar ending in ✕, unknown a dashed outline ending
 * in ?, so colour is never the only cue. */
export const OUTCOME_COLORS = {
  light: { ok: '#2563eb', failed: '#b91c1c', unknown: '#64748b', point: '#0f172a', violation: '#c2410c', band: '#e5e7eb', cut: '#f59e0b' },
  dark: { ok: '#60a5fa', failed: '#f87171', unknown: '#94a3b8', point: '#f8fafc', violation: '#fb923c', band: '#334155', cut: '#d97706' },
};

const ROW_HEIGHT = 22;
const NODE_ROW_HEIGHT = 16;
const AXIS_HEIGHT = 18;
const LABEL_WIDTH = 58;
/** Labels go inside bars at least this wide (CSS pixels). */
const LABEL_BAR_MIN = 44;

/** Where everything goes: rows for nodes, then clients, and the time scale of `view`. */
export function historyLayout(data, width, view) {
  const clients = [...new Set(data.report.operations.map((op) => op.client))].sort((a, b) => a - b);
  const clientRow = new Map(clients.map((client, k) => [client, k]));
  const nodesTop = AXIS_HEIGHT;
  const clientsTop = nodesTop + data.nodes.length * NODE_ROW_HEIGHT + (data.nodes.length ? 6 : 0);
  const height = clientsTop + clients.length * ROW_HEIGHT + 4;
  const span = Math.max(1, view.end - view.start);
  const plotWidth = Math.max(1, width - LABEL_WIDTH - 8);
  const x = (t) => LABEL_WIDTH + ((t - view.start) / span) * plotWidth;
  const time = (px) => view.start + ((px - LABEL_WIDTH) / plotWidth) * span;
  return { clients, clientRow, nodesTop, clientsTop, height, width, x, time, view };
}

/** The end of an operation's bar: its response, or now while it waits, or (unknown) the end. */
function barEnd(op, data) {
  return op.complete ?? data.now;
}

/** Every operation in the minimal failing sets, and the ones that cannot be placed. */
export function violationMarks(report) {
  const involved = new Set();
  const blocked = new Set();
  for (const violation of report.violations) {
    for (const id of violation.operations) involved.add(id);
    blocked.add(violation.blocked);
  }
  return { involved, blocked };
}

/** Draws the whole panel on `ctx` (CSS pixels). */
export function drawHistory(ctx, layout, data, { selected = null, theme = 'light', marks = violationMarks(data.report) } = {}) {
  const pal = PALETTES[theme];
  const colors = OUTCOME_COLORS[theme];
  const { x, view } = layout;
  ctx.save();
  ctx.fillStyle = pal.background;
  ctx.fillRect(0, 0, layout.width, layout.height);
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  drawAxis(ctx, layout, pal);
  // Node rows: bands.
  data.nodes.forEach((node, k) => {
    const y = layout.nodesTop + k * NODE_ROW_HEIGHT;
    ctx.fillStyle = pal.muted;
    ctx.fillText(`node ${node}`, 4, y + NODE_ROW_HEIGHT / 2);
    for (const band of data.bands) {
      if (band.node !== node) continue;
      const x0 = Math.max(LABEL_WIDTH, x(band.startMs));
      const x1 = Math.min(layout.width, x(band.endMs ?? data.now));
      if (x1 < LABEL_WIDTH || x0 > layout.width) continue;
      drawBand(ctx, band, x0, Math.max(x1, x0 + 2), y, pal, colors, theme);
    }
  });
  // Client rows.
  ctx.fillStyle = pal.muted;
  layout.clients.forEach((client, k) => ctx.fillText(`client ${client}`, 4, layout.clientsTop + k * ROW_HEIGHT + ROW_HEIGHT / 2));
  ctx.beginPath();
  ctx.rect(LABEL_WIDTH, 0, layout.width - LABEL_WIDTH, layout.height);
  ctx.clip();
  drawOps(ctx, layout, data, { selected, marks, colors, pal });
  // Now.
  const nowX = x(data.now);
  ctx.strokeStyle = pal.selected;
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(nowX, 0);
  ctx.lineTo(nowX, layout.height);
  ctx.stroke();
  ctx.restore();
}

function drawAxis(ctx, layout, pal) {
  const { view, x } = layout;
  const span = view.end - view.start;
  const step = niceStep(span / Math.max(1, (layout.width - LABEL_WIDTH) / 90));
  ctx.fillStyle = pal.muted;
  ctx.strokeStyle = pal.link;
  ctx.lineWidth = 1;
  for (let t = Math.ceil(view.start / step) * step; t <= view.end; t += step) {
    const px = Math.round(x(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(px, AXIS_HEIGHT - 4);
    ctx.lineTo(px, layout.height);
    ctx.stroke();
    ctx.fillText(String(t), px + 2, AXIS_HEIGHT / 2);
  }
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
  for (const factor of [1, 2, 5, 10]) if (power * factor >= raw) return power * factor;
  return power * 10;
}

function drawBand(ctx, band, x0, x1, y, pal, colors, theme) {
  const h = NODE_ROW_HEIGHT - 4;
  const top = y + 2;
  if (band.kind === 'leader') {
    ctx.fillStyle = termColor(band.term, theme === 'dark' ? 30 : 75);
    ctx.fillRect(x0, top, x1 - x0, h);
    if (x1 - x0 > 24) {
      ctx.fillStyle = pal.ink;
      ctx.fillText(`★ T${band.term}`, x0 + 3, y + NODE_ROW_HEIGHT / 2);
    }
  } else if (band.kind === 'down') {
    ctx.fillStyle = pal.ink;
    ctx.fillRect(x0, y + NODE_ROW_HEIGHT / 2 - 1, x1 - x0, 3);
    ctx.fillText('✕', x0, y + NODE_ROW_HEIGHT / 2);
  } else {
    // Paused and cut: hatched, so they read without colour.
    ctx.strokeStyle = band.kind === 'cut' ? colors.cut : pal.muted;
    ctx.lineWidth = 1;
    ctx.strokeRect(x0 + 0.5, top + 0.5, x1 - x0 - 1, h - 1);
    ctx.beginPath();
    for (let px = x0; px < x1; px += band.kind === 'cut' ? 6 : 3) {
      ctx.moveTo(px, top + h);
      ctx.lineTo(Math.min(px + h, x1), top);
    }
    ctx.stroke();
  }
}

/** Draws the visible operations. Only what shows is drawn: bars off screen are skipped, long
 * ones are clipped to the view, and where many operations of one client fall on the same pixels
 * (10,000 of them zoomed out) only the first of each pixel column is drawn. One big path of
 * overlapping shapes would be slower than this in a software rasterizer. */
function drawOps(ctx, layout, data, { selected, marks, colors, pal }) {
  const h = ROW_HEIGHT - 6;
  const coveredUntil = new Map();
  ctx.setLineDash([]);
  for (const op of data.report.operations) {
    const end = barEnd(op, data);
    if (end < layout.view.start || op.invoke > layout.view.end) continue;
    const x0 = Math.max(layout.x(op.invoke), LABEL_WIDTH - 20);
    const x1 = Math.min(Math.max(layout.x(end), x0 + 3), layout.width + 20);
    const involved = marks.involved.has(op.id);
    const covered = coveredUntil.get(op.client) ?? -Infinity;
    if (x1 <= covered + 1 && !involved && op.id !== selected) continue;
    coveredUntil.set(op.client, Math.max(covered, x1));
    const top = layout.clientsTop + layout.clientRow.get(op.client) * ROW_HEIGHT + 3;
    const wide = x1 - x0 >= 6;
    if (op.outcome === 'ok') {
      ctx.fillStyle = colors.ok;
      ctx.fillRect(x0, top, x1 - x0, h);
    } else if (op.outcome === 'failed') {
      ctx.strokeStyle = colors.failed;
      ctx.lineWidth = 1;
      ctx.strokeRect(x0 + 0.5, top + 0.5, x1 - x0 - 1, h - 1);
      if (wide) {
        ctx.beginPath();
        for (let px = x0; px < x1; px += 4) {
          ctx.moveTo(px, top + h);
          ctx.lineTo(Math.min(px + h, x1), top);
        }
        ctx.stroke();
      }
    } else {
      ctx.strokeStyle = colors.unknown;
      ctx.lineWidth = 1.5;
      if (wide) ctx.setLineDash([4, 3]);
      ctx.strokeRect(x0 + 0.5, top + 0.5, x1 - x0 - 1, h - 1);
      ctx.setLineDash([]);
    }
    if (x1 - x0 >= LABEL_BAR_MIN) {
      ctx.fillStyle = op.outcome === 'ok' ? pal.background : pal.ink;
      const suffix = op.kind === 'get' && op.outcome === 'ok' ? ` → ${op.result}` : op.outcome === 'failed' ? ' ✕' : op.outcome === 'unknown' ? ' ?' : '';
      const label = `${op.label}${suffix}`;
      // Whole labels only: a squeezed one is unreadable.
      if (ctx.measureText(label).width <= x1 - x0 - 6) ctx.fillText(label, x0 + 3, top + h / 2);
    } else if (op.outcome !== 'ok' && wide) {
      ctx.fillStyle = colors[op.outcome] ?? colors.unknown;
      ctx.fillText(op.outcome === 'failed' ? '✕' : '?', x1 + 1, top + h / 2);
    }
    if (op.point !== null && op.point !== undefined) drawPoint(ctx, layout.x(op.point), top, h, wide, colors, pal);
    if (involved) {
      const blocked = marks.blocked.has(op.id);
      ctx.strokeStyle = colors.violation;
      ctx.lineWidth = blocked ? 3 : 2;
      ctx.strokeRect(x0 - 1.5, top - 1.5, x1 - x0 + 3, h + 3);
      if (blocked) {
        ctx.fillStyle = colors.violation;
        ctx.font = 'bold 12px system-ui, sans-serif';
        ctx.fillText('!', x1 + 4, top + h / 2);
        ctx.font = '11px system-ui, sans-serif';
      }
    }
    if (op.id === selected) {
      ctx.strokeStyle = pal.selected;
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 - 4, top - 4, x1 - x0 + 8, h + 8);
    }
  }
}

/** A linearization point: a diamond on the bar, or a tick where bars are too thin for one. */
function drawPoint(ctx, px, top, h, wide, colors, pal) {
  ctx.fillStyle = colors.point;
  if (!wide) {
    ctx.fillRect(px - 0.5, top - 2, 1.5, h + 4);
    return;
  }
  ctx.strokeStyle = pal.background;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(px, top - 2);
  ctx.lineTo(px + 4, top + h / 2);
  ctx.lineTo(px, top + h + 2);
  ctx.lineTo(px - 4, top + h / 2);
  ctx.closePath();
  ctx.fill();
  ctx.stroke();
}

/** The operation under (`px`, `py`), or null. */
export function hitOp(layout, data, px, py) {
  const row = Math.floor((py - layout.clientsTop) / ROW_HEIGHT);
  if (row < 0 || row >= layout.clients.length || px < LABEL_WIDTH) return null;
  const client = layout.clients[row];
  const t = layout.time(px);
  const slack = (layout.view.end - layout.view.start) * (4 / Math.max(1, layout.width));
  let best = null;
  for (const op of data.report.operations) {
    if (op.client !== client || op.invoke - slack > t || barEnd(op, data) + slack < t) continue;
    best = op;
  }
  return best?.id ?? null;
}

/** One sentence about an operation: what, who, when, outcome, and its effect on the key. */
export function describeOperation(op, data) {
  const unit = data.report.timeUnit === 'us' ? 'µs' : 'ms';
  const when = `${op.invoke}–${op.complete ?? (op.outcome === 'unknown' ? '?' : 'now')} ${unit}`;
  const outcome = op.outcome === 'ok' ? (op.kind === 'get' ? `returned ${op.result}` : op.result) : op.outcome;
  let effect = '';
  if (op.point !== null && op.point !== undefined) {
    effect = `; took effect at ${op.point} ${unit}, ${op.key}: ${op.before} → ${op.after}`;
  }
  const marks = violationMarks(data.report);
  const blame = marks.blocked.has(op.id) ? '; cannot be placed in any linearization' : marks.involved.has(op.id) ? '; part of the violation' : '';
  return `${op.label} by client ${op.client}, ${when}: ${outcome}${effect}${blame}`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Builds the panel inside `root` and returns `{update(data), setTheme(theme), select(id)}`.
 * `onSeek(timeMs)` is called when an operation is activated (click, Enter), with its invocation
 * time; omit it where there is no simulation to seek (the native report).
 */
export function mountHistoryPanel(root, { onSeek = null, theme = 'light' } = {}) {
  const summary = element('p', 'history-summary');
  summary.setAttribute('role', 'status');
  const violation = element('div', 'history-violation');
  violation.hidden = true;
  const sentence = element('p', 'history-sentence');
  const list = element('ol', 'history-ops');
  list.setAttribute('aria-label', 'operations of the violation');
  violation.append(sentence, list);
  const tools = element('div', 'history-tools');
  tools.setAttribute('role', 'group');
  tools.setAttribute('aria-label', 'history zoom');
  const zoomIn = element('button', '', 'Zoom in');
  const zoomOut = element('button', '', 'Zoom out');
  const fit = element('button', '', 'Fit all');
  for (const button of [zoomIn, zoomOut, fit]) button.type = 'button';
  tools.append(zoomIn, zoomOut, fit);
  const scroll = element('div', 'history-scroll');
  scroll.tabIndex = 0;
  scroll.setAttribute('role', 'group');
  scroll.setAttribute(
    'aria-label',
    `operations timeline: ← and → select an operation, ↑ and ↓ change client${onSeek ? ', Enter seeks the run to it' : ''}`,
  );
  const canvas = element('canvas', 'history-canvas');
  canvas.setAttribute('role', 'img');
  scroll.append(canvas);
  const detail = element('p', 'history-detail');
  detail.setAttribute('aria-live', 'polite');
  const legend = element('p', 'history-legend small muted',
    'Bars: solid = ok, hatched ✕ = failed, dashed ? = unknown outcome. ◆ linearization point; outlined = in the violation, ! = cannot be placed. Node rows: ★ Tn leader of term n, ✕— down, hatched = paused or cut off.');
  root.append(summary, violation, tools, scroll, detail, legend);

  const state = { data: null, selected: null, hovered: null, theme, width: 300, view: { start: 0, end: 1 }, follow: true, drawQueued: false };
  const ctx = hidpiCanvas(canvas, (width) => {
    state.width = width;
    queueDraw();
  });
  const opsById = () => state.data?.report.operations ?? [];
  const fullSpan = () => {
    // From a little before the first operation to the last response (or now).
    let end = state.data?.now ?? 0;
    let start = Infinity;
    for (const op of opsById()) {
      end = Math.max(end, op.complete ?? op.invoke);
      start = Math.min(start, op.invoke);
    }
    if (!Number.isFinite(start)) start = 0;
    start = Math.max(0, start - (end - start) * 0.05);
    return { start, end: Math.max(end, start + 1) };
  };
  const layout = () => historyLayout(state.data, state.width, state.view);
  function draw() {
    state.drawQueued = false;
    if (!state.data) return;
    const l = layout();
    const cssHeight = `${l.height}px`;
    if (canvas.style.height !== cssHeight) canvas.style.height = cssHeight;
    drawHistory(ctx, l, state.data, { selected: state.hovered ?? state.selected, theme: state.theme });
  }
  function queueDraw() {
    if (state.drawQueued) return;
    state.drawQueued = true;
    requestAnimationFrame(draw);
  }
  function show(id) {
    const op = id === null ? null : opsById()[id];
    detail.textContent = op ? describeOperation(op, state.data) : '';
  }
  function select(id, { reveal = true } = {}) {
    state.selected = id;
    show(id);
    const op = id === null ? null : opsById()[id];
    if (op && reveal && (op.invoke < state.view.start || op.invoke > state.view.end)) {
      const span = state.view.end - state.view.start;
      state.view = { start: Math.max(0, op.invoke - span / 4), end: Math.max(0, op.invoke - span / 4) + span };
      state.follow = false;
    }
    queueDraw();
  }
  function zoom(factor, centre = (state.view.start + state.view.end) / 2) {
    const span = Math.max(2, (state.view.end - state.view.start) * factor);
    const start = Math.max(0, centre - (centre - state.view.start) * factor);
    state.view = { start, end: start + span };
    state.follow = false;
    queueDraw();
  }
  zoomIn.addEventListener('click', () => zoom(0.5));
  zoomOut.addEventListener('click', () => zoom(2));
  fit.addEventListener('click', () => {
    state.follow = true;
    state.view = fullSpan();
    queueDraw();
  });
  scroll.addEventListener('wheel', (event) => {
    if (!state.data) return;
    const span = state.view.end - state.view.start;
    if (event.ctrlKey) {
      event.preventDefault();
      const l = layout();
      zoom(event.deltaY > 0 ? 1.25 : 0.8, l.time(event.offsetX));
    } else if (Math.abs(event.deltaX) > Math.abs(event.deltaY) || event.shiftKey) {
      event.preventDefault();
      const delta = (event.shiftKey ? event.deltaY : event.deltaX) * (span / Math.max(1, state.width));
      const start = Math.max(0, state.view.start + delta);
      state.view = { start, end: start + span };
      state.follow = false;
      queueDraw();
    }
  }, { passive: false });
  const pointerOp = (event) => (state.data ? hitOp(layout(), state.data, event.offsetX, event.offsetY) : null);
  canvas.addEventListener('pointermove', (event) => {
    const id = pointerOp(event);
    if (id === state.hovered) return;
    state.hovered = id;
    show(id ?? state.selected);
    canvas.style.cursor = id === null ? 'default' : 'pointer';
    queueDraw();
  });
  canvas.addEventListener('pointerleave', () => {
    state.hovered = null;
    show(state.selected);
    queueDraw();
  });
  const activate = (id) => {
    if (id === null) return;
    select(id, { reveal: false });
    if (onSeek) onSeek(opsById()[id].invoke);
  };
  canvas.addEventListener('click', (event) => activate(pointerOp(event)));
  scroll.addEventListener('keydown', (event) => {
    const ops = opsById();
    if (!ops.length) return;
    const current = state.selected === null ? null : ops[state.selected];
    let next = null;
    if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
      // The next operation of the same client, in time.
      const client = current?.client ?? ops[0].client;
      const same = ops.filter((op) => op.client === client).sort((a, b) => a.invoke - b.invoke || a.id - b.id);
      const at = current ? same.findIndex((op) => op.id === current.id) : -1;
      next = same[Math.min(same.length - 1, Math.max(0, at + (event.key === 'ArrowRight' ? 1 : -1)))] ?? null;
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      const clients = layout().clients;
      const row = Math.min(clients.length - 1, Math.max(0, (current ? clients.indexOf(current.client) : -1) + (event.key === 'ArrowDown' ? 1 : -1)));
      const time = current?.invoke ?? 0;
      const candidates = ops.filter((op) => op.client === clients[row]);
      next = candidates.reduce((best, op) => (!best || Math.abs(op.invoke - time) < Math.abs(best.invoke - time) ? op : best), null);
    } else if (event.key === 'Enter' && current) {
      event.preventDefault();
      activate(current.id);
      return;
    } else {
      return;
    }
    event.preventDefault();
    if (next) select(next.id);
  });

  function showViolation(data) {
    const report = data.report;
    summary.textContent = report.summary;
    summary.dataset.verdict = report.verdict;
    const first = report.violations[0];
    violation.hidden = !first;
    if (!first) {
      list.replaceChildren();
      return;
    }
    sentence.textContent = `Key ${first.key}: ${first.sentence}. The ${first.operations.length} operations below (of its ${first.keyOperations}, ${first.shrink}) have no linearization.`;
    const ids = [first.blocked, ...first.operations.filter((id) => id !== first.blocked)];
    const key = ids.join(',');
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(
      ...ids.map((id) => {
        const op = report.operations[id];
        const item = element('li');
        const button = element('button', id === first.blocked ? 'blocked' : '', `${id === first.blocked ? '! ' : ''}${op.label} → ${op.result} (client ${op.client}, ${op.invoke} ${report.timeUnit === 'us' ? 'µs' : 'ms'})`);
        button.type = 'button';
        button.dataset.op = String(id);
        button.title = describeOperation(op, data);
        button.addEventListener('click', () => activate(id));
        item.append(button);
        return item;
      }),
    );
  }

  return {
    /** Shows `data` ({report, bands, nodes, now}); keeps the selection and, unless the user
     * zoomed or scrolled, follows the run. */
    update(data) {
      const reset = !state.data || data.report.operations.length < state.data.report.operations.length;
      state.data = data;
      if (state.selected !== null && state.selected >= data.report.operations.length) state.selected = null;
      if (reset || state.follow) state.view = fullSpan();
      canvas.setAttribute('aria-label', `client history: ${data.report.summary}; ${layout().clients.length} clients, ${data.nodes.length} nodes`);
      showViolation(data);
      show(state.hovered ?? state.selected);
      queueDraw();
    },
    setTheme(next) {
      state.theme = next;
      queueDraw();
    },
    select,
    /** For tests: the view in time units and the layout's row count. */
    view: () => ({ ...state.view, clients: state.data ? layout().clients.length : 0 }),
    drawNow: draw,
  };
}

// The renderer: state in, canvas pixels out. Pure drawing and geometry; it keeps no state,
// reads no clock and touches no DOM beyond the context it is given.

/** Clusters up to this size get the full ring with labels and per-node log lanes. */
export const FULL_LAYOUT_NODES_MAX = 9;

const TAU = Math.PI * 2;

/** A term's colour: hues spread by the golden angle so neighbouring terms differ. */
export function termColor(term, lightness = 55) {
  // Term 0 (a server that never started): grey, lighter on light, darker on dark.
  if (!term) return `hsl(0 0% ${lightness > 50 ? lightness + 20 : Math.max(0, lightness - 6)}%)`;
  return `hsl(${(term * 137.508) % 360} 62% ${lightness}%)`;
}

export const KIND_COLORS = {
  PreVote: '#a16207',
  RequestVote: '#c2410c',
  PreVoteResponse: '#a16207',
  RequestVoteResponse: '#c2410c',
  AppendEntries: '#2563eb',
  AppendEntriesResponse: '#2563eb',
  Heartbeat: '#64748b',
  HeartbeatResponse: '#64748b',
  TimeoutNow: '#9333ea',
  InstallSnapshot: '#0f766e',
  InstallSnapshotResponse: '#0f766e',
  ReadIndex: '#db2777',
  ReadIndexResponse: '#db2777',
  Other: '#334155',
};

/** Each message kind's shape, so kinds differ by more than colour (a reply has its request's). */
export const KIND_SHAPES = {
  PreVote: 'triangle',
  RequestVote: 'diamond',
  AppendEntries: 'square',
  Heartbeat: 'circle',
  TimeoutNow: 'star',
  InstallSnapshot: 'hexagon',
  ReadIndex: 'plus',
  Other: 'circle',
};

/** The legend: every kind of request, its name and what it is for. */
export const KIND_LEGEND = [
  ['PreVote', 'pre-vote: would you vote for me? (asked before starting an election)'],
  ['RequestVote', 'vote request of a candidate'],
  ['AppendEntries', 'AppendEntries: log entries (the number inside) from the leader'],
  ['Heartbeat', 'heartbeat: an empty AppendEntries that keeps followers’ timers from running out'],
  ['TimeoutNow', 'TimeoutNow: the leader tells a server to start an election at once (leadership transfer)'],
  ['InstallSnapshot', 'InstallSnapshot: the leader sends its snapshot to a follower too far behind'],
  ['ReadIndex', 'ReadIndex: a follower asks the leader for a read index (linearizable read)'],
];

/** Colours of the canvas: WCAG AA contrast for its text (4.5:1) in both themes. `nodeL` and
 * `logL` are the lightness of a term's colour behind a node's or a log entry's text. */
export const PALETTES = {
  light: {
    background: '#ffffff',
    link: '#e2e8f0',
    ink: '#0f172a',
    muted: '#52606f',
    faint: '#94a3b8',
    nodeL: 72,
    pausedL: 82,
    strokeL: 38,
    logL: 72,
    downFill: '#e5e7eb',
    timer: '#475569',
    timerLate: '#c2410c',
    selected: '#0369a1',
    hollow: '#ffffff',
    snapshotFill: '#e2e8f0',
    ok: '#16a34a',
    refused: '#dc2626',
  },
  dark: {
    background: '#0b1220',
    link: '#1e293b',
    ink: '#e2e8f0',
    muted: '#a3b1c2',
    faint: '#64748b',
    nodeL: 24,
    pausedL: 18,
    strokeL: 62,
    logL: 24,
    downFill: '#1f2937',
    timer: '#94a3b8',
    timerLate: '#fb923c',
    selected: '#38bdf8',
    hollow: '#0b1220',
    snapshotFill: '#1e293b',
    ok: '#4ade80',
    refused: '#f87171',
  },
};

/**
 * Where everything goes for `count` nodes on a `width` × `height` (CSS pixel) canvas: a ring of
 * nodes on top, log lanes below.
 */
export function computeLayout(count, width, height) {
  const compact = count > FULL_LAYOUT_NODES_MAX;
  const laneRows = compact ? 2 : count;
  const laneHeight = compact ? 24 : Math.max(16, Math.min(30, (height * 0.36) / (laneRows + 1)));
  const logHeight = Math.min(height * 0.4, laneHeight * (laneRows + 1) + 16);
  const ringHeight = height - logHeight;
  const cx = width / 2;
  const cy = ringHeight / 2 + 4;
  // Room around the ring for the node, its timer arc and its role label.
  const margin = compact ? 30 : 66;
  const radius = Math.max(40, Math.min(width, ringHeight) / 2 - margin);
  const spacing = count > 1 ? (TAU * radius) / count : radius;
  const nodeRadius = compact ? Math.max(7, Math.min(16, spacing * 0.38)) : Math.max(18, Math.min(38, spacing * 0.32));
  const nodes = [];
  for (let k = 0; k < count; k++) {
    // Node 1 at the top, then clockwise, like a clock face.
    const angle = count === 1 ? -Math.PI / 2 : -Math.PI / 2 + (TAU * k) / count;
    nodes.push({ id: k + 1, x: cx + radius * Math.cos(angle), y: cy + radius * Math.sin(angle), r: nodeRadius });
  }
  return {
    width,
    height,
    compact,
    ring: { cx, cy, radius },
    nodes,
    log: { x: 8, y: ringHeight, width: width - 16, height: logHeight - 4, laneHeight },
  };
}

/** Where message `m` is drawn at simulated time `timeMs` (fractional), or null. */
export function messagePosition(m, layout, timeMs) {
  const from = layout.nodes[m.from - 1];
  const to = layout.nodes[m.to - 1];
  if (!from || !to) return null;
  const span = Math.max(1, m.deliverMs - m.sentMs);
  const t = Math.min(1, Math.max(0, (timeMs - m.sentMs) / span));
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const length = Math.hypot(dx, dy) || 1;
  // Requests and responses travel on lanes offset to their right, so a pair does not overlap.
  const offset = layout.compact ? 2 : 5;
  const ox = (-dy / length) * offset;
  const oy = (dx / length) * offset;
  const sx = from.x + (dx / length) * from.r;
  const sy = from.y + (dy / length) * from.r;
  const ex = to.x - (dx / length) * to.r;
  const ey = to.y - (dy / length) * to.r;
  return { x: sx + (ex - sx) * t + ox, y: sy + (ey - sy) * t + oy };
}

/** The node under (x, y), or null. */
export function hitNode(layout, x, y) {
  for (const node of layout.nodes) {
    if (Math.hypot(node.x - x, node.y - y) <= node.r + 4) return node.id;
  }
  return null;
}

/** The message drawn nearest to (x, y) within reach, or null. */
export function hitMessage(frame, layout, timeMs, x, y) {
  let best = null;
  let bestDistance = layout.compact ? 8 : 12;
  for (const m of frame.messages) {
    const p = messagePosition(m, layout, timeMs);
    if (!p) continue;
    const distance = Math.hypot(p.x - x, p.y - y);
    if (distance < bestDistance) {
      best = m;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Draws one frame. `view` = {frame, logs, timeMs, selectedNode, selectedMessage, drag,
 * reducedMotion}; the context is already scaled to CSS pixels.
 */
export function drawFrame(ctx, layout, view) {
  const { frame } = view;
  const pal = PALETTES[view.theme] ?? PALETTES.light;
  ctx.clearRect(0, 0, layout.width, layout.height);
  ctx.fillStyle = pal.background;
  ctx.fillRect(0, 0, layout.width, layout.height);
  drawLinks(ctx, layout, frame, pal);
  if (view.drag) drawDrag(ctx, layout, view.drag, pal);
  for (const node of frame.nodes) drawNode(ctx, layout, node, frame, view.selectedNode === node.id, pal);
  for (const m of frame.messages) drawMessage(ctx, layout, m, view.timeMs, view.selectedMessage === m.id, pal);
  drawLogs(ctx, layout, view, pal);
  if (!view.logs) drawFigures(ctx, layout, frame, pal);
  if (view.joint) drawJoint(ctx, layout, view.joint, pal);
}

/**
 * A joint configuration in force (thesis §4.3), `joint` = {old, new} voter ids: each voter tagged
 * on the inside of the ring with the set(s) it belongs to, and the rule written at the top left.
 */
function drawJoint(ctx, layout, joint, pal) {
  if (layout.compact) return;
  const old = new Set(joint.old);
  const incoming = new Set(joint.new);
  ctx.font = '600 10px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'center';
  ctx.fillStyle = pal.ink;
  for (const p of layout.nodes) {
    const tag = old.has(p.id) && incoming.has(p.id) ? 'old+new' : old.has(p.id) ? 'old' : incoming.has(p.id) ? 'new' : null;
    if (!tag) continue;
    // Across the node from its role label (which sits on the outer side), so the two never meet.
    const inward = p.y >= layout.ring.cy ? -1 : 1;
    ctx.fillText(tag, p.x, p.y + inward * (p.r + 10));
  }
  ctx.textAlign = 'left';
  ctx.font = '600 11px system-ui, sans-serif';
  const list = (ids) => `{${[...ids].sort((a, b) => a - b).join(', ')}}`;
  ctx.fillText(`Joint configuration: a majority of old ${list(old)} and of new ${list(incoming)}`, 8, layout.log.y - 10);
}

function drawLinks(ctx, layout, frame, pal) {
  const cut = new Set(frame.cuts.map(([a, b]) => `${a}>${b}`));
  if (!layout.compact) {
    ctx.strokeStyle = pal.link;
    ctx.lineWidth = 1;
    ctx.setLineDash([]);
    for (const a of layout.nodes) {
      for (const b of layout.nodes) {
        if (a.id < b.id && !cut.has(`${a.id}>${b.id}`) && !cut.has(`${b.id}>${a.id}`)) line(ctx, a, b);
      }
    }
  }
  ctx.strokeStyle = pal.refused;
  ctx.lineWidth = layout.compact ? 1 : 2;
  ctx.setLineDash([6, 5]);
  for (const [from, to] of frame.cuts) {
    const a = layout.nodes[from - 1];
    const b = layout.nodes[to - 1];
    if (!a || !b) continue;
    const both = cut.has(`${to}>${from}`);
    if (both && from > to) continue; // drawn once for both directions
    line(ctx, a, b);
    if (!both && !layout.compact) {
      // One-way: a small bar on the receiving side shows which direction is cut.
      const t = 0.7;
      const x = a.x + (b.x - a.x) * t;
      const y = a.y + (b.y - a.y) * t;
      ctx.setLineDash([]);
      ctx.beginPath();
      ctx.arc(x, y, 4, 0, TAU);
      ctx.fillStyle = pal.refused;
      ctx.fill();
      ctx.setLineDash([6, 5]);
    }
  }
  ctx.setLineDash([]);
}

function line(ctx, a, b) {
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
}

function drawDrag(ctx, layout, drag, pal) {
  const from = layout.nodes[drag.from - 1];
  if (!from) return;
  ctx.strokeStyle = pal.refused;
  ctx.lineWidth = 2;
  ctx.setLineDash([3, 4]);
  line(ctx, from, drag);
  ctx.setLineDash([]);
}

function drawNode(ctx, layout, node, frame, selected, pal) {
  const p = layout.nodes[node.id - 1];
  const { x, y, r } = p;
  const down = node.liveness === 'down';
  const paused = node.liveness === 'paused';
  // A server outside the configuration (not yet added, or removed) is drawn faint.
  ctx.globalAlpha = !down && node.member === 'none' ? 0.45 : 1;
  // Election timer: an arc that fills as the timeout nears (followers and candidates).
  // Only a voter campaigns, so only a voter's timer is worth drawing.
  if (!down && node.role !== 'leader' && node.member === 'voter' && node.timerTimeout > 0) {
    const fraction = Math.min(1, node.timerElapsed / node.timerTimeout);
    ctx.beginPath();
    ctx.arc(x, y, r + (layout.compact ? 3 : 6), -Math.PI / 2, -Math.PI / 2 + TAU * fraction);
    ctx.strokeStyle = fraction > 0.8 ? pal.timerLate : pal.timer;
    ctx.lineWidth = layout.compact ? 2 : 3;
    ctx.stroke();
  }
  ctx.beginPath();
  ctx.arc(x, y, r, 0, TAU);
  ctx.fillStyle = down ? pal.downFill : termColor(node.term, paused ? pal.pausedL : pal.nodeL);
  ctx.fill();
  ctx.lineWidth = node.role === 'leader' ? (layout.compact ? 3 : 5) : 2;
  ctx.strokeStyle = down ? pal.faint : node.role === 'leader' ? pal.ink : termColor(node.term, pal.strokeL);
  ctx.setLineDash(node.role === 'candidate' ? [6, 4] : node.role === 'pre-candidate' ? [2, 4] : []);
  ctx.stroke();
  ctx.setLineDash([]);
  if (selected) {
    ctx.beginPath();
    ctx.arc(x, y, r + (layout.compact ? 6 : 11), 0, TAU);
    ctx.strokeStyle = pal.selected;
    ctx.lineWidth = 2;
    ctx.stroke();
  }
  // Text stays at full contrast on a faint (non-member) node.
  ctx.globalAlpha = 1;
  ctx.fillStyle = down ? pal.muted : pal.ink;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  if (layout.compact) {
    ctx.font = `600 ${Math.max(8, r * 0.9)}px system-ui, sans-serif`;
    ctx.fillText(String(node.label ?? node.id), x, y);
  } else {
    // A live cluster's members carry a label (a native id, or "tab …" for a browser peer).
    const name = String(node.label ?? node.id);
    ctx.font = `700 ${Math.round(r * (name.length > 3 ? 0.3 : 0.62))}px system-ui, sans-serif`;
    ctx.fillText(name, x, y - r * 0.2);
    ctx.font = `${Math.round(r * 0.34)}px system-ui, sans-serif`;
    ctx.fillText(`term ${node.term ?? '?'}`, x, y + r * 0.38);
    const label = down
      ? 'down'
      : paused
        ? 'paused'
        : node.member === 'none'
          ? 'not a member'
          : node.member === 'learner'
            ? `learner`
            : node.campaigns === false && node.role === 'follower'
              ? 'voter · never campaigns'
              : node.role;
    ctx.font = `${node.role === 'leader' ? 700 : 400} 12px system-ui, sans-serif`;
    ctx.fillStyle = down || paused ? pal.muted : pal.ink;
    const outward = y >= layout.ring.cy ? 1 : -1;
    ctx.fillText(node.role === 'leader' && !down ? '★ leader' : label, x, y + outward * (r + 20));
  }
  if (down) cross(ctx, x, y, r * 0.55, pal);
  if (paused) pauseBars(ctx, x + r * 0.7, y - r * 0.7, Math.max(4, r * 0.22), pal);
  if (!down && (node.role === 'candidate' || node.role === 'pre-candidate')) voteDots(ctx, layout, p, node, frame, pal);
  ctx.globalAlpha = 1;
}

// One dot per voter inside the candidate (its own vote included): filled green granted, red
// refused, hollow not yet answered.
function voteDots(ctx, layout, p, node, frame, pal) {
  const others = frame.nodes.length;
  if (others <= 1 || layout.compact) return;
  const dot = Math.max(2.5, Math.min(4.5, p.r / 8));
  const width = others * dot * 2.6;
  for (let k = 0; k < others; k++) {
    const x = p.x - width / 2 + dot * 1.3 + k * dot * 2.6;
    const y = p.y + p.r * 0.72;
    ctx.beginPath();
    ctx.arc(x, y, dot, 0, TAU);
    if (k < node.votesGranted) {
      ctx.fillStyle = pal.ok;
      ctx.fill();
    } else if (k < node.votesGranted + node.votesRefused) {
      ctx.fillStyle = pal.refused;
      ctx.fill();
    } else {
      ctx.strokeStyle = pal.ink;
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  }
}

function cross(ctx, x, y, size, pal) {
  ctx.strokeStyle = pal.refused;
  ctx.lineWidth = 3;
  ctx.beginPath();
  ctx.moveTo(x - size, y - size);
  ctx.lineTo(x + size, y + size);
  ctx.moveTo(x + size, y - size);
  ctx.lineTo(x - size, y + size);
  ctx.stroke();
}

function pauseBars(ctx, x, y, size, pal) {
  ctx.fillStyle = pal.ink;
  ctx.fillRect(x - size, y - size, size * 0.7, size * 2);
  ctx.fillRect(x + size * 0.3, y - size, size * 0.7, size * 2);
}

/** Traces `shape` (a KIND_SHAPES value) of radius `r` around (x, y) as the current path. */
function shapePath(ctx, shape, x, y, r) {
  ctx.beginPath();
  const polygon = (points, radius, turn) => {
    for (let k = 0; k < points; k++) {
      const angle = turn + (TAU * k) / points;
      const rr = typeof radius === 'function' ? radius(k) : radius;
      ctx.lineTo(x + rr * Math.cos(angle), y + rr * Math.sin(angle));
    }
    ctx.closePath();
  };
  switch (shape) {
    case 'triangle':
      polygon(3, r * 1.2, -Math.PI / 2);
      break;
    case 'diamond':
      polygon(4, r * 1.2, -Math.PI / 2);
      break;
    case 'square':
      ctx.rect(x - r * 0.9, y - r * 0.9, r * 1.8, r * 1.8);
      break;
    case 'star':
      polygon(10, (k) => (k % 2 ? r * 0.55 : r * 1.3), -Math.PI / 2);
      break;
    case 'hexagon':
      polygon(6, r * 1.1, 0);
      break;
    case 'plus': {
      const a = r * 1.1;
      const b = r * 0.42;
      for (const [px, py] of [[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b]]) ctx.lineTo(x + px, y + py);
      ctx.closePath();
      break;
    }
    default:
      ctx.arc(x, y, r, 0, TAU);
  }
}

/**
 * One message mark: the kind's shape in its colour, filled for a request, hollow for a reply
 * (with a green centre if granted or accepted, red if refused), the entry count inside. The
 * canvas and the legend both draw with it. `m` = {kindName, entries, flag}.
 */
export function drawMessageGlyph(ctx, m, x, y, { compact = false, theme = 'light' } = {}) {
  const pal = PALETTES[theme] ?? PALETTES.light;
  const color = KIND_COLORS[m.kindName] ?? KIND_COLORS.Other;
  const response = m.kindName.endsWith('Response');
  const request = response ? m.kindName.slice(0, -'Response'.length) : m.kindName;
  const shape = KIND_SHAPES[request] ?? KIND_SHAPES.Other;
  const heartbeat = request === 'Heartbeat';
  let r = compact ? 2.5 : heartbeat ? 4 : 6;
  if (m.entries > 0 && !compact) r = 7 + Math.min(4, Math.log2(m.entries));
  shapePath(ctx, compact ? 'circle' : shape, x, y, r);
  if (response) {
    ctx.fillStyle = pal.hollow;
    ctx.fill();
    ctx.lineWidth = compact ? 1 : 2;
    ctx.strokeStyle = color;
    ctx.stroke();
    if (m.flag >= 0 && !compact) {
      // Granted / accepted: a green centre; refused / rejected: a red one.
      ctx.beginPath();
      ctx.arc(x, y, r * 0.42, 0, TAU);
      ctx.fillStyle = m.flag > 0 ? pal.ok : pal.refused;
      ctx.fill();
    }
  } else {
    ctx.fillStyle = color;
    ctx.fill();
    if (m.entries > 0 && !compact) {
      ctx.fillStyle = '#ffffff';
      ctx.font = '700 10px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(String(m.entries), x, y + 0.5);
    }
  }
  return r;
}

function drawMessage(ctx, layout, m, timeMs, selected, pal) {
  const p = messagePosition(m, layout, timeMs);
  if (!p) return;
  const r = drawMessageGlyph(ctx, m, p.x, p.y, { compact: layout.compact, theme: pal === PALETTES.dark ? 'dark' : 'light' });
  if (selected) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, r + 5, 0, TAU);
    ctx.strokeStyle = pal.selected;
    ctx.lineWidth = 2;
    ctx.stroke();
  }
}

// The live view's figures (web/live/model.js) where the playground draws log lanes: one row per
// member that carries `figures` ({commit, applied, lag, lagFrom, contact}); a figure not known
// is written "unknown", never 0. Rows that do not fit are counted in a last line.
function drawFigures(ctx, layout, frame, pal) {
  const rows = frame.nodes.filter((n) => n.figures);
  if (rows.length === 0) return;
  const area = layout.log;
  const text = (v) => (v === null || v === undefined ? 'unknown' : String(v));
  const narrow = area.width < 520;
  const columns = [
    ['node', (n) => String(n.label ?? n.id)],
    ['commit', (n) => text(n.figures.commit)],
    ['applied', (n) => (n.figures.applied === null && n.figures.matchIndex !== null ? `log ${n.figures.matchIndex}` : text(n.figures.applied))],
    ['lag', (n) => (n.figures.lag !== null && n.figures.lagFrom === 'match' ? `${n.figures.lag}*` : text(n.figures.lag))],
    ...(narrow ? [] : [['last contact', (n) => n.figures.contact ?? '']]),
  ];
  const widths = narrow ? [0.34, 0.22, 0.24, 0.2] : [0.2, 0.13, 0.15, 0.12, 0.4];
  const rowHeight = 15;
  const fit = Math.max(1, Math.floor((area.height - 6) / rowHeight) - 1);
  const shown = rows.length > fit ? rows.slice(0, fit - 1) : rows;
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'left';
  let y = area.y + rowHeight / 2 + 2;
  const line = (cells, font, colour) => {
    ctx.font = font;
    ctx.fillStyle = colour;
    let x = area.x;
    cells.forEach((cell, k) => {
      const width = cells.length === 1 ? area.width : area.width * widths[k];
      ctx.fillText(cell, x, y, width - 6);
      x += width;
    });
    y += rowHeight;
  };
  line(columns.map(([name]) => name), '600 10px system-ui, sans-serif', pal.muted);
  for (const node of shown) {
    const weight = node.own ? 700 : 400;
    line(columns.map(([, cell]) => cell(node)), `${weight} 11px system-ui, sans-serif`, node.liveness === 'down' ? pal.muted : pal.ink);
  }
  if (shown.length < rows.length) line([`+${rows.length - shown.length} more (see the table)`], '10px system-ui, sans-serif', pal.muted);
  else if (shown.some((n) => n.figures.lag !== null && n.figures.lagFrom === 'match')) {
    line(['* by the leader\'s match index (another tab\'s applied index is its own to know)'], '10px system-ui, sans-serif', pal.muted);
  }
}

// Log lanes: one row per node (compact: the leader and the selected node), entries aligned by
// index, coloured by term; committed entries solid, uncommitted hollow. Under a follower's row,
// the leader's nextIndex (▲) and matchIndex (a bar).
function drawLogs(ctx, layout, view, pal) {
  const { frame, logs } = view;
  if (!logs) return;
  const area = layout.log;
  const labelWidth = 54;
  const box = Math.max(12, Math.min(26, area.laneHeight - 6));
  const columns = Math.max(4, Math.floor((area.width - labelWidth) / (box + 2)));
  const last = Math.max(1, ...frame.nodes.map((n) => n.last));
  const start = Math.max(1, last - columns + 1);
  const rows = layout.compact
    ? [...new Set([frame.leader, view.selectedNode].filter((id) => id))]
    : frame.nodes.map((n) => n.id);
  ctx.font = '10px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'center';
  ctx.fillStyle = pal.muted;
  for (let index = start; index < start + columns && index <= last; index++) {
    if (index % 5 === 0 || index === start) {
      ctx.fillText(String(index), area.x + labelWidth + (index - start) * (box + 2) + box / 2, area.y + 6);
    }
  }
  const progress = new Map(frame.progress.map((p) => [p.id, p]));
  rows.forEach((id, row) => {
    const node = frame.nodes[id - 1];
    const log = logs[id - 1];
    if (!node || !log) return;
    const y = area.y + 14 + row * area.laneHeight;
    ctx.textAlign = 'left';
    ctx.font = `${node.role === 'leader' ? 700 : 400} 11px system-ui, sans-serif`;
    ctx.fillStyle = node.liveness === 'down' ? pal.muted : pal.ink;
    ctx.fillText(`${node.role === 'leader' ? '★' : ''}node ${id}`, area.x, y + box / 2);
    ctx.textAlign = 'center';
    ctx.globalAlpha = node.liveness === 'down' ? 0.45 : 1;
    if (node.snapshot > 0 && node.snapshot >= start) {
      // Entries up to the snapshot index are compacted away: one hatched block stands for them.
      const right = Math.min(area.x + area.width, area.x + labelWidth + (node.snapshot - start + 1) * (box + 2) - 2);
      const left = area.x + labelWidth;
      ctx.fillStyle = pal.snapshotFill;
      ctx.fillRect(left, y, right - left, box);
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, y, right - left, box);
      ctx.clip();
      ctx.strokeStyle = pal.faint;
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let hx = left - box; hx < right; hx += 6) {
        ctx.moveTo(hx, y + box);
        ctx.lineTo(hx + box, y);
      }
      ctx.stroke();
      ctx.restore();
      ctx.fillStyle = pal.ink;
      ctx.font = '9px system-ui, sans-serif';
      if (right - left > 40) ctx.fillText(`snapshot ≤ ${node.snapshot}`, (left + right) / 2, y + box / 2 + 0.5);
    } else if (node.snapshot > 0) {
      ctx.fillStyle = pal.muted;
      ctx.font = '9px system-ui, sans-serif';
      ctx.fillText('⋯', area.x + labelWidth - 6, y + box / 2);
    }
    log.terms.forEach((term, k) => {
      const index = log.first + k;
      if (index < start) return;
      const bx = area.x + labelWidth + (index - start) * (box + 2);
      if (bx + box > area.x + area.width) return;
      const committed = index <= node.commit;
      ctx.fillStyle = committed ? termColor(term, pal.logL) : pal.hollow;
      ctx.fillRect(bx, y, box, box);
      ctx.strokeStyle = termColor(term, pal.strokeL);
      ctx.lineWidth = committed ? 1 : 2;
      ctx.strokeRect(bx + 0.5, y + 0.5, box - 1, box - 1);
      if (box >= 14) {
        // The term number at full contrast, also in a faded (down) server's lane.
        const alpha = ctx.globalAlpha;
        ctx.globalAlpha = 1;
        ctx.fillStyle = pal.ink;
        ctx.font = '600 9px system-ui, sans-serif';
        ctx.fillText(String(term), bx + box / 2, y + box / 2 + 0.5);
        ctx.globalAlpha = alpha;
      }
    });
    ctx.globalAlpha = 1;
    const p = progress.get(id);
    if (p && !layout.compact) {
      const marker = (index) => area.x + labelWidth + (index - start) * (box + 2) + box / 2;
      if (p.next >= start && p.next < start + columns) {
        ctx.fillStyle = pal.selected;
        ctx.beginPath();
        const nx = marker(p.next);
        ctx.moveTo(nx, y + box + 1);
        ctx.lineTo(nx - 4, y + box + 6);
        ctx.lineTo(nx + 4, y + box + 6);
        ctx.fill();
      }
      if (p.match >= start) {
        ctx.fillStyle = pal.ink;
        ctx.fillRect(marker(Math.min(p.match, start + columns - 1)) - box / 2, y + box + 1, box, 2);
      }
    }
  });
}

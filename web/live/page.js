// The "Live cluster" mode of the playground: this tab joins a real Flotilla cluster as a Raft
// learner (see web/README.md) and draws it with the playground's one renderer. The Raft node
// itself runs in web/live/worker.js; this module is the page side: the mode button, the view,
// the controls and `window.flotilla.live`.

import { computeLayout, drawFrame } from '../render.js';
import { hidpiCanvas } from '../canvas.js';
import { liveFrame, memberRows, mergeViews } from './model.js';
import { ClusterPoller } from './poll.js';
import { installOperator } from './operator.js';

const STATUS_TEXT = {
  idle: 'Not joined. Paste an invite link from `raft-node admin invite`, or open one.',
  joining: 'Joining the cluster…',
  joined: 'Joined as a learner: this tab receives the log and serves reads.',
  refused: 'The cluster refused this invite',
  unreachable: 'The cluster is unreachable',
  left: 'Left the cluster.',
  stopped: 'This tab\'s node stopped',
};

const BACKEND_TEXT = {
  opfs: 'origin private file system (sync access handles, flushed before every acknowledgement)',
  indexeddb: 'IndexedDB (strict durability; this browser has no OPFS sync access handles)',
  memory: 'memory only (a reload forgets this node)',
};

const MARKUP = `
  <h2 id="live-heading" tabindex="-1">Live cluster</h2>
  <p class="small">This tab joins a real <code>raft-node</code> cluster as a <strong>learner</strong>: it replicates the log and snapshots, applies them to its own key-value store and serves reads, but never votes. Writes go to the cluster's client API.</p>
  <form id="live-join" class="row">
    <label for="live-link">Invite link</label>
    <input id="live-link" type="url" size="40" placeholder="http://127.0.0.1:7001/#join=…" autocomplete="off">
    <button id="live-join-button" type="submit" class="primary">Join</button>
    <button id="live-leave" type="button" disabled>Leave</button>
  </form>
  <p id="live-status" class="live-status" role="status" aria-live="polite"></p>
  <p id="live-storage" class="small"></p>
  <div class="live-grid">
    <div class="live-canvas-wrap">
      <canvas id="live-view" role="img" aria-label="The live cluster: native nodes and browser tabs; this tab is circled"></canvas>
    </div>
    <div class="live-side">
      <p id="live-summary" class="small"></p>
      <table id="live-members" class="small"><caption>Members, as this tab sees them</caption>
        <thead><tr><th scope="col">node</th><th scope="col">role</th><th scope="col">commit</th><th scope="col">applied</th><th scope="col">lag</th><th scope="col">last contact</th></tr></thead>
        <tbody></tbody></table>
      <form id="live-put" class="row">
        <label for="live-put-key">Put</label>
        <input id="live-put-key" value="x" size="6" aria-label="key to write">
        <input id="live-put-value" value="1" size="6" aria-label="value to write">
        <button type="submit">Put</button>
      </form>
      <form id="live-get" class="row">
        <label for="live-get-key">Get</label>
        <input id="live-get-key" value="x" size="6" aria-label="key to read">
        <select id="live-get-mode" aria-label="read mode">
          <option value="linearizable">linearizable (ReadIndex via the leader)</option>
          <option value="stale">stale (this tab's applied state)</option>
        </select>
        <button type="submit">Get</button>
      </form>
      <output id="live-result" class="small" aria-live="polite"></output>
      <details id="live-kv-details"><summary>Key-value state (<span id="live-kv-count">0</span> keys)</summary>
        <table id="live-kv" class="small"><thead><tr><th scope="col">key</th><th scope="col">value</th></tr></thead><tbody></tbody></table>
      </details>
    </div>
  </div>`;

/** sessionStorage key of the link this tab joined with (a reload resumes it). */
const RESUME_KEY = 'flotilla.live.link';

/** Keys shown in the page's table at most (the API's kv() returns all). */
const KV_ROWS_SHOWN = 200;

export function installLive(flotilla, { theme = () => 'light' } = {}) {
  const section = document.createElement('section');
  section.id = 'live';
  section.className = 'live panel';
  section.setAttribute('aria-labelledby', 'live-heading');
  section.hidden = true;
  section.innerHTML = MARKUP;
  document.querySelector('main.layout').after(section);
  const $ = (id) => section.querySelector(`#${id}`);

  const button = document.createElement('button');
  button.id = 'live-mode';
  button.type = 'button';
  button.textContent = 'Live cluster';
  button.setAttribute('aria-pressed', 'false');
  button.title = 'Join a real raft-node cluster from this tab';
  document.getElementById('theme').before(button);

  let worker = null;
  let nextId = 1;
  const waiting = new Map();
  // The Worker's state, and that state merged with the members' own answers (poll.js).
  let workerState = { nodeId: null, role: 'none', term: 0, leader: null, commit: 0, applied: 0, lag: 0, members: [], status: 'idle', reason: null };
  let state = workerState;
  const poller = new ClusterPoller({
    // The invite's node, then every native member with an address record.
    addresses: () => [workerState.origin, ...workerState.members.filter((m) => m.kind === 'native').map((m) => m.address)],
    onView: () => {
      merge();
      render();
    },
  });
  const merge = () => {
    state = mergeViews(workerState, poller.views, Date.now());
  };
  const polling = (status) => status === 'joining' || status === 'joined';
  let kv = [];
  let ctx = null;
  let size = { width: 0, height: 0 };

  const setMode = (on) => {
    section.hidden = !on;
    document.querySelector('main.layout').hidden = on;
    button.setAttribute('aria-pressed', String(on));
    if (on && !ctx) {
      ctx = hidpiCanvas($('live-view'), (width, height) => {
        size = { width, height };
        draw();
      });
    }
    if (on) draw();
  };
  button.addEventListener('click', () => setMode(section.hidden));

  const ensureWorker = () => {
    if (worker) return worker;
    worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    worker.onmessage = ({ data }) => {
      if (data.type === 'state') {
        workerState = data.state;
        if (polling(workerState.status) && workerState.nodeId !== null) poller.start();
        else poller.stop();
        merge();
        if (data.kv) kv = data.kv;
        render();
        return;
      }
      const waiter = waiting.get(data.id);
      if (!waiter) return;
      waiting.delete(data.id);
      if (data.ok) waiter.resolve(data.result);
      else waiter.reject(new Error(data.error));
    };
    return worker;
  };

  const ask = (message) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      ensureWorker().postMessage({ id, ...message });
    });

  function draw() {
    if (!ctx || section.hidden || size.width === 0) return;
    const frame = liveFrame(state);
    const layout = computeLayout(Math.max(1, frame.nodes.length), size.width, size.height);
    drawFrame(ctx, layout, { frame, logs: null, theme: theme(), selectedNode: frame.ownSlot, timeMs: 0 });
  }

  function render() {
    const text = STATUS_TEXT[state.status] ?? state.status;
    const status = $('live-status');
    status.textContent = state.reason ? `${text}: ${state.reason}` : text;
    status.dataset.status = state.status;
    $('live-leave').disabled = !(state.status === 'joined' || state.status === 'joining');
    $('live-join-button').disabled = state.status === 'joining' || state.status === 'joined';
    $('live-summary').textContent =
      state.nodeId === null
        ? ''
        : `This tab is node ${state.nodeId} (${state.role}), term ${state.term}, leader ${state.leader ?? 'unknown'}; ` +
          `commit ${state.commit}, applied ${state.applied} (lag ${state.lag}); ` +
          `the leader's commit ${state.clusterCommit ?? 'unknown'}; ` +
          `${state.snapshotsInstalled ?? 0} snapshot(s) installed; apply-order violations: ${state.applyViolations ?? 0}.`;
    const storage = $('live-storage');
    storage.dataset.backend = state.backend ?? 'memory';
    storage.textContent =
      state.status === 'idle'
        ? ''
        : `Storage: ${BACKEND_TEXT[state.backend] ?? state.backend}; persistence ${state.persistent ? 'granted' : 'not granted'}` +
          `${state.nodeId === null ? '' : `; node id ${state.nodeId}${state.restored ? ' (restored from storage)' : ''}`}` +
          `${state.storageNote ? `. ${state.storageNote}` : ''}.`;
    const body = $('live-members').tBodies[0];
    body.replaceChildren(
      ...memberRows(state).map((row) => {
        const tr = document.createElement('tr');
        if (row.id === state.nodeId) tr.className = 'own';
        // The node's label, and a native member's address on a line of its own (breakable
        // anywhere, so the table fits a phone); a tab's label says it is a tab.
        const node = document.createElement('td');
        node.textContent = row.label;
        if (row.kind === 'native') {
          const address = document.createElement('span');
          address.className = 'live-address';
          address.textContent = row.address;
          node.append(address);
        }
        tr.append(node);
        for (const cell of [row.role, row.commit, row.applied, row.lag, row.contact]) {
          const td = document.createElement('td');
          td.textContent = cell;
          tr.append(td);
        }
        return tr;
      }),
    );
    $('live-kv-count').textContent = String(kv.length);
    const kvBody = $('live-kv').tBodies[0];
    kvBody.replaceChildren(
      ...kv.slice(0, KV_ROWS_SHOWN).map(([key, value]) => {
        const tr = document.createElement('tr');
        for (const cell of [key, value]) {
          const td = document.createElement('td');
          td.textContent = cell;
          tr.append(td);
        }
        return tr;
      }),
    );
    draw();
  }

  const api = {
    /** Joins the cluster an invite link names; resolves with the state once admitted. */
    join: async (link) => {
      setMode(true);
      $('live-link').value = link;
      // Only a page may ask (StorageManager.persist is not exposed to Workers); a voter needs
      // it granted, so that the browser does not evict the node's log under pressure.
      const persistent = await navigator.storage?.persist?.().catch(() => false) ?? false;
      const storage = new URLSearchParams(location.search).get('storage') ?? 'auto';
      poller.scheme = linkScheme() === 'wss:' ? 'https:' : 'http:';
      // The playground rewrites the address's fragment, so a reload finds the link here (this
      // tab only) and comes back as the node its storage holds.
      sessionStorage.setItem(RESUME_KEY, String(link));
      return ask({ type: 'join', link: String(link), persistent, storage });
    },
    /** {nodeId, role, term, leader, commit, applied, lag, clusterCommit, members: [{id, role, kind,
     * lastContactMs, term, raftRole, commit, applied, matchIndex, lag, lagFrom, leaderContactMs}],
     * status, reason}; a member's figure not known is null (see model.js mergeViews). */
    state: () => structuredClone(state),
    /** The tab's applied key-value pairs, as [[key, value], …] in key order. */
    kv: () => kv.map(([k, v]) => [k, v]),
    /** {mode: 'linearizable' (default) | 'stale'}; resolves {value, mode, stale, applied, commit, lag, readIndex?}. */
    get: (key, { mode = 'linearizable' } = {}) => ask({ type: 'get', key, mode }),
    /** Writes through the cluster's client API in a session (exactly once). */
    put: (key, value) => ask({ type: 'put', key, value }),
    /** Closes the sockets and forgets this tab's replica. */
    leave: async () => {
      sessionStorage.removeItem(RESUME_KEY);
      poller.stop();
      if (!worker) return;
      await ask({ type: 'leave' });
      worker.terminate();
      worker = null;
    },
  };
  flotilla.live = api;
  const linkScheme = () => {
    try {
      return new URL($('live-link').value).protocol === 'https:' ? 'wss:' : 'ws:';
    } catch {
      return 'ws:';
    }
  };
  installOperator(section.querySelector('.live-side'), () => ({ ...state, scheme: linkScheme() }));

  $('live-join').addEventListener('submit', (event) => {
    event.preventDefault();
    api.join($('live-link').value.trim()).catch(() => {});
  });
  $('live-leave').addEventListener('click', () => api.leave().catch(() => {}));
  $('live-put').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('live-put-key').value;
    const value = $('live-put-value').value;
    $('live-result').textContent = `putting ${key}…`;
    api.put(key, value).then(
      (r) => ($('live-result').textContent = `put ${key} = ${value}: applied at index ${r.index ?? '?'}`),
      (e) => ($('live-result').textContent = `put failed: ${e.message}`),
    );
  });
  $('live-get').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('live-get-key').value;
    const mode = $('live-get-mode').value;
    api.get(key, { mode }).then(
      (r) =>
        ($('live-result').textContent =
          `${key} = ${r.value === null ? '(absent)' : r.value} — ${r.stale ? `STALE read of applied index ${r.applied} (lag ${r.lag})` : `linearizable, read index ${r.readIndex}, applied ${r.applied}`}`),
      (e) => ($('live-result').textContent = `get failed: ${e.message}`),
    );
  });

  render();
  const resume = location.hash.startsWith('#join=') ? location.href : sessionStorage.getItem(RESUME_KEY);
  if (resume) api.join(resume).catch(() => {});
  return api;
}

// The tab's live Raft node runs here, in a dedicated Worker, so that the page's rendering never
// delays a heartbeat answer and a hidden tab's throttled main-thread timers do not starve it.
// This Worker owns the WebSockets (one per native member, learned from the replicated address
// records), the 10 ms tick timer and the nonces (crypto.getRandomValues); the wasm LiveNode owns
// the protocol and only trades bytes. The page talks to it by messages:
//   page → worker: {id, type: 'join', link, persistent, storage} | {id, type: 'get', key, mode}
//                  | {id, type: 'put', key, value} | {id, type: 'leave'}
//
// Storage (issue 14): the Worker holds the Web Lock `flotilla:<cluster_id>` for its life and,
// with it, the cluster's folder in the origin private file system (storage.js). A reload
// restores the node from it and dials as its stored id with an ordinary Hello; a second tab
// that cannot get the lock runs as its own in-memory learner and says why. Every batch of file
// operations is flushed before the frames of the same call are sent.
//   worker → page: {id, ok, result | error} for each request, and {type: 'state', state, kv}
//                  whenever something changed (at most every STATE_EVERY_MS).

import init, { LiveNode } from '../pkg/flotilla_wasm.js';
import { SessionClient } from './client.js';
import { openStorage } from './storage.js';

/** Matches native-node's tick (RaftConfig::tick_interval). */
const TICK_MS = 10;
/** How often the state goes to the page. */
const STATE_EVERY_MS = 150;
/** How often the members to dial are looked up in the replicated address records. */
const DIAL_CHECK_MS = 300;
/** Redial backoff: first wait and cap. */
const BACKOFF_MS = [100, 3000];
/** Redirects followed during one join before giving up (a leader election may be under way). */
const REDIRECTS_MAX = 20;
/** Linearizable reads that fail for want of a leader are retried this long. */
const READ_RETRY_MS = 5000;

const live = {
  node: null,
  scheme: 'ws:',
  /** The node the invite came from (`host:port`). */
  origin: null,
  /** link id → {ws, address, peer, lastFrameAt, admitted} */
  links: new Map(),
  nextLink: 1,
  /** address → {attempts, timer} for members that should be connected. */
  dialling: new Map(),
  status: 'idle',
  reason: null,
  joinWaiter: null,
  redirects: 0,
  ticker: null,
  dialTimer: null,
  stateTimer: null,
  dirty: true,
  reads: new Map(),
  nextRead: 1,
  client: null,
  /** native member id → address, from the records. */
  addresses: new Map(),
  /** native member id → ms of the last authenticated frame. */
  lastContact: new Map(),
  /** Every native address this tab has learned (invite, redirects, records). */
  known: new Set(),
  joinedAt: 0,
  /** The durable storage (storage.js), or null in memory. */
  storage: null,
  /** Frames wait here for an asynchronous storage batch (IndexedDB). */
  persisting: Promise.resolve(),
  /** Why the tab runs in memory, or what stopped it. */
  storageNote: null,
  releaseLock: null,
  /** The node restored from storage (dials with Hello, not Join). */
  restoredId: null,
  persistent: false,
};

const wasmReady = init();

function nonce() {
  return crypto.getRandomValues(new Uint8Array(16));
}

function setStatus(status, reason = null) {
  live.status = status;
  live.reason = reason;
  live.dirty = true;
  postState();
}

function finishJoin(error) {
  const waiter = live.joinWaiter;
  live.joinWaiter = null;
  if (!waiter) return;
  if (error) waiter.reject(error);
  else waiter.resolve();
}

// ----- sockets -------------------------------------------------------------------------------

function dial(address) {
  if (live.status === 'left' || live.status === 'stopped') return;
  for (const link of live.links.values()) if (link.address === address) return;
  const id = live.nextLink++;
  let ws;
  try {
    ws = new WebSocket(`${live.scheme}//${address}/raft`);
  } catch (error) {
    scheduleRedial(address, error.message);
    return;
  }
  ws.binaryType = 'arraybuffer';
  const link = { ws, address, peer: null, opened: false, ended: false };
  live.links.set(id, link);
  ws.onopen = () => {
    link.opened = true;
    try {
      live.node.linkOpened(id);
    } catch (error) {
      ws.close();
    }
  };
  ws.onmessage = (event) => {
    if (!(event.data instanceof ArrayBuffer)) return;
    const outcome = live.node.onFrame(id, new Uint8Array(event.data), nonce());
    handleOutcome(id, link, outcome);
    flush();
  };
  ws.onclose = (event) => closed(id, link, event.reason);
}

function endLink(id, link) {
  link.ended = true;
  try {
    link.ws.close();
  } catch {
    // already closing
  }
}

function closed(id, link, why) {
  if (!live.links.has(id)) return;
  live.links.delete(id);
  if (link.opened) live.node.linkClosed(id);
  flush();
  live.dirty = true;
  if (live.status === 'left') return;
  if (live.status === 'joining' && !link.redirected) {
    if (!link.refused) {
      const reason = why || `cannot reach ${link.address}`;
      if (live.redirects < REDIRECTS_MAX && live.origin) {
        // The cluster may be electing a leader: try again from the invite's node (a restored
        // node, which dialled every member it knows, tries the same member again).
        live.redirects += 1;
        const again = live.restoredId === null ? live.origin : link.address;
        setTimeout(() => dial(again), 300);
      } else {
        setStatus('unreachable', reason);
        finishJoin(new Error(`unreachable: ${reason}`));
      }
    }
    return;
  }
  if (live.status !== 'joining' && !link.refused) scheduleRedial(link.address, why);
}

function scheduleRedial(address, why) {
  if (live.status === 'left' || live.status === 'refused' || live.status === 'stopped') return;
  const entry = live.dialling.get(address) ?? { attempts: 0, timer: null, why: null };
  if (entry.timer) return;
  entry.attempts += 1;
  entry.why = why ?? null;
  const wait = Math.min(BACKOFF_MS[1], BACKOFF_MS[0] * 2 ** Math.min(entry.attempts - 1, 6));
  entry.timer = setTimeout(() => {
    entry.timer = null;
    if (wantedAddresses().has(address) || live.known.has(address)) dial(address);
  }, wait);
  live.dialling.set(address, entry);
}

function handleOutcome(id, link, outcome) {
  switch (outcome.kind) {
    case 'send':
      break;
    case 'admitted':
      link.peer = outcome.peer;
      live.lastContact.set(outcome.peer, Date.now());
      live.dialling.delete(link.address);
      live.joinedAt = Date.now();
      live.known.add(link.address);
      setStatus('joined');
      finishJoin(null);
      checkDials();
      break;
    case 'welcomed':
      link.peer = outcome.peer;
      live.lastContact.set(outcome.peer, Date.now());
      live.dialling.delete(link.address);
      live.dirty = true;
      if (live.status === 'joining' && live.restoredId !== null) {
        // Restored from storage: back under the stored id, no Join and no snapshot.
        live.joinedAt = Date.now();
        live.known.add(link.address);
        setStatus('joined');
        finishJoin(null);
        checkDials();
      }
      break;
    case 'raft':
      if (link.peer !== null) live.lastContact.set(link.peer, Date.now());
      live.dirty = true;
      break;
    case 'redirect':
      link.redirected = true;
      endLink(id, link);
      live.redirects += 1;
      live.known.add(outcome.address);
      if (live.redirects > REDIRECTS_MAX) {
        setStatus('unreachable', 'too many redirects: no stable leader');
        finishJoin(new Error('unreachable: too many redirects'));
      } else {
        dial(outcome.address);
      }
      break;
    case 'rejected':
      link.refused = true;
      endLink(id, link);
      if (live.status === 'joining' && !otherDialsPending(id)) {
        setStatus('refused', outcome.reason);
        finishJoin(new Error(`refused: ${outcome.reason}`));
      } else {
        scheduleRedial(link.address, `refused: ${outcome.reason}`);
      }
      break;
    case 'fail':
    default:
      endLink(id, link);
      if (live.status === 'joining') {
        link.refused = true;
        setStatus('refused', outcome.reason ?? 'bad frame');
        finishJoin(new Error(`refused: ${outcome.reason}`));
      }
      break;
  }
}

/** Whether a restored node still waits on another of the members it dialled (one member's
 * refusal, say one that lost its records, is then not the cluster's answer). */
function otherDialsPending(id) {
  if (live.restoredId === null) return false;
  return [...live.links].some(([other, link]) => other !== id && !link.ended && !link.refused);
}

/** Persists what the node wrote, then sends what it sealed, on the sockets it names: nothing
 * leaves before the storage batch of the same call is flushed (raft-core/GUIDE.md). */
function flush() {
  if (live.status === 'stopped') return;
  const writes = live.node.takeWrites();
  const outgoing = live.node.takeOutgoing();
  if (writes.length === 0 && outgoing.length === 0) {
    answerReads();
    return;
  }
  if (!live.storage || (live.storage.sync && writes.length === 0)) {
    send(outgoing);
  } else if (live.storage.sync) {
    try {
      live.storage.apply(writes);
    } catch (error) {
      stopNode(`writing flotilla/${live.node.clusterId()}/ failed: ${error.message}`);
      return;
    }
    send(outgoing);
  } else {
    live.persisting = live.persisting.then(
      () => live.storage.apply(writes).then(
        () => send(outgoing),
        (error) => stopNode(`writing flotilla/${live.node.clusterId()}/ failed: ${error.message}`),
      ),
    );
  }
  answerReads();
}

function send(outgoing) {
  if (live.status === 'stopped') return;
  for (const [id, bytes] of outgoing) {
    const link = live.links.get(id);
    if (link && link.ws.readyState === WebSocket.OPEN) link.ws.send(bytes);
  }
}

/** Storage failed or is corrupt: the node must not say another word. */
function stopNode(reason) {
  closeEverything();
  live.storageNote = reason;
  setStatus('stopped', reason);
  finishJoin(new Error(`stopped: ${reason}`));
}

/** Native members to keep a socket to: the applied configuration's, at their recorded
 * addresses; before the tab has applied them, the members its admission named (wasm
 * `dialTargets`), so that losing the admitting node does not strand a tab still catching up. */
function wantedAddresses() {
  const wanted = new Set();
  if (!live.node) return wanted;
  live.addresses = new Map();
  for (const [id, address] of live.node.dialTargets()) {
    live.addresses.set(id, address);
    wanted.add(address);
  }
  return wanted;
}

/** Silence from every member this long (twice an election timeout) and the tab redials every
 * address it has ever known: the invite's node, redirects and records. A tab admitted just
 * before a leader change has applied no address record yet and would otherwise be stranded. */
const SILENCE_MS = 2000;

function checkDials() {
  if (live.status !== 'joined') return;
  const wanted = wantedAddresses();
  for (const address of wanted) live.known.add(address);
  const lastHeard = Math.max(live.joinedAt, ...live.lastContact.values());
  if (Date.now() - lastHeard > SILENCE_MS) for (const address of live.known) wanted.add(address);
  const connected = new Set([...live.links.values()].map((l) => l.address));
  // A member already linked under another spelling of its address (the invite's) is not
  // dialled twice.
  const linkedPeers = new Set([...live.links.values()].map((l) => l.peer).filter((p) => p !== null));
  const linkedAddresses = new Set([...live.addresses].filter(([id]) => linkedPeers.has(id)).map(([, a]) => a));
  for (const address of wanted) {
    if (!connected.has(address) && !linkedAddresses.has(address) && !live.dialling.get(address)?.timer) {
      dial(address);
    }
  }
  // A member removed from the configuration: its socket goes.
  for (const [id, link] of live.links) {
    if (link.peer !== null && !wanted.has(link.address) && !live.known.has(link.address)) endLink(id, link);
  }
}

// ----- reads ---------------------------------------------------------------------------------

function answerReads() {
  const done = live.node.takeReads();
  for (const read of done) {
    const waiter = live.reads.get(read.id);
    if (!waiter) continue;
    live.reads.delete(read.id);
    if (read.ok) {
      const state = live.node.state();
      waiter.resolve({
        key: waiter.key,
        value: live.node.get(waiter.key) ?? null,
        mode: 'linearizable',
        stale: false,
        readIndex: read.index,
        applied: state.applied,
        commit: state.commit,
        lag: Math.max(0, state.commit - state.applied),
      });
    } else if (Date.now() < waiter.deadline) {
      // No leader yet (an election, a redial): ask again shortly.
      setTimeout(() => startRead(waiter), 50);
    } else {
      waiter.reject(new Error(`linearizable read failed: ${read.error}`));
    }
  }
}

function startRead(waiter) {
  const id = live.nextRead++;
  live.reads.set(id, waiter);
  try {
    live.node.readLinearizable(id);
  } catch (error) {
    live.reads.delete(id);
    waiter.reject(error);
    return;
  }
  flush();
}

function get(key, mode) {
  if (live.status !== 'joined') throw new Error(`not joined (${live.status})`);
  if (mode === 'stale') {
    const state = live.node.state();
    return {
      key,
      value: live.node.get(key) ?? null,
      mode: 'stale',
      stale: true,
      applied: state.applied,
      commit: state.commit,
      lag: Math.max(0, state.commit - state.applied),
    };
  }
  if (mode !== 'linearizable') throw new Error(`unknown read mode ${JSON.stringify(mode)}`);
  return new Promise((resolve, reject) => {
    startRead({ key, resolve, reject, deadline: Date.now() + READ_RETRY_MS });
  });
}

// ----- state ---------------------------------------------------------------------------------

function view() {
  const state = live.node ? live.node.state() : null;
  const now = Date.now();
  const members = [];
  if (state && state.nodeId !== null) {
    const voters = new Set(state.voters);
    for (const id of [...state.voters, ...state.learners]) {
      const browser = id >= 2 ** 32;
      const seen = live.lastContact.get(id);
      members.push({
        id,
        role: id === state.leader ? 'leader' : voters.has(id) ? 'voter' : 'learner',
        kind: browser ? 'browser' : 'native',
        address: browser ? 'browser' : live.addresses.get(id) ?? null,
        connected: [...live.links.values()].some((l) => l.peer === id && l.ws.readyState === WebSocket.OPEN),
        lastContactMs: id === state.nodeId ? 0 : seen === undefined ? null : now - seen,
      });
    }
  }
  return {
    nodeId: state?.nodeId ?? null,
    role: state?.role ?? 'none',
    term: state?.term ?? 0,
    leader: state?.leader ?? null,
    commit: state?.commit ?? 0,
    applied: state?.applied ?? 0,
    lag: state ? Math.max(0, state.commit - state.applied) : 0,
    snapshotIndex: state?.snapshotIndex ?? 0,
    members,
    status: live.status,
    reason: live.reason,
    clusterId: state?.clusterId ?? null,
    origin: live.origin,
    appliedEntries: state?.appliedEntries ?? 0,
    applyViolations: state?.applyViolations ?? 0,
    snapshotsInstalled: state?.snapshotsInstalled ?? 0,
    framesRefused: state?.framesRefused ?? 0,
    backend: state?.backend ?? 'memory',
    persistent: state?.persistent ?? live.persistent,
    campaigns: state?.campaigns ?? false,
    restored: state?.restored ?? false,
    logGeneration: state?.logGeneration ?? null,
    storageNote: live.storageNote,
  };
}

let lastPostedApplied = -1;
function postState() {
  const state = view();
  const kv = live.node && state.applied !== lastPostedApplied ? live.node.kv() : null;
  lastPostedApplied = state.applied;
  self.postMessage({ type: 'state', state, kv });
  live.dirty = false;
}

// ----- join and leave ------------------------------------------------------------------------

/** Takes the cluster's Web Lock for the Worker's life; false if another tab holds it. */
function takeLock(clusterId) {
  if (!navigator.locks) return Promise.resolve(false);
  return new Promise((resolve) => {
    navigator.locks
      .request(`flotilla:${clusterId}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        resolve(true);
        return new Promise((release) => {
          live.releaseLock = release;
        });
      })
      .catch(() => resolve(false));
  });
}

/** Opens durable storage and restores the node from it, or says why the tab runs in memory.
 * Throws (after stopping) if the storage is corrupt. */
async function attachStorage(prefer) {
  const clusterId = live.node.clusterId();
  if (prefer === 'memory') {
    live.storageNote = 'memory only, as asked (?storage=memory)';
    return;
  }
  if (!(await takeLock(clusterId))) {
    live.storageNote = navigator.locks
      ? `another tab of this origin holds the stored node of cluster ${clusterId} (Web Lock flotilla:${clusterId}): this tab runs as its own in-memory learner`
      : 'this browser has no Web Locks: this tab runs as an in-memory learner';
    return;
  }
  try {
    live.storage = await openStorage(clusterId, prefer);
  } catch (error) {
    live.storageNote = `no durable storage (${error.message}): this tab runs as an in-memory learner`;
    live.releaseLock?.();
    live.releaseLock = null;
    return;
  }
  const [identity, log0, log1] = ['identity', 'log-0', 'log-1'].map((name) => live.storage.read(name));
  try {
    live.restoredId = live.node.openStorage(live.storage.backend, identity, log0, log1) ?? null;
  } catch (error) {
    // Corrupt storage: the node does not start, and the page shows the file and offset.
    live.status = 'joining';
    stopNode(`corrupt storage: ${error.message}`);
    throw new Error(`stopped: corrupt storage: ${error.message}`);
  }
  flush();
}

async function join(link, { persistent = false, storage = 'auto' } = {}) {
  await wasmReady;
  if (live.node) throw new Error('already joined; leave first');
  const url = new URL(link);
  const token = new URLSearchParams(url.hash.slice(1)).get('join');
  if (!token) throw new Error('the link has no #join= token');
  live.scheme = url.protocol === 'https:' ? 'wss:' : 'ws:';
  live.origin = url.host;
  live.known.add(url.host);
  const seed = crypto.getRandomValues(new Uint32Array(1))[0];
  try {
    live.node = new LiveNode(token, seed);
  } catch (error) {
    // The token does not even decode: as the cluster would say, it is forged.
    setStatus('refused', 'forged');
    throw new Error(`refused: forged (${error.message})`);
  }
  live.persistent = Boolean(persistent);
  live.node.setPersistent(live.persistent);
  await attachStorage(storage);
  live.client = new SessionClient(
    () => [live.origin, ...[...live.addresses.values()].filter((a) => a !== live.origin)],
    live.scheme,
  );
  setStatus('joining');
  const joined = new Promise((resolve, reject) => {
    live.joinWaiter = { resolve, reject };
  });
  live.ticker = setInterval(() => {
    live.node.tick();
    flush();
  }, TICK_MS);
  live.dialTimer = setInterval(checkDials, DIAL_CHECK_MS);
  live.stateTimer = setInterval(() => postState(), STATE_EVERY_MS);
  // A node restored from storage knows its members from its stored address records: it dials
  // every one of them (any may welcome it back), so a stopped invite node does not keep it out.
  for (const address of live.restoredId === null ? [] : wantedAddresses()) live.known.add(address);
  for (const address of live.restoredId === null ? [live.origin] : live.known) dial(address);
  await joined;
  return view();
}

function leave() {
  closeEverything();
  live.status = 'left';
  finishJoin(new Error('left the cluster'));
  self.postMessage({ type: 'state', state: view(), kv: [] });
}

/** Stops timers and sockets, and lets go of the storage and its lock. */
function closeEverything() {
  clearInterval(live.ticker);
  clearInterval(live.dialTimer);
  clearInterval(live.stateTimer);
  for (const entry of live.dialling.values()) clearTimeout(entry.timer);
  for (const link of live.links.values()) {
    link.ended = true;
    link.ws.close();
  }
  live.links.clear();
  live.client?.close();
  for (const waiter of live.reads.values()) waiter.reject(new Error('left the cluster'));
  live.reads.clear();
  const storage = live.storage;
  live.storage = null;
  live.persisting.then(() => {
    storage?.close();
    live.releaseLock?.();
    live.releaseLock = null;
  });
}

self.onmessage = async ({ data }) => {
  const { id, type } = data;
  try {
    let result;
    if (type === 'join') result = await join(data.link, { persistent: data.persistent, storage: data.storage });
    else if (type === 'get') result = await get(String(data.key), data.mode ?? 'linearizable');
    else if (type === 'put') {
      if (live.status !== 'joined') throw new Error(`not joined (${live.status})`);
      result = await live.client.put(String(data.key), String(data.value));
    } else if (type === 'leave') result = leave();
    else throw new Error(`unknown request ${type}`);
    self.postMessage({ id, ok: true, result });
  } catch (error) {
    self.postMessage({ id, ok: false, error: error.message });
  }
  postState();
};

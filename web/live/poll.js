// Polls `GET /v1/cluster` of every native member the tab knows (native-node/src/cluster_view.rs)
// so the live view can show each member's own figures; model.js `mergeViews` merges them. The
// page's origin is one member; the others answer it cross-origin because it is a member's own
// address. Bounded: one request per address at a time, at most one round per POLL_EVERY_MS,
// each given up after POLL_TIMEOUT_MS, and at most ADDRESSES_MAX addresses. No DOM.

/** How often the members are asked (a node rebuilds its answer at most every 250 ms). */
export const POLL_EVERY_MS = 1000;
/** A request not answered within this is aborted; its member's figures age out (VIEW_FRESH_MS). */
export const POLL_TIMEOUT_MS = 800;
/** Addresses polled at most (a cluster has a handful of native members). */
export const ADDRESSES_MAX = 16;

export class ClusterPoller {
  /**
   * `addresses()` lists the `host:port` to ask; `scheme` is 'http:' or 'https:'; `onView` is
   * called after every answer or failure; `fetchImpl` is `fetch` unless a test brings its own.
   */
  constructor({ addresses, scheme = 'http:', onView = () => {}, fetchImpl = (...args) => fetch(...args), now = () => Date.now() }) {
    this.addresses = addresses;
    this.scheme = scheme;
    this.onView = onView;
    this.fetch = fetchImpl;
    this.now = now;
    /** address → {atMs, answer} (the last good answer) */
    this.views = new Map();
    /** address → AbortController of the request in flight */
    this.inflight = new Map();
    this.timer = null;
  }

  start() {
    if (this.timer !== null) return;
    this.round();
    this.timer = setInterval(() => this.round(), POLL_EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    for (const controller of this.inflight.values()) controller.abort();
    this.inflight.clear();
    this.views.clear();
  }

  /** Asks every known address that has no request in flight. */
  round() {
    const wanted = [...new Set(this.addresses())].filter((a) => typeof a === 'string' && a !== '').slice(0, ADDRESSES_MAX);
    for (const address of this.views.keys()) if (!wanted.includes(address)) this.views.delete(address);
    for (const address of wanted) if (!this.inflight.has(address)) this.ask(address);
  }

  async ask(address) {
    const controller = new AbortController();
    this.inflight.set(address, controller);
    const timer = setTimeout(() => controller.abort(), POLL_TIMEOUT_MS);
    try {
      const response = await this.fetch(`${this.scheme}//${address}/v1/cluster`, {
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'omit',
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const answer = await response.json();
      if (this.inflight.get(address) === controller) this.views.set(address, { atMs: this.now(), answer });
    } catch {
      // Unreachable, refused (not a member's page), too slow or not JSON: the old answer ages
      // out, and the member's figures become unknown.
    } finally {
      clearTimeout(timer);
      if (this.inflight.get(address) === controller) this.inflight.delete(address);
    }
    this.onView(this.views);
  }
}

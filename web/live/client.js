// Writes from a tab go to the cluster's client API (`/client`, JSON over WebSocket; see
// native-node/src/api.rs) inside a session (thesis §6.3): every put carries
// {client_id, sequence}, and a retry after a lost answer, a closed socket or a `not_leader`
// redirect reuses the same sequence, so the cluster applies each put exactly once.
// Runs in the Worker; plain ES module, no DOM.

/** Attempts per request before it is given up (each waits a little longer). */
const ATTEMPTS_MAX = 40;
/** Longest wait for one answer before the socket is taken for dead and the request resent. */
const ANSWER_TIMEOUT_MS = 5000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class SessionClient {
  /**
   * `addresses()` lists `host:port` of the native members to try (the invite's node first);
   * `scheme` is 'ws:' or 'wss:'.
   */
  constructor(addresses, scheme) {
    this.addresses = addresses;
    this.scheme = scheme;
    this.socket = null;
    this.address = null;
    this.nextId = 1;
    this.waiting = new Map();
    this.clientId = null;
    this.sequence = 0;
    this.preferred = null;
    this.closed = false;
  }

  /** Puts `key` = `value` exactly once; resolves with the log index it was applied at. */
  async put(key, value) {
    if (this.clientId === null) {
      const registered = await this.request({ op: 'register' });
      this.clientId = registered.client_id;
    }
    this.sequence += 1;
    const session = { client_id: this.clientId, sequence: this.sequence };
    const answer = await this.request({ op: 'put', key, value, session });
    return { index: answer.index ?? null };
  }

  close() {
    this.closed = true;
    this.socket?.close();
    this.socket = null;
  }

  /** Sends one request until it gets a final answer, following the leader. */
  async request(body) {
    let lastError = 'no answer';
    for (let attempt = 0; attempt < ATTEMPTS_MAX && !this.closed; attempt++) {
      if (attempt > 0) await sleep(Math.min(1000, 50 * 2 ** Math.min(attempt, 5)));
      let answer;
      try {
        const socket = await this.connect(attempt);
        answer = await this.exchange(socket, body);
      } catch (error) {
        lastError = error.message;
        this.drop();
        continue;
      }
      if (answer.ok) return answer;
      lastError = `${answer.error}: ${answer.message ?? ''}`;
      if (answer.error === 'not_leader') {
        if (answer.leader_address) this.preferred = answer.leader_address;
        this.drop();
        continue;
      }
      if (answer.retryable) continue;
      throw new Error(lastError);
    }
    throw new Error(`the cluster did not answer (${lastError})`);
  }

  drop() {
    this.socket?.close();
    this.socket = null;
  }

  async connect(attempt) {
    if (this.socket?.readyState === WebSocket.OPEN) return this.socket;
    const known = this.addresses();
    const address = this.preferred && attempt % 4 !== 3 ? this.preferred : known[attempt % known.length];
    this.preferred = null;
    const socket = new WebSocket(`${this.scheme}//${address}/client`);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`cannot reach ${address}`));
    });
    socket.onmessage = (event) => {
      let answer;
      try {
        answer = JSON.parse(event.data);
      } catch {
        return;
      }
      const waiter = this.waiting.get(answer.id);
      if (waiter) {
        this.waiting.delete(answer.id);
        waiter.resolve(answer);
      }
    };
    socket.onclose = () => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error('connection closed'));
      this.waiting.clear();
      if (this.socket === socket) this.socket = null;
    };
    this.socket = socket;
    this.address = address;
    return socket;
  }

  exchange(socket, body) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error('timed out'));
      }, ANSWER_TIMEOUT_MS);
      this.waiting.set(id, {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      socket.send(JSON.stringify({ id, ...body }));
    });
  }
}

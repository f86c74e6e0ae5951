// The timeline: one live cluster plus checkpoints (copies at regular simulated times), so the
// scrubber can move anywhere deterministically. Going back restores the nearest checkpoint and
// re-executes the same script to the target time; acting while in the past forks the timeline
// (the recorded future is dropped, the run goes on from here with the new input).

export const CHECKPOINT_EVERY_MS = 1000;
export const CHECKPOINTS_MAX = 200;
export const CHECKPOINTS_MIN = 8;
/** Each checkpoint copies every node's log: keep (checkpoints × entries × nodes) under this, so a
 * long, busy run cannot exhaust memory. Thinning keeps seeking exact, only slower. */
export const CHECKPOINT_ENTRY_COPIES_MAX = 4_000_000;

export class Timeline {
  /** Takes ownership of `cluster` (at time 0). */
  constructor(cluster) {
    this.cluster = cluster;
    this.everyMs = CHECKPOINT_EVERY_MS;
    this.checkpoints = new Map(); // time ms -> SimCluster copy
    this.endMs = 0; // furthest time this branch has reached
    this.forks = 0;
    /** The latest act() that forked: {atMs, droppedToMs}, else null. */
    this.lastFork = null;
    this.#keep(0);
  }

  get nowMs() {
    return this.cluster.nowMs;
  }

  /** Whether the view is behind the furthest point reached (acting now would fork). */
  get inPast() {
    return this.cluster.nowMs < this.endMs;
  }

  /** Runs the live cluster forward to `timeMs`, taking checkpoints on the way. */
  advanceTo(timeMs) {
    const target = Math.floor(timeMs);
    let next = (Math.floor(this.cluster.nowMs / this.everyMs) + 1) * this.everyMs;
    while (next <= target) {
      this.cluster.runUntil(next);
      this.#keep(next);
      next += this.everyMs;
    }
    this.cluster.runUntil(target);
    this.endMs = Math.max(this.endMs, this.cluster.nowMs);
  }

  /**
   * Moves the view to `timeMs` (simulated ms): back via a checkpoint, forward by running.
   * Returns whether it restored a checkpoint (then the events the cluster reports from here on
   * replay times the caller may already have seen). The events are left for the caller to drain.
   */
  seek(timeMs) {
    const target = Math.max(0, Math.floor(timeMs));
    let best = -1;
    for (const time of this.checkpoints.keys()) if (time <= target && time > best) best = time;
    const now = this.cluster.nowMs;
    if (target < now || best > now) {
      const restored = this.checkpoints.get(best).clone();
      restored.adoptScript(this.cluster);
      this.cluster.free();
      this.cluster = restored;
      this.advanceTo(target);
      return true;
    }
    this.advanceTo(target);
    return false;
  }

  /**
   * Does `action(cluster)` now. In the past, first forks: the script after now is dropped, as
   * are checkpoints after now.
   */
  act(action) {
    this.lastFork = null;
    if (this.inPast) {
      const now = this.cluster.nowMs;
      this.lastFork = { atMs: now, droppedToMs: this.endMs };
      this.cluster.truncateScriptAfter(now);
      for (const [time, copy] of this.checkpoints) {
        if (time > now) {
          copy.free();
          this.checkpoints.delete(time);
        }
      }
      this.endMs = now;
      this.forks += 1;
    }
    const result = action(this.cluster);
    this.endMs = Math.max(this.endMs, this.cluster.nowMs);
    return result;
  }

  /** Frees every wasm object this timeline holds. */
  dispose() {
    for (const copy of this.checkpoints.values()) copy.free();
    this.checkpoints.clear();
    this.cluster.free();
  }

  #keep(time) {
    if (this.checkpoints.has(time)) return;
    this.checkpoints.set(time, this.cluster.clone());
    if (this.checkpoints.size > this.#limit()) this.#thin();
  }

  #limit() {
    const copiesPerCheckpoint = (this.cluster.committedIndex + 100) * this.cluster.nodeCount;
    const affordable = Math.floor(CHECKPOINT_ENTRY_COPIES_MAX / copiesPerCheckpoint);
    return Math.max(CHECKPOINTS_MIN, Math.min(CHECKPOINTS_MAX, affordable));
  }

  // Too many checkpoints: keep every other one (double the spacing) until under the limit, so
  // memory stays bounded and seeking stays at most a few spacings of re-execution.
  #thin() {
    while (this.checkpoints.size > this.#limit()) {
      this.everyMs *= 2;
      for (const [time, copy] of this.checkpoints) {
        if (time % this.everyMs !== 0) {
          copy.free();
          this.checkpoints.delete(time);
        }
      }
    }
  }
}

// "Now you try" prompts of the guide: each watches one widget's events (flotilla-act when the
// reader acts, flotilla-leader, flotilla-commit, flotilla-step) and says what the reader did and
// what the cluster did about it. Data-driven: <div class="try" data-widget="id" data-task="...">.

const TASKS = {
  /** Crash the leader; then: who took over, and how long it took. */
  'crash-leader': (widget, say) => {
    let crashed = null;
    widget.addEventListener('flotilla-act', (event) => {
      const { type, node } = event.detail;
      if (type !== 'crash') return;
      const state = widget.state;
      if (node === knownLeader(widget)) {
        crashed = { node, atMs: state.timeMs, term: state.nodes[node - 1].term };
        say(`You crashed node ${node}, the leader of term ${crashed.term}. Its heartbeats stop; press Play and watch the other timers run out.`);
      } else {
        const voters = state.nodes.filter((n) => n.member === 'voter' && n.liveness !== 'down').length;
        say(`You crashed node ${node}, a follower. The leader carries on: ${voters} servers are still up, and a majority is all it needs. Try the leader.`);
      }
    });
    widget.addEventListener('flotilla-leader', (event) => {
      const { leader, term, timeMs } = event.detail;
      if (!crashed || leader === null || leader === crashed.node) return;
      say(`Node ${leader} won term ${term}, ${timeMs - crashed.atMs} ms after you crashed node ${crashed.node}. Nothing committed was lost: commit index ${widget.state.committed}.`);
      crashed = null;
    });
  },
  /** Isolate the leader from the majority; then: it steps down by itself (check-quorum). */
  'isolate-leader': (widget, say) => {
    let cut = null;
    widget.addEventListener('flotilla-act', (event) => {
      const { type, a } = event.detail;
      if (type !== 'partition') return;
      const leader = knownLeader(widget);
      if (leader !== null && a.includes(leader) && a.length * 2 < widget.state.nodes.length) {
        cut = { node: leader, atMs: widget.state.timeMs };
        say(`You cut node ${leader}, the leader, off from the majority. It still believes it leads; press Play.`);
      } else {
        say(leader === null ? 'There is no leader yet: play until one is elected, then isolate it.' : `That did not cut the leader (node ${leader}) off from a majority. Pick the leader in “Server”.`);
      }
    });
    const check = () => {
      if (!cut) return;
      const state = widget.state;
      if (state.nodes[cut.node - 1].role !== 'leader') {
        say(`Node ${cut.node} stepped down by itself ${state.timeMs - cut.atMs} ms after you cut it off: it had not heard from a majority for an election timeout (check-quorum).${state.leader && state.leader !== cut.node ? ` Node ${state.leader} leads the majority now.` : ''}`);
        cut = null;
      }
    };
    for (const type of ['flotilla-step', 'flotilla-leader', 'flotilla-commit']) widget.addEventListener(type, check);
  },
  /** Write; then: when it is committed. */
  write: (widget, say) => {
    let wrote = null;
    widget.addEventListener('flotilla-act', (event) => {
      if (event.detail.type !== 'propose') return;
      const state = widget.state;
      const leader = state.leader;
      if (leader === null) {
        say('There is no leader right now: only a leader takes writes. Play until one is elected.');
        return;
      }
      wrote = { index: state.nodes[leader - 1].last, atMs: state.timeMs, leader };
      say(`Leader ${leader} appended your write at index ${wrote.index}: hollow until a majority stores it. Press Play.`);
    });
    widget.addEventListener('flotilla-commit', (event) => {
      if (!wrote || event.detail.index < wrote.index) return;
      say(`Your write is committed (index ${wrote.index}), ${event.detail.timeMs - wrote.atMs} ms after it reached the leader: a majority stored it.`);
      wrote = null;
    });
  },
};

/** The leader as the widget last reported it (flotilla-leader), else from its state. */
const leaders = new WeakMap();
function knownLeader(widget) {
  return leaders.has(widget) ? leaders.get(widget) : widget.state?.leader ?? null;
}

for (const box of document.querySelectorAll('.try[data-widget]')) {
  const widget = document.getElementById(box.dataset.widget);
  const task = TASKS[box.dataset.task];
  const result = box.querySelector('.try-result');
  if (!widget || !task || !result) continue;
  // A crash's act event comes after the crash: remember the leader from before it.
  widget.addEventListener('flotilla-leader', (event) => leaders.set(widget, event.detail.leader), { capture: true });
  widget.addEventListener('flotilla-load', () => leaders.set(widget, widget.state.leader));
  widget.addEventListener('flotilla-act', () => queueMicrotask(() => leaders.set(widget, widget.state.leader)));
  task(widget, (text) => {
    result.textContent = text;
  });
}

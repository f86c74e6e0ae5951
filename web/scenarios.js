// Scripted runs: each is a seed + config + input script, with a one-line caption per step
// (steps without a caption only add inputs).
// Times are simulated milliseconds. Steps without inputs only caption what the core does on its
// own at that moment: the runs are deterministic, so the captions stay true (the browser tests
// play every scenario to its end and check its outcome).

/** The playground's timing: elections after 200–400 ms of silence, heartbeats every 50 ms,
 * messages take 10–20 ms — slow enough to watch at 0.1×. Servers snapshot every 200 entries,
 * as a real deployment would, so long busy runs keep short logs (and fast-forward stays fast). */
export const PLAYGROUND_OPTIONS = Object.freeze({
  nodes: 5,
  seed: 18,
  tickMs: 10,
  electionTimeoutTicks: 20,
  heartbeatIntervalTicks: 5,
  latencyMsMin: 10,
  latencyMsMax: 20,
  snapshotIntervalEntries: 200,
});

const put = (key, value) => ({ type: 'put', key, value });
const read = (node, mode) => ({ type: 'read', node, key: 'x', mode });

export const SCENARIOS = [
  {
    id: 'first-election',
    title: 'First election',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1000,
    steps: [
      { atMs: 0, caption: 'Five servers start as followers in term 1. None is leader yet.' },
      { atMs: 20, caption: 'Each waits a random election timeout (the arc around it) to hear from a leader.' },
      { atMs: 195, caption: 'Node 3’s timer runs out first. It asks the others: would you vote for me? (a pre-vote, yellow)' },
      { atMs: 228, caption: 'A majority would. Node 3 becomes a candidate for term 2 and requests votes (orange).' },
      { atMs: 239, caption: 'Each server grants one vote per term, to a candidate whose log is at least as complete.' },
      { atMs: 256, caption: 'Three of five votes is a majority: node 3 is the leader of term 2 (★).' },
      { atMs: 283, caption: 'The leader appends a no-op entry; once a majority stores it, it is committed (solid).' },
      { atMs: 320, caption: 'Heartbeats (grey) every 50 ms keep the followers’ timers from running out.' },
      { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1. Only the leader accepts writes.' },
      { atMs: 628, caption: 'Stored on a majority, x=1 is committed and every server applies it.' },
    ],
    check: (s) => (s.leader === 3 && s.nodes[2].term === 2 && s.committed >= 3 ? null : 'node 3 should lead term 2'),
  },
  {
    id: 'split-vote',
    title: 'Split vote',
    options: { ...PLAYGROUND_OPTIONS, nodes: 4, seed: 1 },
    endMs: 800,
    steps: [
      { atMs: 0, caption: 'Four servers: a leader needs three votes.' },
      { atMs: 100, inputs: [{ type: 'campaign', node: 1 }, { type: 'campaign', node: 3 }], caption: 'We force nodes 1 and 3 to time out at the same moment.' },
      { atMs: 132, caption: 'Both become candidates for term 2; each votes for itself.' },
      { atMs: 143, caption: 'Nodes 2 and 4 each vote for whichever request reached them first.' },
      { atMs: 164, caption: 'Two votes each: nobody has a majority. Both give up; term 2 has no leader.' },
      { atMs: 368, caption: 'Random timeouts break the tie: node 2 times out first and asks for term 3.' },
      { atMs: 434, caption: 'Node 2 wins term 3. Randomised timeouts make repeated splits unlikely (§5.2).' },
    ],
    check: (s) => (s.leader === 2 && s.nodes[1].term === 3 ? null : 'node 2 should lead term 3'),
  },
  {
    id: 'log-replication',
    title: 'Log replication',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1300,
    steps: [
      { atMs: 0, caption: 'Node 3 will win the first election (see “First election”).' },
      { atMs: 300, caption: 'The logs below: one row per server, one box per entry, coloured by term.' },
      { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1. The leader appends it to its log: hollow, not yet committed.' },
      { atMs: 606, caption: 'AppendEntries (blue, with the entry count) carries it to every follower.' },
      { atMs: 615, caption: 'Followers check that their log matches the leader’s just before it, store it, and acknowledge.' },
      { atMs: 628, caption: 'A majority stores it: committed (solid). The leader applies it and tells the others.' },
      { atMs: 900, inputs: [put('y', '2'), put('z', '3')], caption: 'Two writes at once: the leader batches them into one message.' },
      { atMs: 935, caption: 'Both committed. Under each follower, ▲ marks the leader’s nextIndex and the bar its matchIndex.' },
    ],
    check: (s) => (s.committed >= 5 && s.nodes.every((n) => n.commit >= 5) ? null : 'entries up to 5 should be committed everywhere'),
  },
  {
    id: 'leader-crash',
    title: 'Leader crash',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 2300,
    steps: [
      { atMs: 0, caption: 'Node 3 becomes leader of term 2.' },
      { atMs: 800, inputs: [{ type: 'crash', node: 3 }], caption: 'The leader crashes. Its heartbeats stop.' },
      { atMs: 820, caption: 'The followers’ timers run on (the arcs grow): nobody is telling them to wait.' },
      { atMs: 998, caption: 'Node 4 times out first and asks for pre-votes; then votes for term 3.' },
      { atMs: 1057, caption: 'Node 4 is the new leader (term 3), with votes from a majority of the five.' },
      { atMs: 1400, inputs: [put('x', '1')], caption: 'Writes go on: four of five servers are plenty for a majority.' },
      { atMs: 1800, inputs: [{ type: 'restart', node: 3 }], caption: 'Node 3 restarts from its disk, still believing it is term 2.' },
      { atMs: 1815, caption: 'The first message from node 4 carries term 3: node 3 becomes a follower and catches up.' },
    ],
    check: (s) => (s.leader === 4 && s.nodes[2].role === 'follower' && s.nodes[2].commit >= 4 ? null : 'node 4 should lead; node 3 should follow and catch up'),
  },
  {
    id: 'minority-partition',
    title: 'Minority partition',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 2800,
    steps: [
      { atMs: 0, caption: 'Node 3 becomes leader of term 2.' },
      { atMs: 500, inputs: [put('a', '1')], caption: 'a=1 is written and committed by all five.' },
      { atMs: 700, inputs: [{ type: 'partition', side: [3, 4] }], caption: 'The network splits: leader 3 and node 4 on one side, nodes 1, 2, 5 on the other.' },
      { atMs: 750, inputs: [put('x', 'lost')], caption: 'A client writes x=lost to the old leader. It reaches node 4 only: 2 of 5, never committed.' },
      { atMs: 931, caption: 'On the majority side, node 1 stops hearing a leader, times out and campaigns.' },
      { atMs: 1004, caption: 'Node 1 leads term 3 with votes from 2 and 5: three of five.' },
      { atMs: 1055, caption: 'Node 3 has not heard from a majority for a whole timeout: it steps down (check-quorum).' },
      { atMs: 1600, inputs: [put('y', '2')], caption: 'y=2 goes to node 1 and is committed by the majority side.' },
      { atMs: 2200, inputs: [{ type: 'heal' }], caption: 'The partition heals.' },
      { atMs: 2215, caption: 'Nodes 3 and 4 learn term 3; their uncommitted x=lost is replaced by the leader’s log.' },
    ],
    check: (s) => (s.leader === 1 && s.nodes.every((n) => n.commit >= 5 && n.term === 3) ? null : 'node 1 should lead term 3 with everything committed everywhere'),
  },
  {
    id: 'figure-8',
    title: 'Figure 8: old-term entries',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1700,
    steps: [
      { atMs: 0, caption: 'Raft paper, Figure 8, staged: why a leader never commits an old-term entry by counting copies (§5.4.2).' },
      { atMs: 256, caption: 'Node 3 leads term 2.' },
      {
        atMs: 400,
        inputs: [
          { type: 'cutLink', from: 3, to: 1 },
          { type: 'cutLink', from: 3, to: 2 },
          { type: 'cutLink', from: 3, to: 5 },
        ],
        caption: 'We cut node 3’s links to nodes 1, 2 and 5.',
      },
      { atMs: 401, inputs: [{ type: 'proposeTo', node: 3, data: 'A' }], caption: 'A client writes A to node 3: index 3, term 2. It reaches node 4 only.' },
      { atMs: 440, inputs: [{ type: 'crash', node: 3 }, { type: 'pause', node: 4 }], caption: 'Node 3 crashes and node 4 is paused: the others never saw A.' },
      { atMs: 631, caption: 'Node 1 times out and campaigns for term 3.' },
      {
        atMs: 701,
        inputs: [
          { type: 'cutLink', from: 1, to: 2 },
          { type: 'cutLink', from: 1, to: 4 },
          { type: 'cutLink', from: 1, to: 5 },
        ],
        caption: 'Node 1 wins term 3, and at that instant we cut its links: its term-3 no-op at index 3 stays on node 1 alone.',
      },
      { atMs: 731, inputs: [{ type: 'crash', node: 1 }], caption: 'Node 1 crashes. Index 3 holds A (term 2) on nodes 3 and 4, a term-3 entry on node 1.' },
      {
        atMs: 901,
        inputs: [{ type: 'heal' }, { type: 'restart', node: 3 }, { type: 'resume', node: 4 }],
        caption: 'Links heal, node 3 restarts, node 4 resumes.',
      },
      { atMs: 1022, caption: 'Nodes 2 and 5 cannot win: nodes 3 and 4 hold a longer log (index 3) and refuse them.' },
      { atMs: 1430, caption: 'Node 4, which also holds A, wins term 4 and sends A together with its own term-4 no-op.' },
      { atMs: 1496, caption: 'A commits only because the term-4 entry reached a majority. Had a leader counted copies of A alone, node 1 (last term 3) could still win and overwrite it (Figure 8d).' },
      { atMs: 1501, inputs: [{ type: 'restart', node: 1 }], caption: 'Node 1 restarts: it learns term 4 and its stray term-3 entry is replaced by A.' },
    ],
    check: (s) => (s.leader === 4 && s.nodes.every((n) => n.commit >= 4 && n.term === 4) ? null : 'node 4 should lead term 4 with A committed everywhere'),
  },
  {
    id: 'pre-vote',
    title: 'Pre-vote: a rejoining node does not disrupt',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 3200,
    steps: [
      { atMs: 0, caption: 'Node 3 becomes leader of term 2. Pre-vote is on (the default).' },
      { atMs: 600, inputs: [{ type: 'partition', side: [5] }], caption: 'Node 5 is cut off from everyone.' },
      { atMs: 912, caption: 'Node 5 hears no leader and times out. It asks for pre-votes first: nobody answers.' },
      { atMs: 1500, caption: 'Without a majority of pre-votes it never starts an election, so its term stays 2.' },
      { atMs: 2600, inputs: [{ type: 'heal' }], caption: 'The network heals.' },
      { atMs: 2615, caption: 'Node 5 simply rejoins as a follower. The leader was never disturbed (thesis §9.6).' },
    ],
    check: (s) => (s.leader === 3 && s.nodes.every((n) => n.term === 2) ? null : 'node 3 should still lead term 2'),
  },
  {
    id: 'no-pre-vote',
    title: '…and without pre-vote',
    options: { ...PLAYGROUND_OPTIONS, preVote: false },
    endMs: 3200,
    steps: [
      { atMs: 0, caption: 'The same run with pre-vote off. Node 3 becomes leader of term 2.' },
      { atMs: 600, inputs: [{ type: 'partition', side: [5] }], caption: 'Node 5 is cut off from everyone.' },
      { atMs: 932, caption: 'Node 5 times out and starts a real election: term 3. Nobody answers.' },
      { atMs: 1300, caption: 'Each timeout raises its term again: 4, 5, 6…' },
      { atMs: 2600, inputs: [{ type: 'heal' }], caption: 'The network heals.' },
      { atMs: 2658, caption: 'Node 5’s high term reaches the leader, which must step down: a needless election.' },
      { atMs: 2853, caption: 'A new leader in term 10. Pre-vote exists to avoid exactly this.' },
    ],
    check: (s) => (s.leader !== null && s.nodes[2].term >= 9 ? null : 'the cluster should have been forced into a high term'),
  },
  {
    id: 'membership-change',
    title: 'Membership change',
    options: { ...PLAYGROUND_OPTIONS, votersInitial: 3 },
    endMs: 2600,
    steps: [
      { atMs: 0, caption: 'Five servers, but only 1, 2 and 3 are in the cluster; 4 and 5 wait, empty and faint.' },
      { atMs: 254, caption: 'Node 3 leads term 2: two votes of three are a majority.' },
      { atMs: 600, inputs: [put('x', '1')], caption: 'x=1 is committed by the three voters.' },
      { atMs: 800, inputs: [{ type: 'addVoter', node: 4 }], caption: 'Add node 4 as a voter. It first joins as a learner: it gets the log but has no vote yet.' },
      { atMs: 825, caption: 'The configuration with learner 4 is an ordinary log entry; the leader sends node 4 the whole log.' },
      { atMs: 888, caption: 'Node 4 has caught up, so the leader promotes it: a second configuration entry makes it a voter (thesis §4.2.1).' },
      { atMs: 1300, inputs: [{ type: 'addVoter', node: 5 }], caption: 'Add node 5 the same way. One server at a time keeps every two majorities overlapping.' },
      { atMs: 1406, caption: 'Five voters now: a majority is three.' },
      { atMs: 1800, inputs: [{ type: 'removeServer', node: 1 }], caption: 'Remove node 1. The new configuration takes effect on each server as soon as it is in its log.' },
      { atMs: 1834, caption: 'Committed without node 1, which never hears of it and soon stops hearing heartbeats.' },
      { atMs: 2151, caption: 'Node 1 times out and asks for pre-votes, but the others still hear their leader and ignore it: no disruption.' },
    ],
    check: (s) => (s.leader === 3 && [2, 3, 4, 5].every((id) => s.nodes[id - 1].commit >= 8) ? null : 'node 3 should lead the new configuration {2, 3, 4, 5}'),
  },
  {
    id: 'snapshot',
    title: 'A slow follower gets a snapshot',
    options: { ...PLAYGROUND_OPTIONS, snapshotIntervalEntries: 10, snapshotTrailingEntries: 2 },
    endMs: 1600,
    steps: [
      { atMs: 0, caption: 'Every server snapshots its state every 10 applied entries and drops the log before it (keeping 2).' },
      { atMs: 500, inputs: [{ type: 'crash', node: 5 }], caption: 'Node 5 crashes.' },
      {
        atMs: 600,
        inputs: [put('k0', '0')],
        caption: 'Clients write 24 keys, one every 20 ms. The others commit them and take snapshots (the hatched block in their logs).',
      },
      // The other 23 writes: input-only steps, no caption of their own.
      ...Array.from({ length: 23 }, (_, k) => ({ atMs: 620 + k * 20, inputs: [put(`k${k + 1}`, String(k + 1))] })),
      { atMs: 1300, inputs: [{ type: 'restart', node: 5 }], caption: 'Node 5 restarts, far behind.' },
      { atMs: 1355, caption: 'It rejects the leader’s AppendEntries: it lacks the entries before them.' },
      { atMs: 1368, caption: 'Those entries are gone from the leader’s log, compacted into its snapshot: it sends InstallSnapshot (teal) instead.' },
      { atMs: 1386, caption: 'Node 5 installs the snapshot: its state jumps to index 20 in one step.' },
      { atMs: 1405, caption: 'Then ordinary AppendEntries bring it the few entries after the snapshot.' },
      { atMs: 1446, caption: 'Node 5 has caught up.' },
    ],
    check: (s) => (s.nodes.every((n) => n.commit === s.committed) && s.nodes[4].snapshot > 0 ? null : 'node 5 should have installed a snapshot and caught up'),
  },
  {
    id: 'leadership-transfer',
    title: 'Leadership transfer',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1300,
    steps: [
      { atMs: 0, caption: 'Node 3 becomes leader of term 2.' },
      { atMs: 600, inputs: [put('x', '1')], caption: 'x=1 is committed.' },
      { atMs: 800, inputs: [{ type: 'transferLeadership', node: 1 }], caption: 'We ask node 3 to hand leadership to node 1 (say, before restarting node 3 for an upgrade).' },
      { atMs: 801, caption: 'Node 3 stops taking writes, makes sure node 1 is up to date, and sends it TimeoutNow (purple).' },
      { atMs: 816, caption: 'Node 1 starts an election at once, skipping pre-vote: the leader asked it to (thesis §3.10).' },
      { atMs: 833, caption: 'The vote request carries term 3: node 3 steps down.' },
      { atMs: 845, caption: 'Node 1 leads term 3, with no period of waiting for timeouts.' },
    ],
    check: (s) => (s.leader === 1 && s.nodes[0].term === 3 ? null : 'node 1 should lead term 3'),
  },
  {
    id: 'read-modes',
    title: 'Read modes',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 2300,
    steps: [
      { atMs: 0, caption: 'Node 3 becomes leader of term 2. Reads do not go through the log: each server answers from what it has applied.' },
      { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1; it is committed everywhere.' },
      { atMs: 700, inputs: [read(5, 'linearizable')], caption: 'A linearizable read through follower 5: it asks leader 3 for a read index (ReadIndex, thesis §6.4).' },
      { atMs: 768, caption: 'Leader 3 confirmed with one heartbeat round that it still leads; node 5 answers x=1 once it has applied that index.' },
      { atMs: 800, inputs: [{ type: 'partition', side: [1, 3] }], caption: 'Leader 3 and node 1 are cut off from nodes 2, 4 and 5.' },
      { atMs: 820, inputs: [read(3, 'linearizable')], caption: 'A linearizable read at node 3 needs a majority to answer a heartbeat round: it waits.' },
      { atMs: 830, inputs: [read(3, 'lease')], caption: 'A lease read at node 3 answers x=1 at once: a majority heard from it within an election timeout, so no other leader can exist yet (§6.4.1).' },
      { atMs: 1055, caption: 'No majority for an election timeout: node 3 steps down (check-quorum), and its waiting read fails: leadership lost.' },
      { atMs: 1067, caption: 'Nodes 2, 4 and 5 elect node 4 leader of term 3.' },
      { atMs: 1500, inputs: [put('x', '2')], caption: 'A client writes x=2 through node 4; the majority commits it.' },
      { atMs: 1700, inputs: [read(3, 'stale')], caption: 'A stale read at node 3 still answers x=1: stale reads can go back in time.' },
      { atMs: 1800, inputs: [read(3, 'linearizable')], caption: 'A linearizable read at node 3 fails at once: it knows no leader to confirm with.' },
      { atMs: 1900, inputs: [read(4, 'linearizable')], caption: 'Through node 4, a linearizable read sees x=2 after one heartbeat round.' },
      { atMs: 2000, inputs: [{ type: 'heal' }], caption: 'The partition heals; nodes 1 and 3 catch up with term 3’s log.' },
      { atMs: 2250, inputs: [read(3, 'stale')], caption: 'Now even a stale read at node 3 answers x=2.' },
    ],
    check: (s) => {
      const seen = s.reads.map((r) => `${r.node}:${r.mode}:${r.status}:${r.value ?? r.error}`);
      const expected = [
        '5:linearizable:ok:1',
        '3:linearizable:failed:leadership lost before the read was confirmed',
        '3:lease:ok:1',
        '3:stale:ok:1',
        '3:linearizable:failed:no leader known',
        '4:linearizable:ok:2',
        '3:stale:ok:2',
      ];
      return JSON.stringify(seen) === JSON.stringify(expected) ? null : `reads answered ${JSON.stringify(seen)}`;
    },
  },
];

/** Scenarios the simulator cannot stage yet (none: membership, snapshots and transfer landed). */
export const PENDING_SCENARIOS = [];

/** The scenario with `id`, or undefined. */
export function findScenario(id) {
  return SCENARIOS.find((s) => s.id === id);
}

/** Schedules every input of `scenario` on a fresh `cluster`. */
export function scheduleScenario(cluster, scenario) {
  for (const step of scenario.steps) {
    for (const input of step.inputs ?? []) cluster.schedule(step.atMs, input);
  }
}

/** The steps that have a caption, in order. */
export function captionedSteps(scenario) {
  return scenario.steps.filter((step) => step.caption);
}

/** The caption in force at `timeMs`, with its position among the captioned steps. */
export function captionAt(scenario, timeMs) {
  let current = null;
  captionedSteps(scenario).forEach((step, k) => {
    if (step.atMs <= timeMs) current = { index: k, caption: step.caption, atMs: step.atMs };
  });
  return current;
}

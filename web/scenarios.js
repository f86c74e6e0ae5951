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

// ----- what captions claim, as predicates over `window.flotilla.state()` ----------------------
// Each captioned step has `truth(s)`: true when the picture at that moment shows what the
// caption says. The browser tests evaluate every one (flotilla.checkCaptions()).

const node = (s, id) => s.nodes[id - 1];
const others = (s, id) => s.nodes.filter((n) => n.id !== id);
/** `id` leads `term`: the only leader, in that term. */
const leads = (s, id, term) => s.leader === id && node(s, id).role === 'leader' && node(s, id).term === term && s.nodes.filter((n) => n.role === 'leader' && n.term === term).length === 1;
/** Messages of `kind` on the wire, from `from` (any if null), matching `match`. */
const wire = (s, kind, from = null, match = () => true) => s.wire.filter((m) => m.kind === kind && (from === null || m.from === from) && match(m));
const noLeader = (s) => s.nodes.every((n) => n.role !== 'leader');
const allFollowers = (s, ids) => ids.every((id) => node(s, id).role === 'follower');
const read_ = (s, k) => s.reads[k];
/** The same ids, in any order. */
const same = (ids, expected) => Array.isArray(ids) && ids.length === expected.length && expected.every((id) => ids.includes(id));

export const SCENARIOS = [
  {
    id: 'first-election',
    title: 'First election',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1000,
    steps: [
      { atMs: 0, caption: 'Five servers start as followers in term 1. None is leader yet.', truth: (s) => s.nodes.length === 5 && allFollowers(s, [1, 2, 3, 4, 5]) && s.nodes.every((n) => n.term === 1) && noLeader(s) },
      { atMs: 20, caption: 'Each waits a random election timeout (the arc around it) to hear from a leader.', truth: (s) => noLeader(s) && new Set(s.nodes.map((n) => n.timerTimeout)).size > 1 },
      { atMs: 196, caption: 'Node 3’s timer runs out first. It asks the others: would you vote for me? (a pre-vote, yellow ▲)', truth: (s) => node(s, 3).role === 'pre-candidate' && allFollowers(s, [1, 2, 4, 5]) && wire(s, 'PreVote', 3).length === 4 },
      { atMs: 229, caption: 'A majority would. Node 3 becomes a candidate for term 2 and requests votes (orange ◆).', truth: (s) => node(s, 3).role === 'candidate' && node(s, 3).term === 2 && wire(s, 'RequestVote', 3).length === 4 },
      { atMs: 240, caption: 'Each server grants one vote per term, to a candidate whose log is at least as complete.', truth: (s) => wire(s, 'RequestVoteResponse', null, (m) => m.to === 3 && m.flag === 1).length >= 1 && s.nodes.filter((n) => n.term === 2).every((n) => n.votedFor === 3) },
      { atMs: 256, caption: 'Three of five votes is a majority: node 3 is the leader of term 2 (★).', truth: (s) => leads(s, 3, 2) },
      { atMs: 283, caption: 'The leader appends a no-op entry; once a majority stores it, it is committed (solid).', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 2 && node(s, 3).lastTerm === 2 && node(s, 3).commit === 2 },
      { atMs: 320, caption: 'Heartbeats (grey •) every 50 ms keep the followers’ timers from running out.', truth: (s) => leads(s, 3, 2) && wire(s, 'Heartbeat', 3).length >= 1 },
      { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1. Only the leader accepts writes: it appends x=1 to its log.', truth: (s) => node(s, 3).last === 3 && node(s, 3).commit === 2 && others(s, 3).every((n) => n.last === 2) },
      { atMs: 629, caption: 'Stored on a majority, x=1 is committed (solid), and the leader applies it.', truth: (s) => node(s, 3).commit === 3 && node(s, 3).applied === 3 && others(s, 3).filter((n) => n.last === 3).length >= 2 && others(s, 3).every((n) => n.commit === 2) },
      { atMs: 670, caption: 'The next heartbeat carries the commit index: every server applies x=1.', truth: (s) => s.nodes.every((n) => n.commit === 3 && n.applied === 3) },
    ],
    check: (s) => (s.leader === 3 && s.nodes[2].term === 2 && s.committed >= 3 ? null : 'node 3 should lead term 2'),
  },
  {
    id: 'split-vote',
    title: 'Split vote',
    options: { ...PLAYGROUND_OPTIONS, nodes: 4, seed: 1 },
    endMs: 800,
    steps: [
      { atMs: 0, caption: 'Four servers: a leader needs three votes.', truth: (s) => s.nodes.length === 4 && noLeader(s) },
      { atMs: 100, inputs: [{ type: 'campaign', node: 1 }, { type: 'campaign', node: 3 }], caption: 'We force nodes 1 and 3 to time out at the same moment.', truth: (s) => node(s, 1).role === 'pre-candidate' && node(s, 3).role === 'pre-candidate' },
      { atMs: 132, caption: 'Both become candidates for term 2; each votes for itself.', truth: (s) => [1, 3].every((id) => node(s, id).role === 'candidate' && node(s, id).term === 2 && node(s, id).votedFor === id) },
      { atMs: 152, caption: 'Nodes 2 and 4 each vote for whichever request reached them first: 2 for node 3, 4 for node 1.', truth: (s) => node(s, 2).votedFor === 3 && node(s, 4).votedFor === 1 },
      { atMs: 170, caption: 'Two votes each: nobody can reach three. Both give up; term 2 has no leader.', truth: (s) => noLeader(s) && allFollowers(s, [1, 2, 3, 4]) && s.nodes.every((n) => n.term === 2) },
      { atMs: 369, caption: 'Random timeouts break the tie: node 2 times out first and asks for pre-votes for term 3.', truth: (s) => node(s, 2).role === 'pre-candidate' && wire(s, 'PreVote', 2, (m) => m.term === 3).length === 3 },
      { atMs: 434, caption: 'Node 2 wins term 3. Randomised timeouts make repeated splits unlikely (§5.2).', truth: (s) => leads(s, 2, 3) },
    ],
    check: (s) => (s.leader === 2 && s.nodes[1].term === 3 ? null : 'node 2 should lead term 3'),
  },
  {
    id: 'log-replication',
    title: 'Log replication',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1300,
    steps: [
      { atMs: 0, caption: 'Five servers start; node 3 will win the first election (see “First election”).', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 300, caption: 'Node 3 leads term 2. The logs below: one row per server, one box per entry, coloured by term.', truth: (s) => leads(s, 3, 2) && s.nodes.every((n) => n.last === 2) },
      { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1. The leader appends it to its log: hollow, not yet committed.', truth: (s) => node(s, 3).last === 3 && node(s, 3).commit === 2 },
      { atMs: 606, caption: 'AppendEntries (blue ■, with the entry count) carries it to every follower.', truth: (s) => [1, 2, 4, 5].every((id) => wire(s, 'AppendEntries', 3, (m) => m.to === id && m.entries === 1).length === 1) },
      { atMs: 615, caption: 'Followers check that their log matches the leader’s just before it, store it, and acknowledge.', truth: (s) => others(s, 3).every((n) => n.last === 3) && wire(s, 'AppendEntriesResponse', null, (m) => m.flag === 1).length === 4 },
      { atMs: 629, caption: 'A majority stores it: committed (solid). The leader applies it and tells the others.', truth: (s) => node(s, 3).commit === 3 && node(s, 3).applied === 3 },
      { atMs: 900, inputs: [put('y', '2'), put('z', '3')], caption: 'Two writes at once: the leader appends both to its log.', truth: (s) => node(s, 3).last === 5 && node(s, 3).commit === 3 },
      { atMs: 901, caption: 'It sends each follower two AppendEntries of one entry each, the second without waiting for the first to be acknowledged.', truth: (s) => [1, 2, 4, 5].every((id) => wire(s, 'AppendEntries', 3, (m) => m.to === id && m.entries === 1).length === 2) },
      { atMs: 912, caption: 'Messages can overtake each other: node 4 got the second first, does not have the entry before it, and rejects it (red centre).', truth: (s) => wire(s, 'AppendEntriesResponse', 4, (m) => m.to === 3 && m.flag === 0).length === 1 && node(s, 4).last === 3 },
      { atMs: 931, caption: 'The leader resends from node 4’s next index: both entries in one AppendEntries (2).', truth: (s) => wire(s, 'AppendEntries', 3, (m) => m.to === 4 && m.entries === 2).length === 1 },
      { atMs: 940, caption: 'Both committed. Under each follower, ▲ marks the leader’s nextIndex and the bar its matchIndex.', truth: (s) => node(s, 3).commit === 5 && s.progress.length === 4 },
    ],
    check: (s) => (s.committed >= 5 && s.nodes.every((n) => n.commit >= 5) ? null : 'entries up to 5 should be committed everywhere'),
  },
  {
    id: 'leader-crash',
    title: 'Leader crash',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 2300,
    steps: [
      { atMs: 0, caption: 'Five servers start; node 3 will win the first election and lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 800, inputs: [{ type: 'crash', node: 3 }], caption: 'Leader 3 crashes. Its heartbeats stop.', truth: (s) => node(s, 3).liveness === 'down' && node(s, 3).term === 2 && wire(s, 'Heartbeat', 3).length === 0 },
      { atMs: 820, caption: 'The followers’ timers run on (the arcs grow): nobody is telling them to wait.', truth: (s) => noLeader(s) && allFollowers(s, [1, 2, 4, 5]) && s.wire.length === 0 },
      { atMs: 999, caption: 'Node 4 times out first and asks for pre-votes.', truth: (s) => node(s, 4).role === 'pre-candidate' && wire(s, 'PreVote', 4).length === 4 },
      { atMs: 1029, caption: 'A majority would vote for it: node 4 becomes a candidate for term 3 and asks for votes.', truth: (s) => node(s, 4).role === 'candidate' && node(s, 4).term === 3 && wire(s, 'RequestVote', 4).length === 4 },
      { atMs: 1057, caption: 'Node 4 is the new leader (term 3), with votes from a majority of the five.', truth: (s) => leads(s, 4, 3) && s.nodes.filter((n) => n.votedFor === 4).length >= 3 },
      { atMs: 1400, inputs: [put('x', '1')], caption: 'Writes go on: four of five servers are plenty for a majority.', truth: (s) => leads(s, 4, 3) && node(s, 3).liveness === 'down' && node(s, 4).last > node(s, 4).commit },
      { atMs: 1800, inputs: [{ type: 'restart', node: 3 }], caption: 'Node 3 restarts from its disk, still believing it is term 2.', truth: (s) => node(s, 3).liveness === 'up' && node(s, 3).term === 2 && node(s, 3).role === 'follower' },
      { atMs: 1815, caption: 'The first heartbeat from node 4 carries term 3: node 3 takes term 3 and follows node 4.', truth: (s) => node(s, 3).term === 3 && node(s, 3).role === 'follower' && node(s, 3).commit < node(s, 4).commit },
      { atMs: 1829, caption: 'Node 3 lacks two entries; the leader sends both in one AppendEntries (2), and node 3 catches up.', truth: (s) => wire(s, 'AppendEntries', 4, (m) => m.to === 3 && m.entries === 2).length === 1 },
    ],
    check: (s) => (s.leader === 4 && s.nodes[2].role === 'follower' && s.nodes[2].commit >= 4 ? null : 'node 4 should lead; node 3 should follow and catch up'),
  },
  {
    id: 'minority-partition',
    title: 'Minority partition',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 2800,
    steps: [
      { atMs: 0, caption: 'Five servers start; node 3 will win the first election and lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 500, inputs: [put('a', '1')], caption: 'Node 3 leads term 2. A client writes a=1.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
      { atMs: 700, inputs: [{ type: 'partition', side: [3, 4] }], caption: 'a=1 is committed by all five. Then the network splits: leader 3 and node 4 on one side, nodes 1, 2, 5 on the other.', truth: (s) => s.nodes.every((n) => n.commit === 3) && s.cuts.length === 12 },
      { atMs: 750, inputs: [put('x', 'lost')], caption: 'A client writes x=lost to the old leader. It can reach node 4 only: 2 of 5, never committed.', truth: (s) => node(s, 3).last === 4 && node(s, 3).commit === 3 && wire(s, 'AppendEntries', 3).every((m) => m.to === 4) },
      { atMs: 890, caption: 'Node 3 hears only node 4: two of five. After a whole election timeout without a majority it steps down (check-quorum), still in term 2, before the majority side has even missed it.', truth: (s) => node(s, 3).role === 'follower' && node(s, 3).term === 2 && noLeader(s) && allFollowers(s, [1, 2, 5]) },
      { atMs: 931, caption: 'On the majority side, node 1 stops hearing a leader, times out and asks for pre-votes.', truth: (s) => node(s, 1).role === 'pre-candidate' && node(s, 3).role === 'follower' },
      { atMs: 1004, caption: 'Node 1 leads term 3 with votes from 2 and 5: three of five. Node 3, cut off, never hears of it and stays in term 2.', truth: (s) => leads(s, 1, 3) && node(s, 3).role === 'follower' && node(s, 3).term === 2 },
      { atMs: 1600, inputs: [put('y', '2')], caption: 'y=2 goes to node 1 and is committed by the majority side.', truth: (s) => leads(s, 1, 3) && node(s, 1).last === 5 },
      { atMs: 2200, inputs: [{ type: 'heal' }], caption: 'The partition heals.', truth: (s) => s.cuts.length === 0 && node(s, 1).commit === 5 && node(s, 3).commit === 3 },
      { atMs: 2218, caption: 'Node 3 learns term 3 from the leader’s heartbeat; soon its uncommitted x=lost is replaced by the leader’s log, and node 4’s too.', truth: (s) => node(s, 3).term === 3 && node(s, 3).role === 'follower' },
    ],
    check: (s) => (s.leader === 1 && s.nodes.every((n) => n.commit >= 5 && n.term === 3) ? null : 'node 1 should lead term 3 with everything committed everywhere'),
  },
  {
    id: 'figure-8',
    title: 'Figure 8: old-term entries',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1700,
    steps: [
      { atMs: 0, caption: 'Raft paper, Figure 8, staged: why a leader never commits an old-term entry by counting copies (§5.4.2).', truth: (s) => noLeader(s) },
      { atMs: 256, caption: 'Node 3 leads term 2.', truth: (s) => leads(s, 3, 2) },
      {
        atMs: 400,
        inputs: [
          { type: 'cutLink', from: 3, to: 1 },
          { type: 'cutLink', from: 3, to: 2 },
          { type: 'cutLink', from: 3, to: 5 },
        ],
        caption: 'We cut node 3’s links to nodes 1, 2 and 5.',
        truth: (s) => s.cuts.length === 3 && s.cuts.every(([from]) => from === 3),
      },
      { atMs: 401, inputs: [{ type: 'proposeTo', node: 3, data: 'A' }], caption: 'A client writes A to node 3: index 3, term 2. It reaches node 4 only.', truth: (s) => node(s, 3).last === 3 && node(s, 3).lastTerm === 2 && wire(s, 'AppendEntries', 3).every((m) => m.to === 4) && wire(s, 'AppendEntries', 3).length === 1 },
      { atMs: 440, inputs: [{ type: 'crash', node: 3 }, { type: 'pause', node: 4 }], caption: 'Node 3 crashes and node 4 is paused: the others never saw A.', truth: (s) => node(s, 3).liveness === 'down' && node(s, 4).liveness === 'paused' && node(s, 4).last === 3 && [1, 2, 5].every((id) => node(s, id).last === 2) },
      { atMs: 632, caption: 'Node 1 times out and asks for pre-votes for term 3.', truth: (s) => node(s, 1).role === 'pre-candidate' && wire(s, 'PreVote', 1, (m) => m.term === 3).length > 0 },
      {
        atMs: 701,
        inputs: [
          { type: 'cutLink', from: 1, to: 2 },
          { type: 'cutLink', from: 1, to: 4 },
          { type: 'cutLink', from: 1, to: 5 },
        ],
        caption: 'Node 1 wins term 3, and at that instant we cut its links: its term-3 no-op at index 3 stays on node 1 alone.',
        truth: (s) => leads(s, 1, 3) && node(s, 1).last === 3 && node(s, 1).lastTerm === 3 && wire(s, 'AppendEntries', 1).every((m) => m.to === 3),
      },
      { atMs: 731, inputs: [{ type: 'crash', node: 1 }], caption: 'Node 1 crashes. Index 3 holds A (term 2) on nodes 3 and 4, a term-3 entry on node 1.', truth: (s) => node(s, 1).liveness === 'down' && node(s, 1).lastTerm === 3 && node(s, 3).lastTerm === 2 && node(s, 4).lastTerm === 2 && node(s, 3).last === 3 && node(s, 4).last === 3 },
      {
        atMs: 901,
        inputs: [{ type: 'heal' }, { type: 'restart', node: 3 }, { type: 'resume', node: 4 }],
        caption: 'Links heal, node 3 restarts, node 4 resumes.',
        truth: (s) => s.cuts.length === 0 && node(s, 3).liveness === 'up' && node(s, 4).liveness === 'up',
      },
      { atMs: 1022, caption: 'Nodes 2 and 5 cannot win: nodes 3 and 4 hold a longer log (index 3) and refuse them.', truth: (s) => noLeader(s) && [2, 5].every((id) => node(s, id).last === 2) && [3, 4].every((id) => node(s, id).last === 3) },
      { atMs: 1440, caption: 'Node 4, which also holds A, wins term 4 and sends A together with its own term-4 no-op.', truth: (s) => leads(s, 4, 4) && node(s, 4).last === 4 && wire(s, 'AppendEntries', 4).length >= 1 },
      { atMs: 1505, caption: 'A commits only because the term-4 entry reached a majority. Had a leader counted copies of A alone, node 1 (last term 3) could still win and overwrite it (Figure 8d).', truth: (s) => node(s, 4).commit === 4 && s.nodes.filter((n) => n.last === 4).length >= 3 && node(s, 1).lastTerm === 3 },
      { atMs: 1510, inputs: [{ type: 'restart', node: 1 }], caption: 'Node 1 restarts: it learns term 4 and its stray term-3 entry is replaced by A.', truth: (s) => node(s, 1).liveness === 'up' },
    ],
    check: (s) => (s.leader === 4 && s.nodes.every((n) => n.commit >= 4 && n.term === 4) ? null : 'node 4 should lead term 4 with A committed everywhere'),
  },
  {
    id: 'pre-vote',
    title: 'Pre-vote: a rejoining node does not disrupt',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 3200,
    steps: [
      { atMs: 0, caption: 'Five servers start; node 3 will lead term 2. Pre-vote is on (the default).', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 600, inputs: [{ type: 'partition', side: [5] }], caption: 'Node 3 leads term 2. Node 5 is cut off from everyone.', truth: (s) => leads(s, 3, 2) && s.cuts.length === 8 },
      { atMs: 913, caption: 'Node 5 hears no leader and times out. It asks for pre-votes first: nobody answers.', truth: (s) => node(s, 5).role === 'pre-candidate' && node(s, 5).term === 2 && wire(s, 'PreVote', 5).length === 0 && wire(s, 'PreVoteResponse').length === 0 },
      { atMs: 1500, caption: 'Without a majority of pre-votes it never starts an election, so its term stays 2.', truth: (s) => node(s, 5).term === 2 && leads(s, 3, 2) },
      { atMs: 2600, inputs: [{ type: 'heal' }], caption: 'The network heals.', truth: (s) => s.cuts.length === 0 },
      { atMs: 2615, caption: 'Node 5 simply rejoins as a follower. The leader was never disturbed (thesis §9.6).', truth: (s) => node(s, 5).role === 'follower' && leads(s, 3, 2) },
    ],
    check: (s) => (s.leader === 3 && s.nodes.every((n) => n.term === 2) ? null : 'node 3 should still lead term 2'),
  },
  {
    id: 'no-pre-vote',
    title: '…and without pre-vote',
    options: { ...PLAYGROUND_OPTIONS, preVote: false },
    endMs: 3200,
    steps: [
      { atMs: 0, caption: 'The same run with pre-vote off. Node 3 will lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 600, inputs: [{ type: 'partition', side: [5] }], caption: 'Node 3 leads term 2. Node 5 is cut off from everyone.', truth: (s) => leads(s, 3, 2) && s.cuts.length === 8 },
      { atMs: 932, caption: 'Node 5 times out and starts a real election: term 3. Nobody answers.', truth: (s) => node(s, 5).role === 'candidate' && node(s, 5).term === 3 },
      { atMs: 1300, caption: 'Each timeout raises its term again: 4, 5, 6…', truth: (s) => node(s, 5).role === 'candidate' && node(s, 5).term >= 4 && leads(s, 3, 2) },
      { atMs: 2600, inputs: [{ type: 'heal' }], caption: 'The network heals.', truth: (s) => s.cuts.length === 0 && node(s, 5).term > 5 },
      { atMs: 2658, caption: 'Node 5’s high term reaches the leader, which must step down: a needless election.', truth: (s) => node(s, 3).role === 'follower' && node(s, 3).term === node(s, 5).term && noLeader(s) },
      { atMs: 2853, caption: 'A new leader in term 10. Pre-vote exists to avoid exactly this.', truth: (s) => s.leader !== null && node(s, s.leader).term === 10 },
    ],
    check: (s) => (s.leader !== null && s.nodes[2].term >= 9 ? null : 'the cluster should have been forced into a high term'),
  },
  {
    id: 'membership-change',
    title: 'Membership change',
    options: { ...PLAYGROUND_OPTIONS, votersInitial: 3 },
    endMs: 2600,
    steps: [
      { atMs: 0, caption: 'Five servers, but only 1, 2 and 3 are in the cluster; 4 and 5 wait, empty and faint.', truth: (s) => [1, 2, 3].every((id) => node(s, id).member === 'voter') && [4, 5].every((id) => node(s, id).member === 'none' && node(s, id).last === 0) },
      { atMs: 254, caption: 'Node 3 leads term 2: two votes of three are a majority.', truth: (s) => leads(s, 3, 2) && JSON.stringify(s.config.voters) === '[1,2,3]' },
      { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1; the three voters will commit it.', truth: (s) => node(s, 3).last === 3 && node(s, 4).last === 0 },
      { atMs: 800, inputs: [{ type: 'addVoter', node: 4 }], caption: 'Add node 4 as a voter. It first joins as a learner: the leader’s configuration lists it, it gets the log, but it has no vote yet.', truth: (s) => s.config.learners.includes(4) && !s.config.voters.includes(4) },
      { atMs: 825, caption: 'The configuration with learner 4 is an ordinary log entry. Node 4 itself shows “not a member” until the entry reaches it: the leader sends it the whole log, but its log does not match yet (red centre).', truth: (s) => s.config.learners.includes(4) && node(s, 4).member === 'none' && wire(s, 'AppendEntriesResponse', 4, (m) => m.flag === 0).length === 1 },
      { atMs: 888, caption: 'Node 4 has caught up, so the leader promotes it: a second configuration entry makes it a voter (thesis §4.2.1).', truth: (s) => s.config.voters.includes(4) && node(s, 4).member === 'voter' },
      { atMs: 1300, inputs: [{ type: 'addVoter', node: 5 }], caption: 'Add node 5 the same way. One server at a time keeps every two majorities overlapping.', truth: (s) => s.config.learners.includes(5) },
      { atMs: 1406, caption: 'Five voters now: a majority is three.', truth: (s) => s.config.voters.length === 5 && s.nodes.every((n) => n.member === 'voter') },
      { atMs: 1800, inputs: [{ type: 'removeServer', node: 1 }], caption: 'Remove node 1. The new configuration takes effect on each server as soon as it is in its log.', truth: (s) => !s.config.voters.includes(1) && node(s, 1).member === 'voter' },
      { atMs: 1834, caption: 'Committed without node 1, which never hears of it and soon stops hearing heartbeats.', truth: (s) => node(s, 3).commit === 8 && node(s, 1).last === 7 && node(s, 1).member === 'voter' },
      { atMs: 2151, caption: 'Node 1 times out and asks for pre-votes, but the others still hear their leader and ignore it: no disruption.', truth: (s) => node(s, 1).role === 'pre-candidate' && leads(s, 3, 2) },
    ],
    check: (s) => (s.leader === 3 && [2, 3, 4, 5].every((id) => s.nodes[id - 1].commit >= 8) ? null : 'node 3 should lead the new configuration {2, 3, 4, 5}'),
  },
  {
    id: 'catch-up',
    title: 'A new server catches up before it votes',
    options: { ...PLAYGROUND_OPTIONS, votersInitial: 3 },
    endMs: 1500,
    steps: [
      {
        atMs: 0,
        inputs: [
          { type: 'setLink', from: 3, to: 4, latencyMsMin: 80, latencyMsMax: 90 },
          { type: 'setLink', from: 4, to: 3, latencyMsMin: 80, latencyMsMax: 90 },
        ],
        caption: 'Voters 1, 2 and 3; node 4 waits outside, empty. The link between node 3 (soon leader) and node 4 is slow: 80–90 ms each way.',
        truth: (s) => noLeader(s) && [1, 2, 3].every((id) => node(s, id).member === 'voter') && node(s, 4).member === 'none' && node(s, 4).last === 0,
      },
      { atMs: 400, inputs: [put('k0', '0')], caption: 'Node 3 leads term 2. Clients write 30 keys, one every 10 ms.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
      // The other 29 writes: input-only steps, no caption of their own.
      ...Array.from({ length: 29 }, (_, k) => ({ atMs: 410 + k * 10, inputs: [put(`k${k + 1}`, String(k + 1))] })),
      { atMs: 950, caption: 'The three voters have committed 32 entries. Node 4 has none of them.', truth: (s) => [1, 2, 3].every((id) => node(s, id).commit === 32) && node(s, 4).last === 0 },
      { atMs: 1000, inputs: [{ type: 'addVoter', node: 4 }], caption: 'We add node 4 as a voter. Were it a voter at once, a majority of four would be three: with node 4 still empty, losing any one of nodes 1–3 would stall every write until node 4 caught up. So it joins as a learner first (thesis §4.2.1).', truth: (s) => same(s.config.voters, [1, 2, 3]) && same(s.config.learners, [4]) && node(s, 3).last === 33 },
      { atMs: 1090, caption: 'The leader’s first AppendEntries reaches node 4 80–90 ms later; its log does not match (it is empty), so it rejects it (red centre).', truth: (s) => wire(s, 'AppendEntriesResponse', 4, (m) => m.to === 3 && m.flag === 0).length === 1 && node(s, 4).last === 0 },
      { atMs: 1100, inputs: [put('y', '1')], caption: 'Meanwhile a client writes y=1.', truth: (s) => node(s, 3).last === 34 && node(s, 4).last === 0 },
      { atMs: 1140, caption: 'y=1 is committed by 2 of the 3 voters. The learner does not count, so its slow link delays nobody.', truth: (s) => node(s, 3).commit === 34 && node(s, 4).last === 0 && same(s.config.voters, [1, 2, 3]) },
      { atMs: 1180, caption: 'The rejection came back: the leader sends node 4 its whole log, 34 entries, in one AppendEntries.', truth: (s) => wire(s, 'AppendEntries', 3, (m) => m.to === 4 && m.entries === 34 && m.index === 0).length === 1 },
      { atMs: 1260, caption: 'Node 4 stores the 34 entries: it now sees itself as a learner. Its acknowledgment takes another 80–90 ms to reach the leader.', truth: (s) => node(s, 4).last === 34 && node(s, 4).member === 'learner' && same(s.config.voters, [1, 2, 3]) },
      { atMs: 1360, caption: 'The acknowledgment arrives: node 4 holds everything the leader has. Only now does the leader promote it, with a second configuration entry: voters {1, 2, 3, 4}.', truth: (s) => same(s.config.voters, [1, 2, 3, 4]) && s.config.learners.length === 0 && node(s, 3).last === 35 && node(s, 4).last === 34 },
      { atMs: 1400, caption: 'Three of the four voters (1, 2, 3) stored it: committed.', truth: (s) => node(s, 3).commit === 35 && node(s, 4).last === 34 },
      { atMs: 1440, caption: 'The entry reaches node 4 too: it is a voter, with a log as complete as the others’.', truth: (s) => node(s, 4).member === 'voter' && node(s, 4).last === 35 },
    ],
    check: (s) => (s.leader === 3 && same(s.config.voters, [1, 2, 3, 4]) && s.nodes[3].last === 35 ? null : 'node 4 should be a voter, caught up to 35'),
  },
  {
    id: 'log-compaction',
    title: 'Log compaction: the snapshot boundary moves',
    options: { ...PLAYGROUND_OPTIONS, snapshotIntervalEntries: 10, snapshotTrailingEntries: 2 },
    endMs: 1500,
    steps: [
      { atMs: 0, caption: 'Each server snapshots its state every 10 applied entries and drops the log before it, keeping the last 2 entries for slow followers (thesis §5.1). Node 3 will lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.snapshot === 0 && n.last === 1) },
      { atMs: 600, inputs: [put('k0', '0')], caption: 'Clients write 22 keys, one every 30 ms. The logs grow.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 && s.nodes.every((n) => n.snapshot === 0) },
      // The other 21 writes: input-only steps, no caption of their own.
      ...Array.from({ length: 21 }, (_, k) => ({ atMs: 630 + k * 30, inputs: [put(`k${k + 1}`, String(k + 1))] })),
      { atMs: 840, caption: 'Leader 3 has applied 10 entries: it snapshots its key-value state and discards its log up to index 8 (the hatched block), keeping entries 9 and 10.', truth: (s) => node(s, 3).applied === 10 && node(s, 3).snapshot === 8 && others(s, 3).every((n) => n.snapshot === 0) },
      { atMs: 860, caption: 'Each follower does the same when it has applied 10 entries, on its own: compaction needs no messages and no agreement.', truth: (s) => s.nodes.every((n) => n.snapshot === 8 && n.applied >= 10) },
      { atMs: 1160, caption: 'At 20 applied entries the boundary moves again: node 3 compacts up to index 18. Its log now holds only what came after.', truth: (s) => node(s, 3).applied === 20 && node(s, 3).snapshot === 18 && others(s, 3).every((n) => n.snapshot === 8) },
      { atMs: 1180, caption: 'The followers follow suit. The logs stay short however many writes come; the snapshot stands in for everything before it.', truth: (s) => s.nodes.every((n) => n.snapshot === 18) },
      { atMs: 1320, caption: 'All 24 entries are committed and applied everywhere. Every log starts after index 18.', truth: (s) => s.nodes.every((n) => n.commit === 24 && n.applied === 24 && n.snapshot === 18) },
      { atMs: 1400, inputs: [{ type: 'snapshot', node: 1 }], caption: 'A server can also snapshot on demand: node 1 snapshots at index 24 now and compacts up to 22. The others keep their own boundary.', truth: (s) => node(s, 1).snapshot === 22 && others(s, 1).every((n) => n.snapshot === 18) },
    ],
    check: (s) => (s.nodes.every((n) => n.commit === 24) && s.nodes[0].snapshot === 22 && s.nodes[2].snapshot === 18 ? null : 'every server should hold 24 entries, compacted to 18 (node 1: 22)'),
  },
  {
    id: 'snapshot',
    title: 'A slow follower gets a snapshot',
    options: { ...PLAYGROUND_OPTIONS, snapshotIntervalEntries: 10, snapshotTrailingEntries: 2 },
    endMs: 1600,
    steps: [
      { atMs: 0, caption: 'Every server snapshots its state every 10 applied entries and drops the log before it (keeping 2).', truth: (s) => s.nodes.every((n) => n.snapshot === 0) },
      { atMs: 500, inputs: [{ type: 'crash', node: 5 }], caption: 'Node 5 crashes.', truth: (s) => node(s, 5).liveness === 'down' },
      {
        atMs: 600,
        inputs: [put('k0', '0')],
        caption: 'Clients write 24 keys, one every 20 ms. The others commit them and take snapshots (the hatched block in their logs).',
        truth: (s) => node(s, 3).last === 3,
      },
      // The other 23 writes: input-only steps, no caption of their own.
      ...Array.from({ length: 23 }, (_, k) => ({ atMs: 620 + k * 20, inputs: [put(`k${k + 1}`, String(k + 1))] })),
      { atMs: 1300, inputs: [{ type: 'restart', node: 5 }], caption: 'Node 5 restarts, far behind.', truth: (s) => node(s, 5).liveness === 'up' && node(s, 5).last === 2 && [1, 2, 3, 4].every((id) => node(s, id).snapshot > 2) },
      { atMs: 1343, caption: 'The entries node 5 lacks are gone from the leader’s log, compacted into its snapshot: the leader sends InstallSnapshot (teal ⬢) instead of AppendEntries.', truth: (s) => wire(s, 'InstallSnapshot', 3, (m) => m.to === 5).length === 1 },
      { atMs: 1360, caption: 'Node 5 installs the snapshot: its state jumps to index 20 in one step.', truth: (s) => node(s, 5).snapshot === 20 && node(s, 5).applied === 20 },
      { atMs: 1380, caption: 'Then ordinary AppendEntries bring it the few entries after the snapshot.', truth: (s) => wire(s, 'AppendEntries', 3, (m) => m.to === 5 && m.entries > 0).length >= 1 },
      { atMs: 1446, caption: 'Node 5 has caught up.', truth: (s) => node(s, 5).commit === node(s, 3).commit && node(s, 5).applied === node(s, 3).commit },
    ],
    check: (s) => (s.nodes.every((n) => n.commit === s.committed) && s.nodes[4].snapshot > 0 ? null : 'node 5 should have installed a snapshot and caught up'),
  },
  {
    id: 'snapshot-chunks',
    title: 'InstallSnapshot in chunks',
    options: { ...PLAYGROUND_OPTIONS, snapshotIntervalEntries: 10, snapshotTrailingEntries: 2 },
    endMs: 1400,
    steps: [
      { atMs: 0, caption: 'Servers snapshot every 10 applied entries. Node 3 will lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.snapshot === 0) },
      { atMs: 500, inputs: [{ type: 'crash', node: 5 }], caption: 'Node 3 leads term 2. Node 5 crashes.', truth: (s) => leads(s, 3, 2) && node(s, 5).liveness === 'down' },
      { atMs: 600, inputs: [put('k0', '0'.repeat(200))], caption: 'Clients write 12 keys with 200-byte values, one every 20 ms. At 10 applied entries the others snapshot and compact their logs.', truth: (s) => node(s, 3).last === 3 },
      // The other 11 writes: input-only steps, no caption of their own.
      ...Array.from({ length: 11 }, (_, k) => ({ atMs: 620 + k * 20, inputs: [put(`k${k + 1}`, String((k + 1) % 10).repeat(200))] })),
      { atMs: 1100, inputs: [{ type: 'restart', node: 5 }], caption: 'Node 5 restarts, far behind: the entries it lacks are compacted away on the leader.', truth: (s) => node(s, 5).liveness === 'up' && node(s, 5).last === 2 && [1, 2, 3, 4].every((id) => node(s, id).snapshot === 8 && node(s, id).commit === 14) },
      { atMs: 1130, caption: 'The snapshot at index 10 holds eight 200-byte values: too big for one message. The leader sends its first chunk (teal ⬢; the simulator cuts snapshots into 512-byte chunks).', truth: (s) => wire(s, 'InstallSnapshot', 3, (m) => m.to === 5 && m.index === 10).length === 1 && node(s, 5).snapshot === 0 },
      { atMs: 1150, caption: 'Node 5 stores the chunk and acknowledges it. The leader waits for that answer before it sends the next: one chunk in flight at a time.', truth: (s) => wire(s, 'InstallSnapshotResponse', 5, (m) => m.to === 3).length === 1 && wire(s, 'InstallSnapshot', 3).length === 0 && node(s, 5).snapshot === 0 },
      { atMs: 1160, caption: 'The next chunk goes out. Node 5’s state is still untouched: a half-received snapshot is only staged, never applied.', truth: (s) => wire(s, 'InstallSnapshot', 3, (m) => m.to === 5).length === 1 && node(s, 5).snapshot === 0 && node(s, 5).applied === 2 },
      { atMs: 1225, caption: 'Chunk by chunk, each acknowledged before the next: this is the fourth and last.', truth: (s) => wire(s, 'InstallSnapshot', 3, (m) => m.to === 5).length === 1 && node(s, 5).snapshot === 0 },
      { atMs: 1240, caption: 'With the last chunk in, node 5 installs the snapshot in one step: its state jumps to index 10.', truth: (s) => node(s, 5).snapshot === 10 && node(s, 5).applied === 10 && node(s, 5).last === 10 },
      { atMs: 1260, caption: 'AppendEntries (4) brings the entries after the snapshot, 11 to 14, still in the leader’s log.', truth: (s) => wire(s, 'AppendEntries', 3, (m) => m.to === 5 && m.entries === 4 && m.index === 10).length >= 1 },
      { atMs: 1280, caption: 'Node 5 has caught up.', truth: (s) => node(s, 5).commit === 14 && node(s, 5).applied === 14 && node(s, 5).last === 14 },
    ],
    check: (s) => (s.nodes.every((n) => n.commit === 14) && s.nodes[4].snapshot === 10 ? null : 'node 5 should have installed the snapshot at 10 and caught up to 14'),
  },
  {
    id: 'leadership-transfer',
    title: 'Leadership transfer',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1300,
    steps: [
      { atMs: 0, caption: 'Five servers start; node 3 will lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 600, inputs: [put('x', '1')], caption: 'Node 3 leads term 2. A client writes x=1.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
      { atMs: 800, inputs: [{ type: 'transferLeadership', node: 1 }], caption: 'x=1 is committed. We ask node 3 to hand leadership to node 1 (say, before restarting node 3 for an upgrade).', truth: (s) => s.nodes.every((n) => n.commit === 3) },
      { atMs: 801, caption: 'Node 1 is up to date, so node 3 stops taking writes and sends it TimeoutNow (purple ★).', truth: (s) => wire(s, 'TimeoutNow', 3, (m) => m.to === 1).length === 1 && node(s, 1).last === node(s, 3).last },
      { atMs: 816, caption: 'Node 1 starts an election at once, for term 3, skipping pre-vote: the leader asked it to (thesis §3.10).', truth: (s) => node(s, 1).role === 'candidate' && node(s, 1).term === 3 },
      { atMs: 833, caption: 'The vote request carries term 3: node 3 steps down.', truth: (s) => node(s, 3).role === 'follower' && node(s, 3).term === 3 },
      { atMs: 845, caption: 'Node 1 leads term 3, with no period of waiting for timeouts.', truth: (s) => leads(s, 1, 3) },
    ],
    check: (s) => (s.leader === 1 && s.nodes[0].term === 3 ? null : 'node 1 should lead term 3'),
  },
  {
    id: 'read-modes',
    title: 'Read modes',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 2300,
    steps: [
      { atMs: 0, caption: 'Node 3 will lead term 2. Reads do not go through the log: each server answers from what it has applied.', truth: (s) => noLeader(s) },
      { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1; it is committed everywhere.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
      { atMs: 700, inputs: [read(5, 'linearizable')], caption: 'A linearizable read through follower 5: it asks leader 3 for a read index (ReadIndex, pink ✚, thesis §6.4).', truth: (s) => s.nodes.every((n) => n.applied === 3) && wire(s, 'ReadIndex', 5, (m) => m.to === 3).length === 1 && read_(s, 0).status === 'pending' },
      { atMs: 768, caption: 'Leader 3 confirmed with one heartbeat round that it still leads; node 5 answers x=1 once it has applied that index.', truth: (s) => read_(s, 0).status === 'ok' && read_(s, 0).value === '1' },
      { atMs: 800, inputs: [{ type: 'partition', side: [1, 3] }], caption: 'Leader 3 and node 1 are cut off from nodes 2, 4 and 5.', truth: (s) => s.cuts.length === 12 && leads(s, 3, 2) },
      { atMs: 820, inputs: [read(3, 'linearizable')], caption: 'A linearizable read at node 3 needs a majority to answer a heartbeat round: it waits.', truth: (s) => read_(s, 1).status === 'pending' },
      { atMs: 830, inputs: [read(3, 'lease')], caption: 'A lease read at node 3 answers x=1 at once: a majority heard from it within an election timeout, so no other leader can exist yet (§6.4.1).', truth: (s) => read_(s, 2).status === 'ok' && read_(s, 2).value === '1' && read_(s, 1).status === 'pending' },
      { atMs: 995, caption: 'No majority for an election timeout: node 3 steps down (check-quorum), and its waiting read fails: leadership lost.', truth: (s) => node(s, 3).role === 'follower' && read_(s, 1).status === 'failed' },
      { atMs: 1082, caption: 'Nodes 2, 4 and 5 elect node 4 leader of term 3.', truth: (s) => leads(s, 4, 3) },
      { atMs: 1500, inputs: [put('x', '2')], caption: 'A client writes x=2 through node 4; the majority commits it.', truth: (s) => leads(s, 4, 3) && node(s, 4).last === 5 },
      { atMs: 1700, inputs: [read(3, 'stale')], caption: 'A stale read at node 3 still answers x=1: stale reads can go back in time.', truth: (s) => node(s, 4).commit === 5 && read_(s, 3).status === 'ok' && read_(s, 3).value === '1' },
      { atMs: 1800, inputs: [read(3, 'linearizable')], caption: 'A linearizable read at node 3 fails at once: it knows no leader to confirm with.', truth: (s) => read_(s, 4).status === 'failed' },
      { atMs: 1900, inputs: [read(4, 'linearizable')], caption: 'Through node 4, a linearizable read sees x=2 after one heartbeat round.', truth: (s) => read_(s, 5).status === 'pending' },
      { atMs: 2000, inputs: [{ type: 'heal' }], caption: 'It answered x=2. The partition heals; nodes 1 and 3 catch up with term 3’s log.', truth: (s) => read_(s, 5).status === 'ok' && read_(s, 5).value === '2' && s.cuts.length === 0 },
      { atMs: 2250, inputs: [read(3, 'stale')], caption: 'Now even a stale read at node 3 answers x=2.', truth: (s) => read_(s, 6).status === 'ok' && read_(s, 6).value === '2' },
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
  {
    id: 'lease-reads',
    title: 'Lease reads and their clock margin',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1100,
    steps: [
      { atMs: 0, caption: 'Five servers; node 3 will lead term 2. A lease lets a leader answer reads alone for a while after a majority last answered it (thesis §6.4.1).', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 600, inputs: [put('x', '1')], caption: 'Node 3 leads term 2. A client writes x=1.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
      { atMs: 700, inputs: [read(3, 'lease')], caption: 'A lease read at leader 3 answers x=1 at once, without sending a message: a majority answered one of its heartbeat rounds recently enough.', truth: (s) => read_(s, 0).status === 'ok' && read_(s, 0).value === '1' && read_(s, 0).answeredMs === 700 && s.wire.length === 0 },
      { atMs: 760, caption: 'Each heartbeat round that a majority answers renews the lease, counted from when the round was sent: one election timeout (200 ms) minus a margin for clocks that run at different speeds (2 ticks, 20 ms), so 180 ms.', truth: (s) => wire(s, 'Heartbeat', 3).length === 4 },
      { atMs: 800, inputs: [{ type: 'partition', side: [3] }], caption: 'The round sent at 760 ms was answered by all four followers. Now node 3 is cut off from everyone; it does not know yet.', truth: (s) => leads(s, 3, 2) && s.cuts.length === 8 && s.wire.length === 0 },
      { atMs: 810, inputs: [read(3, 'lease')], caption: 'A lease read at node 3 still answers x=1 at once. Safe: every follower that answered the 760 ms round refuses to vote for anyone else for an election timeout after hearing from node 3, so no other leader can exist yet.', truth: (s) => read_(s, 1).status === 'ok' && read_(s, 1).value === '1' && read_(s, 1).answeredMs === 810 && s.cuts.length === 8 },
      { atMs: 950, inputs: [read(3, 'lease')], caption: 'The lease ran out at 940 ms (760 + 180). Node 3 no longer answers alone: the read waits for a heartbeat round that a majority must answer, and none can.', truth: (s) => leads(s, 3, 2) && read_(s, 2).status === 'pending' },
      { atMs: 985, caption: 'Node 3 steps down (check-quorum) and the waiting read fails: no stale answer was given.', truth: (s) => node(s, 3).role === 'follower' && read_(s, 2).status === 'failed' && noLeader(s) },
      { atMs: 1000, caption: 'Node 4’s election timer runs out, more than an election timeout after it last heard from node 3. It asks for pre-votes.', truth: (s) => node(s, 4).role === 'pre-candidate' && noLeader(s) },
      { atMs: 1060, caption: 'Node 4 leads term 3, well after node 3’s lease ended. Had the clocks drifted apart by more than the margin, a lease could outlast the followers’ promise. This run’s clocks keep exact time; New run’s “Drifting clocks” slows some by 20%, more than this margin (2 ticks of 20).', truth: (s) => leads(s, 4, 3) && s.reads.filter((r) => r.status === 'ok').every((r) => r.answeredMs < 940) },
    ],
    check: (s) => {
      const seen = s.reads.map((r) => `${r.askedMs}:${r.status}`).join(' ');
      return seen === '700:ok 810:ok 950:failed' && s.leader === 4 ? null : `reads answered ${seen}, leader ${s.leader}`;
    },
  },
  {
    id: 'log-repair',
    title: 'Log repair: conflicting entries are overwritten',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 2600,
    steps: [
      { atMs: 0, caption: 'Five servers start; node 3 will lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 600, inputs: [{ type: 'partition', side: [3] }], caption: 'Node 3 leads term 2. Now it is cut off from everyone.', truth: (s) => leads(s, 3, 2) && s.cuts.length === 8 },
      {
        atMs: 610,
        inputs: [
          { type: 'proposeTo', node: 3, data: 'a' },
          { type: 'proposeTo', node: 3, data: 'b' },
          { type: 'proposeTo', node: 3, data: 'c' },
        ],
        caption: 'Clients write a, b and c to node 3. It appends them at indexes 3–5 (term 2), but nobody else gets them: they cannot commit.',
        truth: (s) => node(s, 3).last === 5 && node(s, 3).lastTerm === 2 && node(s, 3).commit === 2 && others(s, 3).every((n) => n.last === 2),
      },
      { atMs: 1000, caption: 'The other four elect node 4 leader of term 3; node 3 stepped down (check-quorum) but keeps its entries.', truth: (s) => leads(s, 4, 3) && node(s, 3).role !== 'leader' && node(s, 3).last === 5 },
      { atMs: 1300, inputs: [put('y', '1'), put('z', '2')], caption: 'The new leader takes writes of its own: its log has term-3 entries at indexes 3–5, node 3’s has term-2 ones.', truth: (s) => node(s, 4).last === 5 && node(s, 4).lastTerm === 3 && node(s, 3).last === 5 && node(s, 3).lastTerm === 2 },
      { atMs: 1500, inputs: [{ type: 'crash', node: 4 }], caption: 'They are committed on the majority. Then leader 4 crashes.', truth: (s) => node(s, 4).liveness === 'down' && [1, 2, 5].every((id) => node(s, id).commit === 5) },
      { atMs: 1864, caption: 'Node 1 wins term 4 (nodes 2 and 5 vote for it) and appends its no-op at index 6.', truth: (s) => leads(s, 1, 4) && node(s, 1).last === 6 && node(s, 1).lastTerm === 4 },
      { atMs: 2000, inputs: [{ type: 'heal' }], caption: 'The network heals. Node 3 still holds a, b, c at indexes 3–5.', truth: (s) => s.cuts.length === 0 && node(s, 3).last === 5 && node(s, 3).lastTerm === 2 },
      { atMs: 2031, caption: 'Node 3 hears term 4 from the leader’s heartbeat and follows node 1.', truth: (s) => node(s, 3).term === 4 && node(s, 3).role === 'follower' && node(s, 3).lastTerm === 2 },
      { atMs: 2050, caption: 'Leader 1’s nextIndex for node 3 (▲) is 6: it sends entry 6, saying the entry before it is index 5 of term 3.', truth: (s) => s.progress.find((p) => p.id === 3)?.next === 6 && wire(s, 'AppendEntries', 1, (m) => m.to === 3 && m.entries === 1).length === 1 },
      { atMs: 2065, caption: 'Node 3’s index 5 is from term 2, so the logs do not match there: it rejects the message (red centre).', truth: (s) => wire(s, 'AppendEntriesResponse', 3, (m) => m.to === 1 && m.flag === 0).length === 1 && node(s, 3).lastTerm === 2 },
      { atMs: 2077, caption: 'The rejection says where node 3’s log stops matching, so the leader backs nextIndex off to 3 (▲) and resends entries 3–6 (4).', truth: (s) => s.progress.find((p) => p.id === 3)?.next === 3 && wire(s, 'AppendEntries', 1, (m) => m.to === 3 && m.entries === 4).length === 1 },
      { atMs: 2095, caption: 'Node 3 deletes its conflicting entries a, b, c and takes the leader’s instead (§5.3). They were never committed, so nothing committed is lost.', truth: (s) => node(s, 3).last === 6 && node(s, 3).lastTerm === 4 && node(s, 3).commit === 6 },
    ],
    check: (s) => (s.leader === 1 && s.nodes.filter((n) => n.liveness === 'up').every((n) => n.term === 4 && n.commit === s.committed && n.lastTerm === 4) ? null : 'node 1 should lead term 4 with every running node on its log'),
  },
  {
    id: 'check-quorum',
    title: 'Check-quorum: a cut-off leader steps down',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1400,
    steps: [
      { atMs: 0, caption: 'Five servers start; node 3 will lead term 2. Check-quorum is on (the default).', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 600, inputs: [{ type: 'partition', side: [3] }], caption: 'Node 3 leads term 2. Now it is cut off from everyone: nobody can tell it that anything changed.', truth: (s) => leads(s, 3, 2) && s.cuts.length === 8 },
      { atMs: 700, caption: 'Node 3 still leads and sends heartbeats, but no answer comes back.', truth: (s) => node(s, 3).role === 'leader' && wire(s, 'HeartbeatResponse', null, (m) => m.to === 3).length === 0 },
      { atMs: 790, caption: 'An election timeout since a majority last answered: node 3 steps down on its own (check-quorum), still in term 2, so clients stop sending it writes it could never commit.', truth: (s) => node(s, 3).role === 'follower' && node(s, 3).term === 2 && noLeader(s) },
      { atMs: 848, caption: 'On the other side, the four elect node 4 leader of term 3. Node 3 cannot hear of it and stays a follower in term 2: it stepped down before anyone else was elected.', truth: (s) => leads(s, 4, 3) && node(s, 3).role === 'follower' && node(s, 3).term === 2 },
    ],
    check: (s) => (s.nodes[2].role !== 'leader' && s.leader === 4 ? null : 'node 3 should have stepped down'),
  },
  {
    id: 'persistence',
    title: 'Persistence: a vote survives a crash',
    options: { ...PLAYGROUND_OPTIONS, preVote: false, checkQuorum: false },
    endMs: 340,
    steps: [
      { atMs: 0, caption: 'Before it answers a vote request, a server writes its term and its vote to disk (thesis §3.8). Pre-vote and check-quorum are off here, so nothing else stops a second vote in one term.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1 && n.votedFor === null) },
      { atMs: 100, inputs: [{ type: 'cutLink', from: 3, to: 5 }], caption: 'We cut the link from node 3 to node 5: node 5 will not hear node 3.', truth: (s) => s.cuts.length === 1 && noLeader(s) },
      { atMs: 195, caption: 'Node 3 times out and becomes a candidate for term 2. Its vote request cannot reach node 5.', truth: (s) => node(s, 3).role === 'candidate' && node(s, 3).term === 2 && wire(s, 'RequestVote', 3).length === 0 && node(s, 5).term === 1 },
      { atMs: 225, inputs: [{ type: 'crash', node: 2 }], caption: 'Node 2 stored term 2 and its vote for node 3, answered yes (the answer is on its way), and now crashes. Its disk keeps both.', truth: (s) => node(s, 2).liveness === 'down' && node(s, 2).term === 2 && node(s, 2).votedFor === 3 && wire(s, 'RequestVoteResponse', 2, (m) => m.to === 3 && m.flag === 1).length === 1 },
      { atMs: 235, caption: 'With the votes of 1, 2 and 4, node 3 leads term 2.', truth: (s) => leads(s, 3, 2) && node(s, 2).liveness === 'down' },
      { atMs: 300, inputs: [{ type: 'restart', node: 2 }], caption: 'Node 2 restarts from its disk: term 2, voted for node 3.', truth: (s) => node(s, 2).liveness === 'up' && node(s, 2).term === 2 && node(s, 2).votedFor === 3 },
      { atMs: 302, caption: 'Node 5, which never heard from node 3, is still in term 1. It times out and becomes a candidate for term 2, voting for itself.', truth: (s) => node(s, 5).role === 'candidate' && node(s, 5).term === 2 && node(s, 5).votedFor === 5 && leads(s, 3, 2) },
      { atMs: 320, caption: 'Nodes 1, 2 and 4 refuse (red centre): each already voted in term 2. Node 2 can refuse only because its vote survived the crash; with a wiped disk it could vote twice in one term (see “A wiped disk breaks safety”).', truth: (s) => [1, 2, 4].every((id) => wire(s, 'RequestVoteResponse', id, (m) => m.to === 5 && m.flag === 0).length === 1) && node(s, 2).votedFor === 3 && leads(s, 3, 2) },
    ],
    check: (s) => (s.leader === 3 && s.nodes[2].term === 2 && s.nodes[1].votedFor === 3 ? null : 'node 3 should still lead term 2, node 2 having voted for it once'),
  },
  {
    id: 'wiped-disk',
    title: 'A wiped disk breaks safety (the checker catches it)',
    options: { ...PLAYGROUND_OPTIONS, nodes: 3, seed: 2 },
    endMs: 2000,
    steps: [
      { atMs: 0, caption: 'Three servers. Raft assumes a disk keeps what it promised; here one will not.', truth: (s) => s.nodes.length === 3 && noLeader(s) },
      {
        atMs: 400,
        inputs: [{ type: 'cutLink', from: 3, to: 1 }, { type: 'cutLink', from: 1, to: 3 }],
        caption: 'Node 3 leads term 2. We cut the link between nodes 3 and 1.',
        truth: (s) => leads(s, 3, 2) && s.cuts.length === 2,
      },
      { atMs: 500, inputs: [put('x', '1')], caption: 'A client writes x=1 to leader 3.', truth: (s) => node(s, 3).last === 3 },
      { atMs: 560, caption: 'Nodes 3 and 2 store x=1, a majority of three: it is committed. Node 1 never got it.', truth: (s) => node(s, 3).commit === 3 && node(s, 2).last === 3 && node(s, 1).last === 2 },
      {
        atMs: 700,
        inputs: [{ type: 'wipeDisk', node: 2 }, { type: 'crash', node: 3 }, { type: 'heal' }],
        caption: 'Node 2 crashes and its disk is wiped: its log and its vote are gone. Node 3 crashes too.',
        truth: (s) => node(s, 2).liveness === 'down' && node(s, 3).liveness === 'down',
      },
      { atMs: 800, inputs: [{ type: 'restart', node: 2 }], caption: 'Node 2 restarts with an empty disk. With node 1 it is a majority of three, and neither holds x=1.', truth: (s) => node(s, 2).liveness === 'up' && node(s, 2).last < 3 && node(s, 1).last === 2 },
      { atMs: 922, caption: 'Node 1 wins term 3 without the committed x=1; its no-op takes index 3, where x=1 was committed. The checker flags it at once (the red badge): Raft’s safety rests on disks that keep their promises.', truth: (s) => leads(s, 1, 3) && node(s, 1).last === 3 && node(s, 1).lastTerm === 3 && s.violations > 0 },
    ],
    /** The checker is meant to flag this run. */
    unsafe: true,
    check: (s) => (s.violations > 0 ? null : 'the checker should flag a violation'),
  },
  {
    id: 'joint-consensus',
    title: 'Joint consensus: replacing the voters',
    options: { ...PLAYGROUND_OPTIONS, votersInitial: 3 },
    endMs: 1500,
    steps: [
      { atMs: 0, caption: 'Five servers, but only 1, 2 and 3 are voters; 4 and 5 wait outside the cluster.', truth: (s) => [1, 2, 3].every((id) => node(s, id).member === 'voter') && [4, 5].every((id) => node(s, id).member === 'none') },
      { atMs: 300, caption: 'Node 3 leads term 2 with the voters {1, 2, 3}.', truth: (s) => leads(s, 3, 2) && same(s.config.voters, [1, 2, 3]) },
      { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1; the three voters commit it.', truth: (s) => node(s, 3).last === 3 && [4, 5].every((id) => node(s, id).last === 0) },
      { atMs: 700, inputs: [{ type: 'addLearner', node: 4 }], caption: 'Nodes 4 and 5 join as learners first: they receive the log but have no vote (thesis §4.2.1).', truth: (s) => s.config.learners.includes(4) && same(s.config.voters, [1, 2, 3]) },
      { atMs: 800, inputs: [{ type: 'addLearner', node: 5 }] },
      { atMs: 900, caption: 'Both learners have caught up. The voters are still {1, 2, 3}.', truth: (s) => same(s.config.learners, [4, 5]) && same(s.config.voters, [1, 2, 3]) && [4, 5].every((id) => node(s, id).last === node(s, 3).last) },
      { atMs: 1000, inputs: [{ type: 'replaceVoters', voters: [3, 4, 5] }], caption: 'We replace the voters {1, 2, 3} by {3, 4, 5} in one request. The leader appends a joint configuration: the old and the new voters together (thesis §4.3).', truth: (s) => same(s.config.voters, [3, 4, 5]) && same(s.config.votersOutgoing, [1, 2, 3]) && node(s, 3).last === 6 && node(s, 3).commit === 5 },
      { atMs: 1015, caption: 'While it is in force, every decision needs a majority of the old voters and a majority of the new: two of {1, 2, 3} and two of {3, 4, 5}.', truth: (s) => same(s.config.votersOutgoing, [1, 2, 3]) && node(s, 3).commit === 5 && [2, 4, 5].every((id) => node(s, id).last === 6) },
      { atMs: 1026, caption: 'Both majorities stored it: the joint configuration is committed, and the leader at once appends the new configuration alone, {3, 4, 5}.', truth: (s) => node(s, 3).commit === 6 && node(s, 3).last === 7 && same(s.config.voters, [3, 4, 5]) && s.config.votersOutgoing.length === 0 },
      { atMs: 1054, caption: 'A majority of {3, 4, 5} stores it: committed. Nodes 1 and 2 are no longer voters, and the leader stops sending them anything.', truth: (s) => node(s, 3).commit === 7 && [1, 2].every((id) => node(s, id).last < 7) },
      { atMs: 1351, caption: 'Node 1 hears no more heartbeats and asks for pre-votes; the voters still hear their leader and refuse (thesis §4.2.3).', truth: (s) => node(s, 1).role === 'pre-candidate' && leads(s, 3, 2) },
    ],
    check: (s) => (s.leader === 3 && same(s.config.voters, [3, 4, 5]) && s.nodes[2].commit >= 7 ? null : 'node 3 should lead the voters {3, 4, 5}'),
  },
  {
    id: 'remove-leader',
    title: 'Removing the leader',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1300,
    steps: [
      { atMs: 0, caption: 'Five servers start; node 3 will lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
      { atMs: 600, inputs: [put('x', '1')], caption: 'Node 3 leads term 2. A client writes x=1.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
      { atMs: 800, inputs: [{ type: 'removeServer', node: 3 }], caption: 'We remove node 3, the leader itself. It appends the configuration without itself and goes on leading, but no longer counts its own copy towards a majority.', truth: (s) => leads(s, 3, 2) && same(s.config.voters, [1, 2, 4, 5]) && node(s, 3).last === 4 && node(s, 3).commit === 3 },
      { atMs: 832, caption: 'Three of the four remaining voters stored it: committed. Node 3 now steps down, outside the cluster (thesis §4.2.2).', truth: (s) => node(s, 3).role === 'follower' && node(s, 3).commit === 4 && node(s, 3).member === 'none' && noLeader(s) },
      { atMs: 1048, caption: 'The others hear no more heartbeats; node 4 times out first and asks for pre-votes.', truth: (s) => node(s, 4).role === 'pre-candidate' && noLeader(s) },
      { atMs: 1120, caption: 'Node 4 leads term 3 with the voters {1, 2, 4, 5}. Node 3, removed, stays quiet.', truth: (s) => leads(s, 4, 3) && same(s.config.voters, [1, 2, 4, 5]) && node(s, 3).role === 'follower' && node(s, 3).term === 2 },
      { atMs: 1200, caption: 'Its no-op commits, and the configuration entry before it is committed on every remaining server.', truth: (s) => [1, 2, 4, 5].every((id) => node(s, id).commit === 5) },
    ],
    check: (s) => (s.leader === 4 && s.nodes[2].member === 'none' ? null : 'node 4 should lead without node 3'),
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

// ----- a voter that never campaigns (issue 14) ------------------------------------------------
// Node 3 stands for a browser tab that votes: `nonCampaigning: 1` makes the last voter run with
// raft-core's `Config::campaigns = false`, and every server knows it (`set_peer_campaigns`).
{
  const transfer = SCENARIOS.find((s) => s.id === 'leadership-transfer');
  SCENARIOS.splice(SCENARIOS.indexOf(transfer) + 1, 0, {
    id: 'browser-voter',
    title: 'A browser voter: votes, never campaigns',
    options: { ...PLAYGROUND_OPTIONS, nodes: 3, nonCampaigning: 1 },
    endMs: 3300,
    steps: [
      { atMs: 0, caption: 'Three voters. Node 3 stands for a browser tab that votes: it stores the log and votes like any voter, but it never campaigns, so it has no election timer (no arc).', truth: (s) => s.nodes.length === 3 && node(s, 3).campaigns === false && node(s, 1).campaigns && node(s, 2).campaigns && node(s, 3).timerTimeout === 0 && node(s, 1).timerTimeout > 0 && noLeader(s) },
      { atMs: 302, caption: 'Node 1 times out first and wins term 2 with the votes of node 2 and the tab.', truth: (s) => leads(s, 1, 2) && node(s, 3).term === 2 },
      { atMs: 600, inputs: [{ type: 'crash', node: 2 }], caption: 'Node 2 crashes. Node 1 and the tab are still two of three: a majority.', truth: (s) => node(s, 2).role === 'down' && leads(s, 1, 2) },
      { atMs: 700, inputs: [put('x', '1')], caption: 'A client writes x=1.', truth: (s) => node(s, 1).last === 3 && node(s, 1).commit === 2 },
      { atMs: 722, caption: 'The tab’s acknowledgement commits x=1: it counts in a majority like any voter.', truth: (s) => node(s, 1).commit === 3 && node(s, 3).last === 3 && node(s, 2).last === 2 },
      { atMs: 900, inputs: [{ type: 'crash', node: 1 }], caption: 'Node 1 crashes too. Only the tab is up.', truth: (s) => noLeader(s) && node(s, 1).role === 'down' && node(s, 3).role === 'follower' },
      { atMs: 1450, caption: 'Nothing happens. The tab hears no leader, but it never campaigns: no pre-vote, no election, its term stays 2.', truth: (s) => noLeader(s) && node(s, 3).role === 'follower' && node(s, 3).term === 2 && wire(s, 'PreVote', 3).length === 0 && node(s, 3).timerElapsed >= 50 },
      { atMs: 1500, inputs: [{ type: 'restart', node: 2 }], caption: 'Node 2 restarts. It was down when x=1 was written, so its log lacks it.', truth: (s) => node(s, 2).role === 'follower' && node(s, 2).last === 2 && node(s, 3).last === 3 },
      { atMs: 1826, caption: 'Node 2 times out and asks for pre-votes. The tab refuses (red centre): its own log holds x=1, and a vote goes only to a candidate whose log is at least as complete (§5.4.1).', truth: (s) => node(s, 2).role === 'pre-candidate' && wire(s, 'PreVoteResponse', 3, (m) => m.to === 2 && m.flag === 0).length === 1 },
      { atMs: 2250, caption: 'Two of three voters are up, yet there is no leader: the only one that campaigns lags behind the one that never does. This is the price of such voters: keep a majority of voters that campaign.', truth: (s) => noLeader(s) && node(s, 2).role === 'pre-candidate' && node(s, 3).role === 'follower' && node(s, 3).term === 2 },
      { atMs: 2300, inputs: [{ type: 'restart', node: 1 }], caption: 'Node 1 restarts, with x=1 on its disk.', truth: (s) => node(s, 1).role === 'follower' && node(s, 1).last === 3 },
      { atMs: 2599, caption: 'Node 1 campaigns, the tab votes for it, and node 1 leads term 3.', truth: (s) => leads(s, 1, 3) && node(s, 3).term === 3 },
      { atMs: 2800, inputs: [{ type: 'cutLink', from: 1, to: 2 }, { type: 'cutLink', from: 2, to: 1 }], caption: 'Node 2 has caught up. Now cut it off from the leader for a moment…', truth: (s) => leads(s, 1, 3) && node(s, 2).last === 4 && s.cuts.length === 2 },
      { atMs: 2850, inputs: [put('y', '2')], caption: '…and write y=2.', truth: (s) => node(s, 1).last === 5 },
      { atMs: 2912, caption: 'The leader and the tab commit y=2; node 2 missed it. Of the followers, the tab now has the longer log.', truth: (s) => node(s, 1).commit === 5 && node(s, 3).last === 5 && node(s, 2).last === 4 },
      { atMs: 2950, inputs: [{ type: 'transferLeadership', node: null }, { type: 'heal' }], caption: 'Ask the leader to hand over to the best follower. By log alone that would be the tab, but the leader knows the tab never campaigns: it picks node 2 and first brings it up to date (thesis §3.10).', truth: (s) => leads(s, 1, 3) && node(s, 2).last === 4 },
      { atMs: 3070, caption: 'Node 2 holds the whole log: the leader sends it TimeoutNow, and it campaigns at once.', truth: (s) => node(s, 2).role === 'candidate' && node(s, 2).term === 4 && node(s, 2).last === 5 && node(s, 3).role === 'follower' },
      { atMs: 3100, caption: 'Node 2 leads term 4. The tab was never asked to lead, and never will be.', truth: (s) => leads(s, 2, 4) && node(s, 3).role === 'follower' && node(s, 3).campaigns === false },
    ],
    check: (s) => (s.leader === 2 && s.nodes[1].term === 4 && s.nodes[2].role === 'follower' && s.committed >= 5 ? null : 'node 2 should lead term 4, the tab still a follower'),
  });
}

// ----- a stale read, as the history panel shows it (web/history.js) -------------------------
// The read-modes run up to its stale read (the same inputs, so the same deterministic run), then
// the picture: the linearizability checker cannot place that read. `panel` names the side panel
// the scenario opens.
{
  const readModes = SCENARIOS.find((s) => s.id === 'read-modes');
  SCENARIOS.splice(SCENARIOS.indexOf(readModes) + 1, 0, {
    id: 'stale-read',
    title: 'A stale read is not linearizable',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1760,
    panel: 'history-panel',
    steps: [
      ...readModes.steps.filter((step) => step.atMs <= 1700),
      { atMs: 1720, caption: 'The History panel shows why this is not linearizable (thesis §6.3): get x returned 1 after put x=2 had completed. No order of put x=1, put x=2 and this get fits one copy of x, so the checker marks the get (!) as the operation it cannot place.', truth: (s) => read_(s, 3).status === 'ok' && read_(s, 3).value === '1' },
    ],
    check: (s) => (s.reads[3]?.status === 'ok' && s.reads[3].value === '1' ? null : `the stale read answered ${JSON.stringify(s.reads[3])}`),
  });
}

// ----- the barrier: a new leader's no-op commit before it serves reads (thesis §6.4) -------
// Kept in a block of its own (other scenarios are added above in parallel). The reads at the new
// leader are the core's barrier: `RaftNode::barrier` (hashicorp's `Barrier`) is this very read
// index, parked until an entry of the leader's own term commits.
{
  const afterReads = SCENARIOS.findIndex((s) => s.id === 'lease-reads') + 1;
  SCENARIOS.splice(afterReads, 0, {
    id: 'barrier',
    title: 'Barrier: a new leader commits before it reads',
    options: { ...PLAYGROUND_OPTIONS },
    endMs: 1000,
    steps: [
      { atMs: 0, caption: 'Node 3 will lead term 2. A server learns that an entry is committed from the leader; a new leader may not know yet which entries are (thesis §6.4).', truth: (s) => noLeader(s) },
      { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1 through leader 3 (index 3).', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
      { atMs: 630, caption: 'Stored on a majority, x=1 is committed: leader 3 applies it and answers the client. The followers hold it too, but learn that it is committed only with the next heartbeat.', truth: (s) => node(s, 3).commit === 3 && node(s, 3).applied === 3 && others(s, 3).every((n) => n.last === 3 && n.commit === 2) },
      { atMs: 635, inputs: [{ type: 'crash', node: 3 }], caption: 'Node 3 crashes before that heartbeat. Every survivor has x=1 in its log; none knows it is committed.', truth: (s) => node(s, 3).liveness === 'down' && others(s, 3).every((n) => n.last === 3 && n.commit === 2 && n.applied === 2) },
      { atMs: 904, caption: 'Node 4 wins term 3. Its commit index still says 2: it cannot tell whether x=1 at index 3 was committed, since a leader never counts replicas of an earlier term’s entry (§5.4.2).', truth: (s) => leads(s, 4, 3) && node(s, 4).commit === 2 && node(s, 4).applied === 2 },
      { atMs: 906, inputs: [read(4, 'stale'), read(4, 'linearizable'), read(4, 'lease')], caption: 'Three reads of x at node 4. A stale read answers from what node 4 applied: x is absent, although x=1 was committed and acknowledged. It went back in time.', truth: (s) => read_(s, 0).status === 'ok' && read_(s, 0).value === null && read_(s, 1).status === 'pending' && read_(s, 2).status === 'pending' },
      { atMs: 920, caption: 'The linearizable and the lease read wait: until an entry of its own term commits, a leader does not know the commit index, and has no lease. Its first entry is a no-op (index 4).', truth: (s) => leads(s, 4, 3) && node(s, 4).last === 4 && node(s, 4).commit === 2 && read_(s, 1).status === 'pending' && read_(s, 2).status === 'pending' },
      { atMs: 935, caption: 'A majority stores the no-op: index 4 commits, and x=1 before it. This commit is the barrier (hashicorp’s Barrier; in this core, RaftNode::barrier): everything committed before the read is now known and applied.', truth: (s) => node(s, 4).commit === 4 && node(s, 4).applied === 4 && read_(s, 1).status === 'pending' },
      { atMs: 969, caption: 'One heartbeat round confirms node 4 still leads, and both waiting reads answer x=1 with read index 4.', truth: (s) => [1, 2].every((k) => read_(s, k).status === 'ok' && read_(s, k).value === '1' && read_(s, k).readIndex === 4) },
    ],
    check: (s) => {
      const seen = s.reads.map((r) => `${r.mode}:${r.status}:${r.value}:${r.readIndex}`).join(' ');
      return seen === 'stale:ok:null:2 linearizable:ok:1:4 lease:ok:1:4' && s.leader === 4 ? null : `reads answered ${seen}, leader ${s.leader}`;
    },
  });
}

/** The steps that have a caption, in order. */
export function captionedSteps(scenario) {
  return scenario.steps.filter((step) => step.caption);
}

/** Auto narration holds a caption this long (wall-clock ms): about 15 characters a second, a
 * short caption at least 2.5 s, a long one at most 12 s. */
export function readingMs(caption) {
  return Math.min(12_000, Math.max(2_500, 1_000 + 65 * caption.length));
}

/** The caption in force at `timeMs`, with its position among the captioned steps. */
export function captionAt(scenario, timeMs) {
  let current = null;
  captionedSteps(scenario).forEach((step, k) => {
    if (step.atMs <= timeMs) current = { index: k, caption: step.caption, atMs: step.atMs };
  });
  return current;
}

// The "log-replication" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, others, leads, wire, noLeader } from './common.js';

export default {
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
};

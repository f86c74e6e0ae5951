// The "log-repair" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, others, leads, wire, noLeader } from './common.js';

export default {
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
};

// The "figure-8" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, node, leads, wire, noLeader } from './common.js';

export default {
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
};

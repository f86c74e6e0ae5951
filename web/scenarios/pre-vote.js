// The "pre-vote" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, node, leads, wire, noLeader } from './common.js';

export default {
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
};

// The "split-vote" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, node, leads, wire, noLeader, allFollowers } from './common.js';

export default {
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
};

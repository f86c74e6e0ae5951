// The "no-pre-vote" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, node, leads, noLeader } from './common.js';

export default {
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
};

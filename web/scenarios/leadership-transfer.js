// The "leadership-transfer" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, leads, wire, noLeader } from './common.js';

export default {
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
};

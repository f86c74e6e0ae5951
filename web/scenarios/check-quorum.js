// The "check-quorum" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, node, leads, wire, noLeader } from './common.js';

export default {
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
};

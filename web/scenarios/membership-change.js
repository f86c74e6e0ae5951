// The "membership-change" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, leads, wire } from './common.js';

export default {
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
};

// The "joint-consensus" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, leads, same } from './common.js';

export default {
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
};

// The "remove-leader" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, leads, noLeader, same } from './common.js';

export default {
  id: 'remove-leader',
  title: 'Removing the leader',
  options: { ...PLAYGROUND_OPTIONS },
  endMs: 1300,
  steps: [
    { atMs: 0, caption: 'Five servers start; node 3 will lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
    { atMs: 600, inputs: [put('x', '1')], caption: 'Node 3 leads term 2. A client writes x=1.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
    { atMs: 800, inputs: [{ type: 'removeServer', node: 3 }], caption: 'We remove node 3, the leader itself. It appends the configuration without itself and goes on leading, but no longer counts its own copy towards a majority.', truth: (s) => leads(s, 3, 2) && same(s.config.voters, [1, 2, 4, 5]) && node(s, 3).last === 4 && node(s, 3).commit === 3 },
    { atMs: 832, caption: 'Three of the four remaining voters stored it: committed. Node 3 now steps down, outside the cluster (thesis §4.2.2).', truth: (s) => node(s, 3).role === 'follower' && node(s, 3).commit === 4 && node(s, 3).member === 'none' && noLeader(s) },
    { atMs: 1048, caption: 'The others hear no more heartbeats; node 4 times out first and asks for pre-votes.', truth: (s) => node(s, 4).role === 'pre-candidate' && noLeader(s) },
    { atMs: 1120, caption: 'Node 4 leads term 3 with the voters {1, 2, 4, 5}. Node 3, removed, stays quiet.', truth: (s) => leads(s, 4, 3) && same(s.config.voters, [1, 2, 4, 5]) && node(s, 3).role === 'follower' && node(s, 3).term === 2 },
    { atMs: 1200, caption: 'Its no-op commits, and the configuration entry before it is committed on every remaining server.', truth: (s) => [1, 2, 4, 5].every((id) => node(s, id).commit === 5) },
  ],
  check: (s) => (s.leader === 4 && s.nodes[2].member === 'none' ? null : 'node 4 should lead without node 3'),
};

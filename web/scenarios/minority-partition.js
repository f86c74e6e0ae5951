// The "minority-partition" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, leads, wire, noLeader, allFollowers } from './common.js';

export default {
  id: 'minority-partition',
  title: 'Minority partition',
  options: { ...PLAYGROUND_OPTIONS },
  endMs: 2800,
  steps: [
    { atMs: 0, caption: 'Five servers start; node 3 will win the first election and lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
    { atMs: 500, inputs: [put('a', '1')], caption: 'Node 3 leads term 2. A client writes a=1.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
    { atMs: 700, inputs: [{ type: 'partition', side: [3, 4] }], caption: 'a=1 is committed by all five. Then the network splits: leader 3 and node 4 on one side, nodes 1, 2, 5 on the other.', truth: (s) => s.nodes.every((n) => n.commit === 3) && s.cuts.length === 12 },
    { atMs: 750, inputs: [put('x', 'lost')], caption: 'A client writes x=lost to the old leader. It can reach node 4 only: 2 of 5, never committed.', truth: (s) => node(s, 3).last === 4 && node(s, 3).commit === 3 && wire(s, 'AppendEntries', 3).every((m) => m.to === 4) },
    { atMs: 890, caption: 'Node 3 hears only node 4: two of five. After a whole election timeout without a majority it steps down (check-quorum), still in term 2, before the majority side has even missed it.', truth: (s) => node(s, 3).role === 'follower' && node(s, 3).term === 2 && noLeader(s) && allFollowers(s, [1, 2, 5]) },
    { atMs: 931, caption: 'On the majority side, node 1 stops hearing a leader, times out and asks for pre-votes.', truth: (s) => node(s, 1).role === 'pre-candidate' && node(s, 3).role === 'follower' },
    { atMs: 1004, caption: 'Node 1 leads term 3 with votes from 2 and 5: three of five. Node 3, cut off, never hears of it and stays in term 2.', truth: (s) => leads(s, 1, 3) && node(s, 3).role === 'follower' && node(s, 3).term === 2 },
    { atMs: 1600, inputs: [put('y', '2')], caption: 'y=2 goes to node 1 and is committed by the majority side.', truth: (s) => leads(s, 1, 3) && node(s, 1).last === 5 },
    { atMs: 2200, inputs: [{ type: 'heal' }], caption: 'The partition heals.', truth: (s) => s.cuts.length === 0 && node(s, 1).commit === 5 && node(s, 3).commit === 3 },
    { atMs: 2218, caption: 'Node 3 learns term 3 from the leader’s heartbeat; soon its uncommitted x=lost is replaced by the leader’s log, and node 4’s too.', truth: (s) => node(s, 3).term === 3 && node(s, 3).role === 'follower' },
  ],
  check: (s) => (s.leader === 1 && s.nodes.every((n) => n.commit >= 5 && n.term === 3) ? null : 'node 1 should lead term 3 with everything committed everywhere'),
};

// The "leader-crash" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, leads, wire, noLeader, allFollowers } from './common.js';

export default {
  id: 'leader-crash',
  title: 'Leader crash',
  options: { ...PLAYGROUND_OPTIONS },
  endMs: 2300,
  steps: [
    { atMs: 0, caption: 'Five servers start; node 3 will win the first election and lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
    { atMs: 800, inputs: [{ type: 'crash', node: 3 }], caption: 'Leader 3 crashes. Its heartbeats stop.', truth: (s) => node(s, 3).liveness === 'down' && node(s, 3).term === 2 && wire(s, 'Heartbeat', 3).length === 0 },
    { atMs: 820, caption: 'The followers’ timers run on (the arcs grow): nobody is telling them to wait.', truth: (s) => noLeader(s) && allFollowers(s, [1, 2, 4, 5]) && s.wire.length === 0 },
    { atMs: 999, caption: 'Node 4 times out first and asks for pre-votes.', truth: (s) => node(s, 4).role === 'pre-candidate' && wire(s, 'PreVote', 4).length === 4 },
    { atMs: 1029, caption: 'A majority would vote for it: node 4 becomes a candidate for term 3 and asks for votes.', truth: (s) => node(s, 4).role === 'candidate' && node(s, 4).term === 3 && wire(s, 'RequestVote', 4).length === 4 },
    { atMs: 1057, caption: 'Node 4 is the new leader (term 3), with votes from a majority of the five.', truth: (s) => leads(s, 4, 3) && s.nodes.filter((n) => n.votedFor === 4).length >= 3 },
    { atMs: 1400, inputs: [put('x', '1')], caption: 'Writes go on: four of five servers are plenty for a majority.', truth: (s) => leads(s, 4, 3) && node(s, 3).liveness === 'down' && node(s, 4).last > node(s, 4).commit },
    { atMs: 1800, inputs: [{ type: 'restart', node: 3 }], caption: 'Node 3 restarts from its disk, still believing it is term 2.', truth: (s) => node(s, 3).liveness === 'up' && node(s, 3).term === 2 && node(s, 3).role === 'follower' },
    { atMs: 1815, caption: 'The first heartbeat from node 4 carries term 3: node 3 takes term 3 and follows node 4.', truth: (s) => node(s, 3).term === 3 && node(s, 3).role === 'follower' && node(s, 3).commit < node(s, 4).commit },
    { atMs: 1829, caption: 'Node 3 lacks two entries; the leader sends both in one AppendEntries (2), and node 3 catches up.', truth: (s) => wire(s, 'AppendEntries', 4, (m) => m.to === 3 && m.entries === 2).length === 1 },
  ],
  check: (s) => (s.leader === 4 && s.nodes[2].role === 'follower' && s.nodes[2].commit >= 4 ? null : 'node 4 should lead; node 3 should follow and catch up'),
};

// The "first-election" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, others, leads, wire, noLeader, allFollowers } from './common.js';

export default {
  id: 'first-election',
  title: 'First election',
  options: { ...PLAYGROUND_OPTIONS },
  endMs: 1000,
  steps: [
    { atMs: 0, caption: 'Five servers start as followers in term 1. None is leader yet.', truth: (s) => s.nodes.length === 5 && allFollowers(s, [1, 2, 3, 4, 5]) && s.nodes.every((n) => n.term === 1) && noLeader(s) },
    { atMs: 20, caption: 'Each waits a random election timeout (the arc around it) to hear from a leader.', truth: (s) => noLeader(s) && new Set(s.nodes.map((n) => n.timerTimeout)).size > 1 },
    { atMs: 196, caption: 'Node 3’s timer runs out first. It asks the others: would you vote for me? (a pre-vote, yellow ▲)', truth: (s) => node(s, 3).role === 'pre-candidate' && allFollowers(s, [1, 2, 4, 5]) && wire(s, 'PreVote', 3).length === 4 },
    { atMs: 229, caption: 'A majority would. Node 3 becomes a candidate for term 2 and requests votes (orange ◆).', truth: (s) => node(s, 3).role === 'candidate' && node(s, 3).term === 2 && wire(s, 'RequestVote', 3).length === 4 },
    { atMs: 240, caption: 'Each server grants one vote per term, to a candidate whose log is at least as complete.', truth: (s) => wire(s, 'RequestVoteResponse', null, (m) => m.to === 3 && m.flag === 1).length >= 1 && s.nodes.filter((n) => n.term === 2).every((n) => n.votedFor === 3) },
    { atMs: 256, caption: 'Three of five votes is a majority: node 3 is the leader of term 2 (★).', truth: (s) => leads(s, 3, 2) },
    { atMs: 283, caption: 'The leader appends a no-op entry; once a majority stores it, it is committed (solid).', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 2 && node(s, 3).lastTerm === 2 && node(s, 3).commit === 2 },
    { atMs: 320, caption: 'Heartbeats (grey •) every 50 ms keep the followers’ timers from running out.', truth: (s) => leads(s, 3, 2) && wire(s, 'Heartbeat', 3).length >= 1 },
    { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1. Only the leader accepts writes: it appends x=1 to its log.', truth: (s) => node(s, 3).last === 3 && node(s, 3).commit === 2 && others(s, 3).every((n) => n.last === 2) },
    { atMs: 629, caption: 'Stored on a majority, x=1 is committed (solid), and the leader applies it.', truth: (s) => node(s, 3).commit === 3 && node(s, 3).applied === 3 && others(s, 3).filter((n) => n.last === 3).length >= 2 && others(s, 3).every((n) => n.commit === 2) },
    { atMs: 670, caption: 'The next heartbeat carries the commit index: every server applies x=1.', truth: (s) => s.nodes.every((n) => n.commit === 3 && n.applied === 3) },
  ],
  check: (s) => (s.leader === 3 && s.nodes[2].term === 2 && s.committed >= 3 ? null : 'node 3 should lead term 2'),
};

// The "persistence" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, node, leads, wire, noLeader } from './common.js';

export default {
  id: 'persistence',
  title: 'Persistence: a vote survives a crash',
  options: { ...PLAYGROUND_OPTIONS, preVote: false, checkQuorum: false },
  endMs: 340,
  steps: [
    { atMs: 0, caption: 'Before it answers a vote request, a server writes its term and its vote to disk (thesis §3.8). Pre-vote and check-quorum are off here, so nothing else stops a second vote in one term.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1 && n.votedFor === null) },
    { atMs: 100, inputs: [{ type: 'cutLink', from: 3, to: 5 }], caption: 'We cut the link from node 3 to node 5: node 5 will not hear node 3.', truth: (s) => s.cuts.length === 1 && noLeader(s) },
    { atMs: 195, caption: 'Node 3 times out and becomes a candidate for term 2. Its vote request cannot reach node 5.', truth: (s) => node(s, 3).role === 'candidate' && node(s, 3).term === 2 && wire(s, 'RequestVote', 3).length === 0 && node(s, 5).term === 1 },
    { atMs: 225, inputs: [{ type: 'crash', node: 2 }], caption: 'Node 2 stored term 2 and its vote for node 3, answered yes (the answer is on its way), and now crashes. Its disk keeps both.', truth: (s) => node(s, 2).liveness === 'down' && node(s, 2).term === 2 && node(s, 2).votedFor === 3 && wire(s, 'RequestVoteResponse', 2, (m) => m.to === 3 && m.flag === 1).length === 1 },
    { atMs: 235, caption: 'With the votes of 1, 2 and 4, node 3 leads term 2.', truth: (s) => leads(s, 3, 2) && node(s, 2).liveness === 'down' },
    { atMs: 300, inputs: [{ type: 'restart', node: 2 }], caption: 'Node 2 restarts from its disk: term 2, voted for node 3.', truth: (s) => node(s, 2).liveness === 'up' && node(s, 2).term === 2 && node(s, 2).votedFor === 3 },
    { atMs: 302, caption: 'Node 5, which never heard from node 3, is still in term 1. It times out and becomes a candidate for term 2, voting for itself.', truth: (s) => node(s, 5).role === 'candidate' && node(s, 5).term === 2 && node(s, 5).votedFor === 5 && leads(s, 3, 2) },
    { atMs: 320, caption: 'Nodes 1, 2 and 4 refuse (red centre): each already voted in term 2. Node 2 can refuse only because its vote survived the crash; with a wiped disk it could vote twice in one term (see “A wiped disk breaks safety”).', truth: (s) => [1, 2, 4].every((id) => wire(s, 'RequestVoteResponse', id, (m) => m.to === 5 && m.flag === 0).length === 1) && node(s, 2).votedFor === 3 && leads(s, 3, 2) },
  ],
  check: (s) => (s.leader === 3 && s.nodes[2].term === 2 && s.nodes[1].votedFor === 3 ? null : 'node 3 should still lead term 2, node 2 having voted for it once'),
};

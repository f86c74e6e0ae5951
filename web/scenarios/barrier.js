// The "barrier" scenario; one file per scenario, so that a widget loads only its own (see common.js).
// The barrier: a new leader's no-op commit before it serves reads (thesis §6.4)
// The reads at the new leader are the core's barrier: `RaftNode::barrier` (hashicorp's `Barrier`) is this very read
// index, parked until an entry of the leader's own term commits.
import { PLAYGROUND_OPTIONS, put, read, node, others, leads, noLeader, read_ } from './common.js';

export default {
  id: 'barrier',
  title: 'Barrier: a new leader commits before it reads',
  options: { ...PLAYGROUND_OPTIONS },
  endMs: 1000,
  steps: [
    { atMs: 0, caption: 'Node 3 will lead term 2. A server learns that an entry is committed from the leader; a new leader may not know yet which entries are (thesis §6.4).', truth: (s) => noLeader(s) },
    { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1 through leader 3 (index 3).', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
    { atMs: 630, caption: 'Stored on a majority, x=1 is committed: leader 3 applies it and answers the client. The followers hold it too, but learn that it is committed only with the next heartbeat.', truth: (s) => node(s, 3).commit === 3 && node(s, 3).applied === 3 && others(s, 3).every((n) => n.last === 3 && n.commit === 2) },
    { atMs: 635, inputs: [{ type: 'crash', node: 3 }], caption: 'Node 3 crashes before that heartbeat. Every survivor has x=1 in its log; none knows it is committed.', truth: (s) => node(s, 3).liveness === 'down' && others(s, 3).every((n) => n.last === 3 && n.commit === 2 && n.applied === 2) },
    { atMs: 904, caption: 'Node 4 wins term 3. Its commit index still says 2: it cannot tell whether x=1 at index 3 was committed, since a leader never counts replicas of an earlier term’s entry (§5.4.2).', truth: (s) => leads(s, 4, 3) && node(s, 4).commit === 2 && node(s, 4).applied === 2 },
    { atMs: 906, inputs: [read(4, 'stale'), read(4, 'linearizable'), read(4, 'lease')], caption: 'Three reads of x at node 4. A stale read answers from what node 4 applied: x is absent, although x=1 was committed and acknowledged. It went back in time.', truth: (s) => read_(s, 0).status === 'ok' && read_(s, 0).value === null && read_(s, 1).status === 'pending' && read_(s, 2).status === 'pending' },
    { atMs: 920, caption: 'The linearizable and the lease read wait: until an entry of its own term commits, a leader does not know the commit index, and has no lease. Its first entry is a no-op (index 4).', truth: (s) => leads(s, 4, 3) && node(s, 4).last === 4 && node(s, 4).commit === 2 && read_(s, 1).status === 'pending' && read_(s, 2).status === 'pending' },
    { atMs: 935, caption: 'A majority stores the no-op: index 4 commits, and x=1 before it. This commit is the barrier (hashicorp’s Barrier; in this core, RaftNode::barrier): everything committed before the read is now known and applied.', truth: (s) => node(s, 4).commit === 4 && node(s, 4).applied === 4 && read_(s, 1).status === 'pending' },
    { atMs: 969, caption: 'One heartbeat round confirms node 4 still leads, and both waiting reads answer x=1 with read index 4.', truth: (s) => [1, 2].every((k) => read_(s, k).status === 'ok' && read_(s, k).value === '1' && read_(s, k).readIndex === 4) },
  ],
  check: (s) => {
    const seen = s.reads.map((r) => `${r.mode}:${r.status}:${r.value}:${r.readIndex}`).join(' ');
    return seen === 'stale:ok:null:2 linearizable:ok:1:4 lease:ok:1:4' && s.leader === 4 ? null : `reads answered ${seen}, leader ${s.leader}`;
  },
};

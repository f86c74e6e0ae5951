// The "lease-reads" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, read, node, leads, wire, noLeader, read_ } from './common.js';

export default {
  id: 'lease-reads',
  title: 'Lease reads and their clock margin',
  options: { ...PLAYGROUND_OPTIONS },
  endMs: 1100,
  steps: [
    { atMs: 0, caption: 'Five servers; node 3 will lead term 2. A lease lets a leader answer reads alone for a while after a majority last answered it (thesis §6.4.1).', truth: (s) => noLeader(s) && s.nodes.every((n) => n.term === 1) },
    { atMs: 600, inputs: [put('x', '1')], caption: 'Node 3 leads term 2. A client writes x=1.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
    { atMs: 700, inputs: [read(3, 'lease')], caption: 'A lease read at leader 3 answers x=1 at once, without sending a message: a majority answered one of its heartbeat rounds recently enough.', truth: (s) => read_(s, 0).status === 'ok' && read_(s, 0).value === '1' && read_(s, 0).answeredMs === 700 && s.wire.length === 0 },
    { atMs: 760, caption: 'Each heartbeat round that a majority answers renews the lease, counted from when the round was sent: one election timeout (200 ms) minus a margin for clocks that run at different speeds (2 ticks, 20 ms), so 180 ms.', truth: (s) => wire(s, 'Heartbeat', 3).length === 4 },
    { atMs: 800, inputs: [{ type: 'partition', side: [3] }], caption: 'The round sent at 760 ms was answered by all four followers. Now node 3 is cut off from everyone; it does not know yet.', truth: (s) => leads(s, 3, 2) && s.cuts.length === 8 && s.wire.length === 0 },
    { atMs: 810, inputs: [read(3, 'lease')], caption: 'A lease read at node 3 still answers x=1 at once. Safe: every follower that answered the 760 ms round refuses to vote for anyone else for an election timeout after hearing from node 3, so no other leader can exist yet.', truth: (s) => read_(s, 1).status === 'ok' && read_(s, 1).value === '1' && read_(s, 1).answeredMs === 810 && s.cuts.length === 8 },
    { atMs: 950, inputs: [read(3, 'lease')], caption: 'The lease ran out at 940 ms (760 + 180). Node 3 no longer answers alone: the read waits for a heartbeat round that a majority must answer, and none can.', truth: (s) => leads(s, 3, 2) && read_(s, 2).status === 'pending' },
    { atMs: 985, caption: 'Node 3 steps down (check-quorum) and the waiting read fails: no stale answer was given.', truth: (s) => node(s, 3).role === 'follower' && read_(s, 2).status === 'failed' && noLeader(s) },
    { atMs: 1000, caption: 'Node 4’s election timer runs out, more than an election timeout after it last heard from node 3. It asks for pre-votes.', truth: (s) => node(s, 4).role === 'pre-candidate' && noLeader(s) },
    { atMs: 1060, caption: 'Node 4 leads term 3, well after node 3’s lease ended. Had the clocks drifted apart by more than the margin, a lease could outlast the followers’ promise. This run’s clocks keep exact time; New run’s “Drifting clocks” slows some by 20%, more than this margin (2 ticks of 20).', truth: (s) => leads(s, 4, 3) && s.reads.filter((r) => r.status === 'ok').every((r) => r.answeredMs < 940) },
  ],
  check: (s) => {
    const seen = s.reads.map((r) => `${r.askedMs}:${r.status}`).join(' ');
    return seen === '700:ok 810:ok 950:failed' && s.leader === 4 ? null : `reads answered ${seen}, leader ${s.leader}`;
  },
};

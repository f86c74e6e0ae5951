// The "read-modes" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, read, node, leads, wire, noLeader, read_ } from './common.js';

export default {
  id: 'read-modes',
  title: 'Read modes',
  options: { ...PLAYGROUND_OPTIONS },
  endMs: 2300,
  steps: [
    { atMs: 0, caption: 'Node 3 will lead term 2. Reads do not go through the log: each server answers from what it has applied.', truth: (s) => noLeader(s) },
    { atMs: 600, inputs: [put('x', '1')], caption: 'A client writes x=1; it is committed everywhere.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
    { atMs: 700, inputs: [read(5, 'linearizable')], caption: 'A linearizable read through follower 5: it asks leader 3 for a read index (ReadIndex, pink ✚, thesis §6.4).', truth: (s) => s.nodes.every((n) => n.applied === 3) && wire(s, 'ReadIndex', 5, (m) => m.to === 3).length === 1 && read_(s, 0).status === 'pending' },
    { atMs: 768, caption: 'Leader 3 confirmed with one heartbeat round that it still leads; node 5 answers x=1 once it has applied that index.', truth: (s) => read_(s, 0).status === 'ok' && read_(s, 0).value === '1' },
    { atMs: 800, inputs: [{ type: 'partition', side: [1, 3] }], caption: 'Leader 3 and node 1 are cut off from nodes 2, 4 and 5.', truth: (s) => s.cuts.length === 12 && leads(s, 3, 2) },
    { atMs: 820, inputs: [read(3, 'linearizable')], caption: 'A linearizable read at node 3 needs a majority to answer a heartbeat round: it waits.', truth: (s) => read_(s, 1).status === 'pending' },
    { atMs: 830, inputs: [read(3, 'lease')], caption: 'A lease read at node 3 answers x=1 at once: a majority heard from it within an election timeout, so no other leader can exist yet (§6.4.1).', truth: (s) => read_(s, 2).status === 'ok' && read_(s, 2).value === '1' && read_(s, 1).status === 'pending' },
    { atMs: 995, caption: 'No majority for an election timeout: node 3 steps down (check-quorum), and its waiting read fails: leadership lost.', truth: (s) => node(s, 3).role === 'follower' && read_(s, 1).status === 'failed' },
    { atMs: 1082, caption: 'Nodes 2, 4 and 5 elect node 4 leader of term 3.', truth: (s) => leads(s, 4, 3) },
    { atMs: 1500, inputs: [put('x', '2')], caption: 'A client writes x=2 through node 4; the majority commits it.', truth: (s) => leads(s, 4, 3) && node(s, 4).last === 5 },
    { atMs: 1700, inputs: [read(3, 'stale')], caption: 'A stale read at node 3 still answers x=1: stale reads can go back in time.', truth: (s) => node(s, 4).commit === 5 && read_(s, 3).status === 'ok' && read_(s, 3).value === '1' },
    { atMs: 1800, inputs: [read(3, 'linearizable')], caption: 'A linearizable read at node 3 fails at once: it knows no leader to confirm with.', truth: (s) => read_(s, 4).status === 'failed' },
    { atMs: 1900, inputs: [read(4, 'linearizable')], caption: 'Through node 4, a linearizable read sees x=2 after one heartbeat round.', truth: (s) => read_(s, 5).status === 'pending' },
    { atMs: 2000, inputs: [{ type: 'heal' }], caption: 'It answered x=2. The partition heals; nodes 1 and 3 catch up with term 3’s log.', truth: (s) => read_(s, 5).status === 'ok' && read_(s, 5).value === '2' && s.cuts.length === 0 },
    { atMs: 2250, inputs: [read(3, 'stale')], caption: 'Now even a stale read at node 3 answers x=2.', truth: (s) => read_(s, 6).status === 'ok' && read_(s, 6).value === '2' },
  ],
  check: (s) => {
    const seen = s.reads.map((r) => `${r.node}:${r.mode}:${r.status}:${r.value ?? r.error}`);
    const expected = [
      '5:linearizable:ok:1',
      '3:linearizable:failed:leadership lost before the read was confirmed',
      '3:lease:ok:1',
      '3:stale:ok:1',
      '3:linearizable:failed:no leader known',
      '4:linearizable:ok:2',
      '3:stale:ok:2',
    ];
    return JSON.stringify(seen) === JSON.stringify(expected) ? null : `reads answered ${JSON.stringify(seen)}`;
  },
};

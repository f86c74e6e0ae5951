// The "snapshot-chunks" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, leads, wire, noLeader } from './common.js';

export default {
  id: 'snapshot-chunks',
  title: 'InstallSnapshot in chunks',
  options: { ...PLAYGROUND_OPTIONS, snapshotIntervalEntries: 10, snapshotTrailingEntries: 2 },
  endMs: 1400,
  steps: [
    { atMs: 0, caption: 'Servers snapshot every 10 applied entries. Node 3 will lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.snapshot === 0) },
    { atMs: 500, inputs: [{ type: 'crash', node: 5 }], caption: 'Node 3 leads term 2. Node 5 crashes.', truth: (s) => leads(s, 3, 2) && node(s, 5).liveness === 'down' },
    { atMs: 600, inputs: [put('k0', '0'.repeat(200))], caption: 'Clients write 12 keys with 200-byte values, one every 20 ms. At 10 applied entries the others snapshot and compact their logs.', truth: (s) => node(s, 3).last === 3 },
    // The other 11 writes: input-only steps, no caption of their own.
    ...Array.from({ length: 11 }, (_, k) => ({ atMs: 620 + k * 20, inputs: [put(`k${k + 1}`, String((k + 1) % 10).repeat(200))] })),
    { atMs: 1100, inputs: [{ type: 'restart', node: 5 }], caption: 'Node 5 restarts, far behind: the entries it lacks are compacted away on the leader.', truth: (s) => node(s, 5).liveness === 'up' && node(s, 5).last === 2 && [1, 2, 3, 4].every((id) => node(s, id).snapshot === 8 && node(s, id).commit === 14) },
    { atMs: 1130, caption: 'The snapshot at index 10 holds eight 200-byte values: too big for one message. The leader sends its first chunk (teal ⬢; the simulator cuts snapshots into 512-byte chunks).', truth: (s) => wire(s, 'InstallSnapshot', 3, (m) => m.to === 5 && m.index === 10).length === 1 && node(s, 5).snapshot === 0 },
    { atMs: 1150, caption: 'Node 5 stores the chunk and acknowledges it. The leader waits for that answer before it sends the next: one chunk in flight at a time.', truth: (s) => wire(s, 'InstallSnapshotResponse', 5, (m) => m.to === 3).length === 1 && wire(s, 'InstallSnapshot', 3).length === 0 && node(s, 5).snapshot === 0 },
    { atMs: 1160, caption: 'The next chunk goes out. Node 5’s state is still untouched: a half-received snapshot is only staged, never applied.', truth: (s) => wire(s, 'InstallSnapshot', 3, (m) => m.to === 5).length === 1 && node(s, 5).snapshot === 0 && node(s, 5).applied === 2 },
    { atMs: 1225, caption: 'Chunk by chunk, each acknowledged before the next: this is the fourth and last.', truth: (s) => wire(s, 'InstallSnapshot', 3, (m) => m.to === 5).length === 1 && node(s, 5).snapshot === 0 },
    { atMs: 1240, caption: 'With the last chunk in, node 5 installs the snapshot in one step: its state jumps to index 10.', truth: (s) => node(s, 5).snapshot === 10 && node(s, 5).applied === 10 && node(s, 5).last === 10 },
    { atMs: 1260, caption: 'AppendEntries (4) brings the entries after the snapshot, 11 to 14, still in the leader’s log.', truth: (s) => wire(s, 'AppendEntries', 3, (m) => m.to === 5 && m.entries === 4 && m.index === 10).length >= 1 },
    { atMs: 1280, caption: 'Node 5 has caught up.', truth: (s) => node(s, 5).commit === 14 && node(s, 5).applied === 14 && node(s, 5).last === 14 },
  ],
  check: (s) => (s.nodes.every((n) => n.commit === 14) && s.nodes[4].snapshot === 10 ? null : 'node 5 should have installed the snapshot at 10 and caught up to 14'),
};

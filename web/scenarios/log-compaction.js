// The "log-compaction" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, others, leads, noLeader } from './common.js';

export default {
  id: 'log-compaction',
  title: 'Log compaction: the snapshot boundary moves',
  options: { ...PLAYGROUND_OPTIONS, snapshotIntervalEntries: 10, snapshotTrailingEntries: 2 },
  endMs: 1500,
  steps: [
    { atMs: 0, caption: 'Each server snapshots its state every 10 applied entries and drops the log before it, keeping the last 2 entries for slow followers (thesis §5.1). Node 3 will lead term 2.', truth: (s) => noLeader(s) && s.nodes.every((n) => n.snapshot === 0 && n.last === 1) },
    { atMs: 600, inputs: [put('k0', '0')], caption: 'Clients write 22 keys, one every 30 ms. The logs grow.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 && s.nodes.every((n) => n.snapshot === 0) },
    // The other 21 writes: input-only steps, no caption of their own.
    ...Array.from({ length: 21 }, (_, k) => ({ atMs: 630 + k * 30, inputs: [put(`k${k + 1}`, String(k + 1))] })),
    { atMs: 840, caption: 'Leader 3 has applied 10 entries: it snapshots its key-value state and discards its log up to index 8 (the hatched block), keeping entries 9 and 10.', truth: (s) => node(s, 3).applied === 10 && node(s, 3).snapshot === 8 && others(s, 3).every((n) => n.snapshot === 0) },
    { atMs: 860, caption: 'Each follower does the same when it has applied 10 entries, on its own: compaction needs no messages and no agreement.', truth: (s) => s.nodes.every((n) => n.snapshot === 8 && n.applied >= 10) },
    { atMs: 1160, caption: 'At 20 applied entries the boundary moves again: node 3 compacts up to index 18. Its log now holds only what came after.', truth: (s) => node(s, 3).applied === 20 && node(s, 3).snapshot === 18 && others(s, 3).every((n) => n.snapshot === 8) },
    { atMs: 1180, caption: 'The followers follow suit. The logs stay short however many writes come; the snapshot stands in for everything before it.', truth: (s) => s.nodes.every((n) => n.snapshot === 18) },
    { atMs: 1320, caption: 'All 24 entries are committed and applied everywhere. Every log starts after index 18.', truth: (s) => s.nodes.every((n) => n.commit === 24 && n.applied === 24 && n.snapshot === 18) },
    { atMs: 1400, inputs: [{ type: 'snapshot', node: 1 }], caption: 'A server can also snapshot on demand: node 1 snapshots at index 24 now and compacts up to 22. The others keep their own boundary.', truth: (s) => node(s, 1).snapshot === 22 && others(s, 1).every((n) => n.snapshot === 18) },
  ],
  check: (s) => (s.nodes.every((n) => n.commit === 24) && s.nodes[0].snapshot === 22 && s.nodes[2].snapshot === 18 ? null : 'every server should hold 24 entries, compacted to 18 (node 1: 22)'),
};

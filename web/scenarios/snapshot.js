// The "snapshot" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, wire } from './common.js';

export default {
  id: 'snapshot',
  title: 'A slow follower gets a snapshot',
  options: { ...PLAYGROUND_OPTIONS, snapshotIntervalEntries: 10, snapshotTrailingEntries: 2 },
  endMs: 1600,
  steps: [
    { atMs: 0, caption: 'Every server snapshots its state every 10 applied entries and drops the log before it (keeping 2).', truth: (s) => s.nodes.every((n) => n.snapshot === 0) },
    { atMs: 500, inputs: [{ type: 'crash', node: 5 }], caption: 'Node 5 crashes.', truth: (s) => node(s, 5).liveness === 'down' },
    {
      atMs: 600,
      inputs: [put('k0', '0')],
      caption: 'Clients write 24 keys, one every 20 ms. The others commit them and take snapshots (the hatched block in their logs).',
      truth: (s) => node(s, 3).last === 3,
    },
    // The other 23 writes: input-only steps, no caption of their own.
    ...Array.from({ length: 23 }, (_, k) => ({ atMs: 620 + k * 20, inputs: [put(`k${k + 1}`, String(k + 1))] })),
    { atMs: 1300, inputs: [{ type: 'restart', node: 5 }], caption: 'Node 5 restarts, far behind.', truth: (s) => node(s, 5).liveness === 'up' && node(s, 5).last === 2 && [1, 2, 3, 4].every((id) => node(s, id).snapshot > 2) },
    { atMs: 1343, caption: 'The entries node 5 lacks are gone from the leader’s log, compacted into its snapshot: the leader sends InstallSnapshot (teal ⬢) instead of AppendEntries.', truth: (s) => wire(s, 'InstallSnapshot', 3, (m) => m.to === 5).length === 1 },
    { atMs: 1360, caption: 'Node 5 installs the snapshot: its state jumps to index 20 in one step.', truth: (s) => node(s, 5).snapshot === 20 && node(s, 5).applied === 20 },
    { atMs: 1380, caption: 'Then ordinary AppendEntries bring it the few entries after the snapshot.', truth: (s) => wire(s, 'AppendEntries', 3, (m) => m.to === 5 && m.entries > 0).length >= 1 },
    { atMs: 1446, caption: 'Node 5 has caught up.', truth: (s) => node(s, 5).commit === node(s, 3).commit && node(s, 5).applied === node(s, 3).commit },
  ],
  check: (s) => (s.nodes.every((n) => n.commit === s.committed) && s.nodes[4].snapshot > 0 ? null : 'node 5 should have installed a snapshot and caught up'),
};

// The "wiped-disk" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, leads, noLeader } from './common.js';

export default {
  id: 'wiped-disk',
  title: 'A wiped disk breaks safety (the checker catches it)',
  options: { ...PLAYGROUND_OPTIONS, nodes: 3, seed: 2 },
  endMs: 2000,
  steps: [
    { atMs: 0, caption: 'Three servers. Raft assumes a disk keeps what it promised; here one will not.', truth: (s) => s.nodes.length === 3 && noLeader(s) },
    {
      atMs: 400,
      inputs: [{ type: 'cutLink', from: 3, to: 1 }, { type: 'cutLink', from: 1, to: 3 }],
      caption: 'Node 3 leads term 2. We cut the link between nodes 3 and 1.',
      truth: (s) => leads(s, 3, 2) && s.cuts.length === 2,
    },
    { atMs: 500, inputs: [put('x', '1')], caption: 'A client writes x=1 to leader 3.', truth: (s) => node(s, 3).last === 3 },
    { atMs: 560, caption: 'Nodes 3 and 2 store x=1, a majority of three: it is committed. Node 1 never got it.', truth: (s) => node(s, 3).commit === 3 && node(s, 2).last === 3 && node(s, 1).last === 2 },
    {
      atMs: 700,
      inputs: [{ type: 'wipeDisk', node: 2 }, { type: 'crash', node: 3 }, { type: 'heal' }],
      caption: 'Node 2 crashes and its disk is wiped: its log and its vote are gone. Node 3 crashes too.',
      truth: (s) => node(s, 2).liveness === 'down' && node(s, 3).liveness === 'down',
    },
    { atMs: 800, inputs: [{ type: 'restart', node: 2 }], caption: 'Node 2 restarts with an empty disk. With node 1 it is a majority of three, and neither holds x=1.', truth: (s) => node(s, 2).liveness === 'up' && node(s, 2).last < 3 && node(s, 1).last === 2 },
    { atMs: 922, caption: 'Node 1 wins term 3 without the committed x=1; its no-op takes index 3, where x=1 was committed. The checker flags it at once (the red badge): Raft’s safety rests on disks that keep their promises.', truth: (s) => leads(s, 1, 3) && node(s, 1).last === 3 && node(s, 1).lastTerm === 3 && s.violations > 0 },
  ],
  /** The checker is meant to flag this run. */
  unsafe: true,
  check: (s) => (s.violations > 0 ? null : 'the checker should flag a violation'),
};

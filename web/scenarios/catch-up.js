// The "catch-up" scenario; one file per scenario, so that a widget loads only its own (see common.js).
import { PLAYGROUND_OPTIONS, put, node, leads, wire, noLeader, same } from './common.js';

export default {
  id: 'catch-up',
  title: 'A new server catches up before it votes',
  options: { ...PLAYGROUND_OPTIONS, votersInitial: 3 },
  endMs: 1500,
  steps: [
    {
      atMs: 0,
      inputs: [
        { type: 'setLink', from: 3, to: 4, latencyMsMin: 80, latencyMsMax: 90 },
        { type: 'setLink', from: 4, to: 3, latencyMsMin: 80, latencyMsMax: 90 },
      ],
      caption: 'Voters 1, 2 and 3; node 4 waits outside, empty. The link between node 3 (soon leader) and node 4 is slow: 80–90 ms each way.',
      truth: (s) => noLeader(s) && [1, 2, 3].every((id) => node(s, id).member === 'voter') && node(s, 4).member === 'none' && node(s, 4).last === 0,
    },
    { atMs: 400, inputs: [put('k0', '0')], caption: 'Node 3 leads term 2. Clients write 30 keys, one every 10 ms.', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 },
    // The other 29 writes: input-only steps, no caption of their own.
    ...Array.from({ length: 29 }, (_, k) => ({ atMs: 410 + k * 10, inputs: [put(`k${k + 1}`, String(k + 1))] })),
    { atMs: 950, caption: 'The three voters have committed 32 entries. Node 4 has none of them.', truth: (s) => [1, 2, 3].every((id) => node(s, id).commit === 32) && node(s, 4).last === 0 },
    { atMs: 1000, inputs: [{ type: 'addVoter', node: 4 }], caption: 'We add node 4 as a voter. Were it a voter at once, a majority of four would be three: with node 4 still empty, losing any one of nodes 1–3 would stall every write until node 4 caught up. So it joins as a learner first (thesis §4.2.1).', truth: (s) => same(s.config.voters, [1, 2, 3]) && same(s.config.learners, [4]) && node(s, 3).last === 33 },
    { atMs: 1090, caption: 'The leader’s first AppendEntries reaches node 4 80–90 ms later; its log does not match (it is empty), so it rejects it (red centre).', truth: (s) => wire(s, 'AppendEntriesResponse', 4, (m) => m.to === 3 && m.flag === 0).length === 1 && node(s, 4).last === 0 },
    { atMs: 1100, inputs: [put('y', '1')], caption: 'Meanwhile a client writes y=1.', truth: (s) => node(s, 3).last === 34 && node(s, 4).last === 0 },
    { atMs: 1140, caption: 'y=1 is committed by 2 of the 3 voters. The learner does not count, so its slow link delays nobody.', truth: (s) => node(s, 3).commit === 34 && node(s, 4).last === 0 && same(s.config.voters, [1, 2, 3]) },
    { atMs: 1180, caption: 'The rejection came back: the leader sends node 4 its whole log, 34 entries, in one AppendEntries.', truth: (s) => wire(s, 'AppendEntries', 3, (m) => m.to === 4 && m.entries === 34 && m.index === 0).length === 1 },
    { atMs: 1260, caption: 'Node 4 stores the 34 entries: it now sees itself as a learner. Its acknowledgment takes another 80–90 ms to reach the leader.', truth: (s) => node(s, 4).last === 34 && node(s, 4).member === 'learner' && same(s.config.voters, [1, 2, 3]) },
    { atMs: 1360, caption: 'The acknowledgment arrives: node 4 holds everything the leader has. Only now does the leader promote it, with a second configuration entry: voters {1, 2, 3, 4}.', truth: (s) => same(s.config.voters, [1, 2, 3, 4]) && s.config.learners.length === 0 && node(s, 3).last === 35 && node(s, 4).last === 34 },
    { atMs: 1400, caption: 'Three of the four voters (1, 2, 3) stored it: committed.', truth: (s) => node(s, 3).commit === 35 && node(s, 4).last === 34 },
    { atMs: 1440, caption: 'The entry reaches node 4 too: it is a voter, with a log as complete as the others’.', truth: (s) => node(s, 4).member === 'voter' && node(s, 4).last === 35 },
  ],
  check: (s) => (s.leader === 3 && same(s.config.voters, [1, 2, 3, 4]) && s.nodes[3].last === 35 ? null : 'node 4 should be a voter, caught up to 35'),
};

// The "client-sessions" scenario; one file per scenario, so that a widget loads only its own (see common.js).
// Client sessions (thesis §6.3): a client whose leader crashed before answering retries its write
// with the same session and sequence number; the store applies it once. The read at the end
// shows it: the retry did not undo a later write. Against a store without the session check the
// retry sets x back to 1: two captions and the end check fail.
import { PLAYGROUND_OPTIONS, node, others, leads, noLeader, read_ } from './common.js';

/** Request `seq` of session `session`: put `key`=`value`. */
const sessionPut = (session, seq, key, value) => ({ type: 'put', key, value, session, seq });

export default {
  id: 'client-sessions',
  title: 'Client sessions: a retried write applied once',
  options: { ...PLAYGROUND_OPTIONS },
  endMs: 1400,
  steps: [
    { atMs: 0, caption: 'A client that gets no answer cannot tell whether its write was lost or applied, so it retries. Raft alone would then apply a write twice; client sessions make each request apply once (thesis §6.3). Node 3 will lead term 2.', truth: (s) => s.nodes.length === 5 && noLeader(s) },
    { atMs: 400, inputs: [{ type: 'register' }], caption: 'A client opens a session: a register command goes through the log (index 3).', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 3 && node(s, 3).commit === 2 },
    { atMs: 426, caption: 'Committed and applied, it opens session 1 in the store. For each session the store keeps the last request number it applied and that request’s answer.', truth: (s) => node(s, 3).commit === 3 && node(s, 3).applied === 3 },
    { atMs: 600, inputs: [sessionPut(1, 1, 'x', '1')], caption: 'The client writes x=1 as request #1 of session 1 (index 4).', truth: (s) => leads(s, 3, 2) && node(s, 3).last === 4 && node(s, 3).commit === 3 },
    { atMs: 629, caption: 'Stored on a majority, x=1 commits. Leader 3 applies it, records request #1 as done, and is about to answer…', truth: (s) => node(s, 3).commit === 4 && node(s, 3).applied === 4 },
    { atMs: 635, inputs: [{ type: 'crash', node: 3 }], caption: '…but it crashes first. The client hears nothing: was x=1 written or not?', truth: (s) => node(s, 3).liveness === 'down' && others(s, 3).every((n) => n.last === 4) },
    { atMs: 911, caption: 'Node 4 wins term 3. Its log holds x=1 too.', truth: (s) => leads(s, 4, 3) && node(s, 4).last === 5 },
    { atMs: 1000, inputs: [{ type: 'put', key: 'x', value: '2' }], caption: 'Meanwhile another client writes x=2 (index 6).', truth: (s) => leads(s, 4, 3) && node(s, 4).last === 6 },
    { atMs: 1100, inputs: [{ type: 'read', node: 4, key: 'x', mode: 'stale' }], caption: 'x=2 is committed and applied: a read at node 4 answers x=2.', truth: (s) => node(s, 4).applied === 6 && read_(s, 0).status === 'ok' && read_(s, 0).value === '2' },
    { atMs: 1200, inputs: [sessionPut(1, 1, 'x', '1')], caption: 'The first client times out and retries at the new leader: the same put x=1, still request #1 of session 1. Leader 4 appends it again: the log now holds this request twice (indexes 4 and 7).', truth: (s) => leads(s, 4, 3) && node(s, 4).last === 7 && node(s, 4).commit === 6 },
    { atMs: 1240, inputs: [{ type: 'read', node: 4, key: 'x', mode: 'stale' }], caption: 'Index 7 commits. Applying it, the store sees that session 1 already applied request #1: it answers with the saved answer and leaves x alone. Node 4 still reads x=2.', truth: (s) => node(s, 4).commit === 7 && node(s, 4).applied === 7 && read_(s, 1).status === 'ok' && read_(s, 1).value === '2' },
    { atMs: 1300, inputs: [{ type: 'read', node: 4, key: 'x', mode: 'linearizable' }], caption: 'A linearizable read of x at the leader…', truth: (s) => read_(s, 2).status === 'pending' },
    { atMs: 1334, caption: '…answers x=2. The retry was applied once, so the other client’s write stands. Without the session, applying the retry again would have set x back to 1: a write from the past.', truth: (s) => read_(s, 2).status === 'ok' && read_(s, 2).value === '2' && read_(s, 2).readIndex === 7 },
  ],
  check: (s) => {
    const seen = s.reads.map((r) => `${r.mode}:${r.status}:${r.value}:${r.readIndex}`).join(' ');
    return seen === 'stale:ok:2:6 stale:ok:2:7 linearizable:ok:2:7' && s.leader === 4 ? null : `reads answered ${seen}, leader ${s.leader}`;
  },
};

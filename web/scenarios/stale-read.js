// The "stale-read" scenario; one file per scenario, so that a widget loads only its own (see common.js).
// A stale read, as the history panel shows it (web/history.js)
// The read-modes run up to its stale read (the same inputs, so the same deterministic run), then
// the picture: the linearizability checker cannot place that read. `panel` names the side panel
// the scenario opens.
import { PLAYGROUND_OPTIONS, read_ } from './common.js';
import readModes from './read-modes.js';

export default {
  id: 'stale-read',
  title: 'A stale read is not linearizable',
  options: { ...PLAYGROUND_OPTIONS },
  endMs: 1760,
  panel: 'history-panel',
  steps: [
    ...readModes.steps.filter((step) => step.atMs <= 1700),
    { atMs: 1720, caption: 'The History panel shows why this is not linearizable (thesis §6.3): get x returned 1 after put x=2 had completed. No order of put x=1, put x=2 and this get fits one copy of x, so the checker marks the get (!) as the operation it cannot place.', truth: (s) => read_(s, 3).status === 'ok' && read_(s, 3).value === '1' },
  ],
  check: (s) => (s.reads[3]?.status === 'ok' && s.reads[3].value === '1' ? null : `the stale read answered ${JSON.stringify(s.reads[3])}`),
};

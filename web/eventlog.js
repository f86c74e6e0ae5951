// Event rows from the wasm (`[timeMs, kind, node, a, b]`) as sentences for the event log.

import { LIVENESS, ROLES } from './model.js';

const KIND_ROLE = 0;
const KIND_TERM = 1;
const KIND_LIVENESS = 2;
const KIND_COMMIT = 3;
const KIND_VIOLATION = 4;
const KIND_MEMBER = 5;
const KIND_SNAPSHOT = 6;
const KIND_READ = 7;
const MEMBER = ['no longer a member', 'a voter', 'a learner'];

/**
 * One sentence per row; commits are merged into one line per drain so fast runs stay readable.
 * `readAt(id)` gives an answered client read (`readResult(id)` of the wasm) for its sentence.
 */
export function describeEvents(rows, violations, readAt = () => undefined) {
  const lines = [];
  let commitFrom = null;
  let commitTo = null;
  let commitAt = 0;
  for (let k = 0; k + 4 < rows.length; k += 5) {
    const [timeMs, kind, node, a, b] = rows.subarray(k, k + 5);
    switch (kind) {
      case KIND_ROLE:
        lines.push({
          timeMs,
          text: `node ${node} became ${ROLES[a]}${a === 3 ? ` of term ${b}` : ` (term ${b})`}`,
          tone: a === 3 ? 'leader' : '',
          // An election started: counted by term, so a split vote's two candidates are one.
          ...(a === 2 ? { candidateTerm: b } : {}),
        });
        break;
      case KIND_TERM:
        lines.push({ timeMs, text: `node ${node} moved to term ${a}`, tone: '' });
        break;
      case KIND_LIVENESS:
        lines.push({ timeMs, text: `node ${node} is ${LIVENESS[a] === 'up' ? 'running' : LIVENESS[a]}`, tone: LIVENESS[a] === 'down' ? 'bad' : '' });
        break;
      case KIND_COMMIT:
        commitFrom ??= b + 1;
        commitTo = a;
        commitAt = timeMs;
        break;
      case KIND_VIOLATION: {
        const v = violations?.[a];
        lines.push({ timeMs, text: `safety violated: ${v ? `${v.property}: ${v.detail}` : 'see the checker'}`, tone: 'bad' });
        break;
      }
      case KIND_MEMBER:
        lines.push({ timeMs, text: `node ${node} is now ${MEMBER[a] ?? 'changed'}`, tone: '' });
        break;
      case KIND_SNAPSHOT:
        lines.push({ timeMs, text: `node ${node} holds a snapshot up to index ${a}`, tone: '' });
        break;
      case KIND_READ: {
        const read = readAt(a);
        lines.push({ timeMs, text: read?.text ?? `node ${node} answered read ${a}`, tone: b === 1 ? 'read' : 'read-failed' });
        break;
      }
      default:
        break;
    }
  }
  if (commitTo !== null) {
    const range = commitTo === commitFrom ? `entry ${commitTo}` : `entries ${commitFrom}–${commitTo}`;
    lines.push({ timeMs: commitAt, text: `${range} committed`, tone: 'good' });
  }
  return lines;
}

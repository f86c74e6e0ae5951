// Every scripted scenario, for the playground (app.js) and the tests: each lives in
// web/scenarios/<id>.js (a docs widget fetches only its own: scenarios/common.js's loadScenario).
// The helpers they share are re-exported from scenarios/common.js.
import firstElection from './scenarios/first-election.js';
import splitVote from './scenarios/split-vote.js';
import logReplication from './scenarios/log-replication.js';
import leaderCrash from './scenarios/leader-crash.js';
import minorityPartition from './scenarios/minority-partition.js';
import figure8 from './scenarios/figure-8.js';
import preVote from './scenarios/pre-vote.js';
import noPreVote from './scenarios/no-pre-vote.js';
import membershipChange from './scenarios/membership-change.js';
import catchUp from './scenarios/catch-up.js';
import logCompaction from './scenarios/log-compaction.js';
import snapshot from './scenarios/snapshot.js';
import snapshotChunks from './scenarios/snapshot-chunks.js';
import leadershipTransfer from './scenarios/leadership-transfer.js';
import browserVoter from './scenarios/browser-voter.js';
import readModes from './scenarios/read-modes.js';
import staleRead from './scenarios/stale-read.js';
import leaseReads from './scenarios/lease-reads.js';
import barrier from './scenarios/barrier.js';
import clientSessions from './scenarios/client-sessions.js';
import logRepair from './scenarios/log-repair.js';
import checkQuorum from './scenarios/check-quorum.js';
import persistence from './scenarios/persistence.js';
import wipedDisk from './scenarios/wiped-disk.js';
import jointConsensus from './scenarios/joint-consensus.js';
import removeLeader from './scenarios/remove-leader.js';
import { SCENARIO_IDS } from './scenarios/common.js';

export { PLAYGROUND_OPTIONS, SCENARIO_IDS, captionAt, captionedSteps, loadScenario, readingMs, scheduleScenario } from './scenarios/common.js';

/** Every scenario, in the playground's order (SCENARIO_IDS). */
export const SCENARIOS = [firstElection, splitVote, logReplication, leaderCrash, minorityPartition, figure8, preVote, noPreVote, membershipChange, catchUp, logCompaction, snapshot, snapshotChunks, leadershipTransfer, browserVoter, readModes, staleRead, leaseReads, barrier, clientSessions, logRepair, checkQuorum, persistence, wipedDisk, jointConsensus, removeLeader];
if (SCENARIOS.map((s) => s.id).join() !== SCENARIO_IDS.join()) throw new Error('scenarios.js and scenarios/common.js list different scenarios');

/** Scenarios the simulator cannot stage yet (none: membership, snapshots and transfer landed). */
export const PENDING_SCENARIOS = [];

/** The scenario with `id`, or undefined. */
export function findScenario(id) {
  return SCENARIOS.find((s) => s.id === id);
}

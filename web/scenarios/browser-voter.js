// The "browser-voter" scenario; one file per scenario, so that a widget loads only its own (see common.js).
// A voter that never campaigns (issue 14)
// Node 3 stands for a browser tab that votes: `nonCampaigning: 1` makes the last voter run with
// raft-core's `Config::campaigns = false`, and every server knows it (`set_peer_campaigns`).
import { PLAYGROUND_OPTIONS, put, node, leads, wire, noLeader } from './common.js';

export default {
  id: 'browser-voter',
  title: 'A browser voter: votes, never campaigns',
  options: { ...PLAYGROUND_OPTIONS, nodes: 3, nonCampaigning: 1 },
  endMs: 3300,
  steps: [
    { atMs: 0, caption: 'Three voters. Node 3 stands for a browser tab that votes: it stores the log and votes like any voter, but it never campaigns, so it has no election timer (no arc).', truth: (s) => s.nodes.length === 3 && node(s, 3).campaigns === false && node(s, 1).campaigns && node(s, 2).campaigns && node(s, 3).timerTimeout === 0 && node(s, 1).timerTimeout > 0 && noLeader(s) },
    { atMs: 302, caption: 'Node 1 times out first and wins term 2 with the votes of node 2 and the tab.', truth: (s) => leads(s, 1, 2) && node(s, 3).term === 2 },
    { atMs: 600, inputs: [{ type: 'crash', node: 2 }], caption: 'Node 2 crashes. Node 1 and the tab are still two of three: a majority.', truth: (s) => node(s, 2).role === 'down' && leads(s, 1, 2) },
    { atMs: 700, inputs: [put('x', '1')], caption: 'A client writes x=1.', truth: (s) => node(s, 1).last === 3 && node(s, 1).commit === 2 },
    { atMs: 722, caption: 'The tab’s acknowledgement commits x=1: it counts in a majority like any voter.', truth: (s) => node(s, 1).commit === 3 && node(s, 3).last === 3 && node(s, 2).last === 2 },
    { atMs: 900, inputs: [{ type: 'crash', node: 1 }], caption: 'Node 1 crashes too. Only the tab is up.', truth: (s) => noLeader(s) && node(s, 1).role === 'down' && node(s, 3).role === 'follower' },
    { atMs: 1450, caption: 'Nothing happens. The tab hears no leader, but it never campaigns: no pre-vote, no election, its term stays 2.', truth: (s) => noLeader(s) && node(s, 3).role === 'follower' && node(s, 3).term === 2 && wire(s, 'PreVote', 3).length === 0 && node(s, 3).timerElapsed >= 50 },
    { atMs: 1500, inputs: [{ type: 'restart', node: 2 }], caption: 'Node 2 restarts. It was down when x=1 was written, so its log lacks it.', truth: (s) => node(s, 2).role === 'follower' && node(s, 2).last === 2 && node(s, 3).last === 3 },
    { atMs: 1826, caption: 'Node 2 times out and asks for pre-votes. The tab refuses (red centre): its own log holds x=1, and a vote goes only to a candidate whose log is at least as complete (§5.4.1).', truth: (s) => node(s, 2).role === 'pre-candidate' && wire(s, 'PreVoteResponse', 3, (m) => m.to === 2 && m.flag === 0).length === 1 },
    { atMs: 2250, caption: 'Two of three voters are up, yet there is no leader: the only one that campaigns lags behind the one that never does. This is the price of such voters: keep a majority of voters that campaign.', truth: (s) => noLeader(s) && node(s, 2).role === 'pre-candidate' && node(s, 3).role === 'follower' && node(s, 3).term === 2 },
    { atMs: 2300, inputs: [{ type: 'restart', node: 1 }], caption: 'Node 1 restarts, with x=1 on its disk.', truth: (s) => node(s, 1).role === 'follower' && node(s, 1).last === 3 },
    { atMs: 2599, caption: 'Node 1 campaigns, the tab votes for it, and node 1 leads term 3.', truth: (s) => leads(s, 1, 3) && node(s, 3).term === 3 },
    { atMs: 2800, inputs: [{ type: 'cutLink', from: 1, to: 2 }, { type: 'cutLink', from: 2, to: 1 }], caption: 'Node 2 has caught up. Now cut it off from the leader for a moment…', truth: (s) => leads(s, 1, 3) && node(s, 2).last === 4 && s.cuts.length === 2 },
    { atMs: 2850, inputs: [put('y', '2')], caption: '…and write y=2.', truth: (s) => node(s, 1).last === 5 },
    { atMs: 2912, caption: 'The leader and the tab commit y=2; node 2 missed it. Of the followers, the tab now has the longer log.', truth: (s) => node(s, 1).commit === 5 && node(s, 3).last === 5 && node(s, 2).last === 4 },
    { atMs: 2950, inputs: [{ type: 'transferLeadership', node: null }, { type: 'heal' }], caption: 'Ask the leader to hand over to the best follower. By log alone that would be the tab, but the leader knows the tab never campaigns: it picks node 2 and first brings it up to date (thesis §3.10).', truth: (s) => leads(s, 1, 3) && node(s, 2).last === 4 },
    { atMs: 3070, caption: 'Node 2 holds the whole log: the leader sends it TimeoutNow, and it campaigns at once.', truth: (s) => node(s, 2).role === 'candidate' && node(s, 2).term === 4 && node(s, 2).last === 5 && node(s, 3).role === 'follower' },
    { atMs: 3100, caption: 'Node 2 leads term 4. The tab was never asked to lead, and never will be.', truth: (s) => leads(s, 2, 4) && node(s, 3).role === 'follower' && node(s, 3).campaigns === false },
  ],
  check: (s) => (s.leader === 2 && s.nodes[1].term === 4 && s.nodes[2].role === 'follower' && s.committed >= 5 ? null : 'node 2 should lead term 4, the tab still a follower'),
};

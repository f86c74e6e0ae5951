//! The event log: what changed, noticed by comparing each node before and after every simulator
//! step. The simulator has no event stream yet, so this watches its observers instead; it
//! interprets nothing, it only reports differences.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use raft_core::sim::{Changed, Liveness, Simulation};

use crate::frame::{liveness_code, member_code, role_code};

/// Kind codes of an event row.
pub mod kind {
    /// A node's role changed: `a` = new role code, `b` = its term.
    pub const ROLE: f64 = 0.0;
    /// A node's term changed without a role change: `a` = new term.
    pub const TERM: f64 = 1.0;
    /// A node went up, down or paused: `a` = liveness code, `b` = its term.
    pub const LIVENESS: f64 = 2.0;
    /// The cluster's committed index rose: `a` = new index, `b` = previous.
    pub const COMMIT: f64 = 3.0;
    /// A safety property broke: `a` = the violation's position in `violations()`.
    pub const VIOLATION: f64 = 4.0;
    /// A node's own view of its membership changed: `a` = 0 not a member, 1 voter, 2 learner.
    pub const MEMBER: f64 = 5.0;
    /// A node's snapshot moved: `a` = the index it now covers, `b` = the previous one.
    pub const SNAPSHOT: f64 = 6.0;
    /// A client read was answered: `a` = its id (see `readResult`), `b` = 1 with a value or an
    /// absent key, 0 if it failed.
    pub const READ: f64 = 7.0;
}

/// Numbers per event row: time, kind, node, a, b.
pub const EVENT_STRIDE: usize = 5;

/// Rows kept until drained; older ones are dropped (and counted) so a long fast-forward with
/// nobody draining cannot grow memory without bound.
pub const EVENTS_MAX: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    liveness: u8,
    role: u8,
    term: u64,
    member: u8,
    snapshot: u64,
}

/// Watches a simulation and keeps rows of what changed.
#[derive(Clone, Debug, Default)]
pub struct EventLog {
    seen: Vec<Seen>,
    committed: u64,
    violations: usize,
    rows: VecDeque<[f64; EVENT_STRIDE]>,
    dropped: u64,
    /// Client reads asked and answered when last seen, and the ids still waiting.
    reads_asked: u64,
    reads_answered: u64,
    reads_waiting: Vec<u64>,
}

impl EventLog {
    /// A log that takes `simulation` as it is now as its starting point.
    pub fn new(simulation: &Simulation) -> EventLog {
        EventLog {
            seen: simulation.nodes().iter().map(|n| seen(simulation, n.id.0)).collect(),
            committed: simulation.committed_index().0,
            violations: simulation.violations().len(),
            reads_waiting: simulation.client_reads().filter(|r| r.answer.is_none()).map(|r| r.id).collect(),
            reads_asked: simulation.client_read_counts().0,
            reads_answered: simulation.client_read_counts().1,
            ..EventLog::default()
        }
    }

    /// Compares the nodes the last step may have changed (see [`Simulation::changed`]) with
    /// what was seen last and records the differences.
    pub fn observe(&mut self, simulation: &Simulation) {
        let now = simulation.now_ms() as f64;
        // Looking at every node after every step was most of the cost of a fast-forward
        // through the bindings; most steps are an event addressed to one node.
        let nodes = match simulation.changed() {
            Changed::One(id) => {
                let k = (id.0 as usize).wrapping_sub(1).min(self.seen.len());
                k..(k + 1).min(self.seen.len())
            }
            Changed::All => 0..self.seen.len(),
        };
        for k in nodes {
            let id = k as u64 + 1;
            let current = seen(simulation, id);
            let before = self.seen[k];
            if current == before {
                continue;
            }
            let node = id as f64;
            let term = current.term as f64;
            if current.liveness != before.liveness {
                self.push([now, kind::LIVENESS, node, f64::from(current.liveness), term]);
            }
            if current.role != before.role && current.liveness != liveness_code(Liveness::Down) {
                self.push([now, kind::ROLE, node, f64::from(current.role), term]);
            } else if current.term != before.term && current.liveness != liveness_code(Liveness::Down) {
                self.push([now, kind::TERM, node, term, before.term as f64]);
            }
            let running = current.liveness != liveness_code(Liveness::Down);
            if running && current.member != before.member {
                self.push([now, kind::MEMBER, node, f64::from(current.member), f64::from(before.member)]);
            }
            if running && current.snapshot != before.snapshot {
                self.push([now, kind::SNAPSHOT, node, current.snapshot as f64, before.snapshot as f64]);
            }
            self.seen[k] = current;
        }
        let committed = simulation.committed_index().0;
        if committed != self.committed {
            self.push([now, kind::COMMIT, 0.0, committed as f64, self.committed as f64]);
            self.committed = committed;
        }
        let violations = simulation.violations().len();
        while self.violations < violations {
            self.push([now, kind::VIOLATION, 0.0, self.violations as f64, 0.0]);
            self.violations += 1;
        }
        self.observe_reads(simulation, now);
    }

    /// Reports reads answered since the last look; costs nothing while no read is asked or
    /// answered.
    fn observe_reads(&mut self, simulation: &Simulation, now: f64) {
        let (asked, answered) = simulation.client_read_counts();
        if (asked, answered) == (self.reads_asked, self.reads_answered) {
            return;
        }
        self.reads_waiting.extend(self.reads_asked..asked);
        (self.reads_asked, self.reads_answered) = (asked, answered);
        for id in core::mem::take(&mut self.reads_waiting) {
            // A read no longer remembered is forgotten here too.
            let Some(read) = simulation.client_read(id) else { continue };
            match &read.answer {
                None => self.reads_waiting.push(id),
                Some(answer) => {
                    let ok = f64::from(u8::from(answer.is_ok()));
                    self.push([now, kind::READ, read.node.0 as f64, id as f64, ok]);
                }
            }
        }
    }

    fn push(&mut self, row: [f64; EVENT_STRIDE]) {
        if self.rows.len() == EVENTS_MAX {
            self.rows.pop_front();
            self.dropped += 1;
        }
        self.rows.push_back(row);
    }

    /// Hands out every row kept, oldest first, and forgets them.
    pub fn drain(&mut self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.rows.len() * EVENT_STRIDE);
        for row in self.rows.drain(..) {
            out.extend_from_slice(&row);
        }
        out
    }

    /// Rows dropped because nobody drained them in time.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets kept rows (a copy of a cluster starts with an empty log).
    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

fn seen(simulation: &Simulation, id: u64) -> Seen {
    let Some(node) = simulation.node(raft_core::NodeId(id)) else {
        return Seen { liveness: 0, role: 0, term: 0, member: 0, snapshot: 0 };
    };
    let liveness = liveness_code(node.liveness());
    match node.raft.as_ref() {
        Some(raft) => Seen {
            liveness,
            role: role_code(raft.role()),
            term: raft.term().0,
            member: member_code(raft.membership(), node.id),
            snapshot: raft.snapshot_index().0,
        },
        // A crashed node keeps what it was; its restart reports any change.
        None => Seen { liveness, role: 0, term: node.storage.hard_state.term.0, member: 1, snapshot: 0 },
    }
}

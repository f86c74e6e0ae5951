//! The external inputs of a run, and the nemesis that writes them from a seed.
//!
//! A run is fixed by its [`SimConfig`] and its [`Script`]: replaying both gives the same trace
//! hash, on every target. The nemesis turns a seed and a [`FaultSet`] into a script, and the
//! playground appends whatever the user does to the same kind of script.

use crate::node::MembershipChange;
use crate::reads::ReadMode;
use crate::rng::Rng;
use crate::sim::config::{FaultSet, LinkConfig, SimConfig};
use crate::types::NodeId;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use bytes::Bytes;

/// One thing done to the cluster from outside.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// A client proposes `data` to whichever server currently leads (highest term wins).
    Propose {
        /// The command.
        data: Bytes,
    },
    /// A client proposes `data` to one particular server (refused unless it leads).
    ProposeTo {
        /// The server asked.
        node: NodeId,
        /// The command.
        data: Bytes,
    },
    /// The server stops at once, losing everything it had not persisted.
    Crash(NodeId),
    /// A crashed server starts again from what it persisted.
    Restart(NodeId),
    /// The server crashes and its disk is wiped back to the bootstrap state: it forgets its
    /// votes and log. Raft does not survive this (a lost vote can elect two leaders in one
    /// term); it exists to prove that the checkers notice.
    WipeDisk(NodeId),
    /// The server stops handling ticks and messages; messages queue up for it.
    Pause(NodeId),
    /// A paused server goes on, handling what queued up.
    Resume(NodeId),
    /// The server's election timer fires now.
    Campaign(NodeId),
    /// Cut every link between `side` and the other servers, both ways.
    Partition {
        /// The servers on one side.
        side: Vec<NodeId>,
    },
    /// Cut the link from `from` to `to` only.
    CutLink {
        /// Sender side.
        from: NodeId,
        /// Receiver side.
        to: NodeId,
    },
    /// Restore the link from `from` to `to`.
    RestoreLink {
        /// Sender side.
        from: NodeId,
        /// Receiver side.
        to: NodeId,
    },
    /// Restore every cut link.
    Heal,
    /// Give one directed link its own latency and loss.
    SetLink {
        /// Sender side.
        from: NodeId,
        /// Receiver side.
        to: NodeId,
        /// How the link behaves from now on.
        link: LinkConfig,
    },
    /// The server snapshots its state machine now and compacts its log.
    Snapshot(NodeId),
    /// The current leader is asked to change the configuration (expecting the configuration
    /// it has now).
    ChangeMembership {
        /// The change.
        change: crate::node::MembershipChange,
    },
    /// The current leader is asked to hand over to `target` (or the best other voter).
    TransferLeadership {
        /// The server to hand over to.
        target: Option<NodeId>,
    },
    /// Lose one message that is on the wire (by its [`crate::sim::InFlight`] id).
    DropMessage {
        /// The message's id.
        id: u64,
    },
    /// Deliver one message on the wire a second time, at the same moment.
    DuplicateMessage {
        /// The message's id.
        id: u64,
    },
    /// A client reads `key` through server `node`, checked as `mode` says (thesis §6.4). The
    /// answer is recorded in [`crate::sim::Simulation::client_reads`].
    Read {
        /// The server asked.
        node: NodeId,
        /// The key (of the key-value commands the servers applied). Empty: the key a kv
        /// client last saw written (`k` without a workload), chosen when the read is asked.
        key: Bytes,
        /// How the server checks the read.
        mode: crate::reads::ReadMode,
    },
}

/// External inputs with the simulated time (ms) at which each happens, in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Script {
    /// `(time_ms, input)`, sorted by time; inputs at the same time keep their order.
    pub inputs: Vec<(u64, Input)>,
}

impl Script {
    /// An empty script.
    pub fn new() -> Script {
        Script::default()
    }

    /// Adds an input at `time_ms`, after any others at the same time.
    pub fn push(&mut self, time_ms: u64, input: Input) {
        let position = self.inputs.partition_point(|(t, _)| *t <= time_ms);
        self.inputs.insert(position, (time_ms, input));
    }
}

/// What the nemesis and the client load look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NemesisPlan {
    /// Faults to inject.
    pub faults: FaultSet,
    /// Length of the run.
    pub duration_ms: u64,
    /// A proposal every this many ms (0: none).
    pub propose_interval_ms: u64,
    /// Faults stop, and every server is healed and restarted, this long before the end, so
    /// the run ends with a working cluster.
    pub calm_tail_ms: u64,
}

impl NemesisPlan {
    /// Faults throughout, a proposal every 50 ms, a calm last 3 seconds.
    pub fn new(faults: FaultSet, duration_ms: u64) -> NemesisPlan {
        NemesisPlan { faults, duration_ms, propose_interval_ms: 50, calm_tail_ms: 3_000 }
    }
}

/// The network behaviour implied by a fault set: loss, duplication and reordering are
/// properties of every link rather than scripted events.
pub fn link_for_faults(faults: FaultSet) -> LinkConfig {
    let mut link = LinkConfig::default();
    if faults.loss {
        link.loss_per_mille = 30;
    }
    if faults.duplicate {
        link.duplicate_per_mille = 20;
    }
    if faults.reorder {
        link.latency_ms_max = 25;
    }
    link
}

/// Writes a script of proposals and faults from the config's seed.
pub fn generate(config: &SimConfig, plan: &NemesisPlan) -> Script {
    // A stream of its own, so that adding a fault kind does not move the network's randomness.
    let mut rng = Rng::new(config.seed ^ 0x6E65_6D65_7369_7321);
    let mut script = Script::new();
    let ids: Vec<NodeId> = config.node_ids().collect();
    if plan.propose_interval_ms > 0 {
        let mut time = plan.propose_interval_ms;
        let mut counter: u64 = 0;
        while time < plan.duration_ms {
            counter += 1;
            script.push(time, Input::Propose { data: Bytes::copy_from_slice(&counter.to_le_bytes()) });
            time += plan.propose_interval_ms;
        }
    }
    let kinds = fault_kinds(plan.faults);
    let fault_end = plan.duration_ms.saturating_sub(plan.calm_tail_ms);
    if !kinds.is_empty() && ids.len() > 1 {
        let mut time = 500 + rng.range(0, 500);
        while time < fault_end {
            let length_ms = rng.range(50, 2_500);
            let end = (time + length_ms).min(fault_end);
            let kind = kinds[rng.range(0, kinds.len() as u64) as usize];
            push_fault(&mut script, &mut rng, &ids, kind, time, end);
            // Faults overlap sometimes: the next one may start before this one ends.
            time += rng.range(length_ms / 2, length_ms + 1_500);
        }
    }
    if plan.faults.reads && !ids.is_empty() {
        push_reads(&mut script, config.seed, &ids, plan.duration_ms);
    }
    // The calm tail: everything healed, every server running.
    for &id in &ids {
        if plan.faults.crash || plan.faults.amnesia {
            script.push(fault_end, Input::Restart(id));
        }
        if plan.faults.pause {
            script.push(fault_end, Input::Resume(id));
        }
    }
    if plan.faults.partition || plan.faults.one_way {
        script.push(fault_end, Input::Heal);
    }
    if plan.faults.membership {
        // Every server a voter again; retried, since a change may be in progress.
        let everyone: BTreeSet<NodeId> = ids.iter().copied().collect();
        for delay_ms in [300, 900, 1_500, 2_100] {
            let change = MembershipChange::ReplaceVoters(everyone.clone());
            script.push(fault_end + delay_ms, Input::ChangeMembership { change });
        }
    }
    script
}

/// Client reads through random servers in random modes, every 20 to 100 ms, on a stream of
/// their own (so adding them leaves the faults where they were).
fn push_reads(script: &mut Script, seed: u64, ids: &[NodeId], duration_ms: u64) {
    let mut rng = Rng::new(seed ^ 0x7265_6164_7321);
    let mut time = rng.range(20, 100);
    while time < duration_ms {
        let node = pick(&mut rng, ids);
        let mode = match rng.range(0, 3) {
            0 => ReadMode::Linearizable,
            1 => ReadMode::Lease,
            _ => ReadMode::Stale,
        };
        let key = Bytes::from_static(b"k");
        script.push(time, Input::Read { node, key, mode });
        time += rng.range(20, 101);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultKind {
    Membership,
    Transfer,
    Crash,
    Amnesia,
    Partition,
    OneWay,
    Pause,
    LossBurst,
}

fn fault_kinds(faults: FaultSet) -> Vec<FaultKind> {
    let mut kinds = Vec::new();
    if faults.crash {
        kinds.push(FaultKind::Crash);
    }
    if faults.partition {
        kinds.push(FaultKind::Partition);
    }
    if faults.one_way {
        kinds.push(FaultKind::OneWay);
    }
    if faults.pause {
        kinds.push(FaultKind::Pause);
    }
    if faults.amnesia {
        kinds.push(FaultKind::Amnesia);
    }
    if faults.membership {
        kinds.push(FaultKind::Membership);
    }
    if faults.transfer {
        kinds.push(FaultKind::Transfer);
    }
    if faults.corners {
        kinds.push(FaultKind::LossBurst);
    }
    kinds
}

fn pick(rng: &mut Rng, ids: &[NodeId]) -> NodeId {
    ids[rng.range(0, ids.len() as u64) as usize]
}

fn push_fault(script: &mut Script, rng: &mut Rng, ids: &[NodeId], kind: FaultKind, start: u64, end: u64) {
    match kind {
        FaultKind::Crash => {
            let victim = pick(rng, ids);
            script.push(start, Input::Crash(victim));
            script.push(end, Input::Restart(victim));
        }
        FaultKind::Membership => {
            let victim = pick(rng, ids);
            let change = |change| Input::ChangeMembership { change };
            match rng.range(0, 3) {
                0 => {
                    script.push(start, change(MembershipChange::RemoveServer(victim)));
                    script.push(end, change(MembershipChange::AddVoter(victim)));
                }
                1 => {
                    script.push(start, change(MembershipChange::DemoteVoter(victim)));
                    script.push(end, change(MembershipChange::AddVoter(victim)));
                }
                _ => {
                    // A new voter set of any size from one server up, in one joint step.
                    let size = rng.range(1, ids.len() as u64 + 1) as usize;
                    let mut pool: Vec<NodeId> = ids.to_vec();
                    let mut voters = BTreeSet::new();
                    while voters.len() < size {
                        let k = rng.range(0, pool.len() as u64) as usize;
                        voters.insert(pool.swap_remove(k));
                    }
                    script.push(start, change(MembershipChange::ReplaceVoters(voters)));
                    script.push(end, change(MembershipChange::ReplaceVoters(ids.iter().copied().collect())));
                }
            }
        }
        FaultKind::Transfer => {
            let target = if rng.chance(1, 2) { Some(pick(rng, ids)) } else { None };
            script.push(start, Input::TransferLeadership { target });
        }
        FaultKind::Amnesia => {
            let victim = pick(rng, ids);
            script.push(start, Input::WipeDisk(victim));
            script.push(end, Input::Restart(victim));
        }
        FaultKind::Pause => {
            let victim = pick(rng, ids);
            script.push(start, Input::Pause(victim));
            script.push(end, Input::Resume(victim));
        }
        FaultKind::Partition => {
            // Any split: a minority, an even split, or a single isolated server.
            let side_size = rng.range(1, ids.len() as u64) as usize;
            let mut pool: Vec<NodeId> = ids.to_vec();
            let mut side = Vec::with_capacity(side_size);
            for _ in 0..side_size {
                let k = rng.range(0, pool.len() as u64) as usize;
                side.push(pool.swap_remove(k));
            }
            side.sort();
            script.push(start, Input::Partition { side });
            script.push(end, Input::Heal);
        }
        FaultKind::LossBurst => {
            // Everything to one server is lost for a while, under a burst of proposals: a whole
            // in-flight window (and every answer to it) disappears.
            let victim = pick(rng, ids);
            let end = end.min(start + 800);
            for &other in ids.iter().filter(|&&id| id != victim) {
                script.push(start, Input::CutLink { from: other, to: victim });
                script.push(end, Input::RestoreLink { from: other, to: victim });
            }
            let mut time = start;
            let mut counter = 0u64;
            while time < end {
                counter += 1;
                let data = Bytes::copy_from_slice(&(u64::MAX - counter).to_le_bytes());
                script.push(time, Input::Propose { data });
                time += 5;
            }
        }
        FaultKind::OneWay => {
            let from = pick(rng, ids);
            let mut to = pick(rng, ids);
            if to == from {
                to = ids[(ids.iter().position(|&i| i == from).unwrap_or(0) + 1) % ids.len()];
            }
            script.push(start, Input::CutLink { from, to });
            script.push(end, Input::RestoreLink { from, to });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_script() {
        let config = SimConfig::new(5, 42);
        let plan = NemesisPlan::new(FaultSet::all(), 60_000);
        assert_eq!(generate(&config, &plan), generate(&config, &plan));
        let other = SimConfig::new(5, 43);
        assert_ne!(generate(&config, &plan), generate(&other, &plan));
    }

    #[test]
    fn script_stays_sorted() {
        let config = SimConfig::new(5, 7);
        let script = generate(&config, &NemesisPlan::new(FaultSet::all(), 30_000));
        assert!(script.inputs.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}

//! The nemeses, one at a time: what each does to the cluster and how it is undone.

use crate::cluster::Processes;
use crate::net::Links;
use std::time::Duration;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// A minority of followers is cut off from the rest; the leader keeps its majority.
    MinorityPartition,
    /// The leader alone is cut off.
    IsolateLeader,
    /// The leader and a follower are cut off from the other three (5 nodes): the majority
    /// must elect on its own.
    LeaderInMinority,
    /// Two halves joined only through one node that sees both (5 nodes; Jepsen's "bridge").
    Bridge,
    /// kill -9 of a follower, restarted at the heal.
    KillFollower,
    /// kill -9 of the leader, restarted at the heal.
    KillLeader,
    /// kill -9 of the leader and enough followers to leave a minority, restarted at the heal.
    KillMajority,
    /// SIGSTOP of the leader for longer than an election timeout, then SIGCONT.
    PauseLeader,
    /// 30 % of the packets between nodes dropped, every link, both ways.
    PacketLoss,
    /// A follower is cut off and healed; the moment one leader is agreed, it is killed: the
    /// survivors must elect over links that just healed.
    KillLeaderAfterHeal,
}

impl Fault {
    /// The kinds a short run (in `npm test`) tries on a cluster of `size`: every kind on 3
    /// nodes, on 5 the ones that differ with a larger cluster.
    pub fn short_kinds(size: u64) -> Vec<Fault> {
        if size >= 5 {
            vec![Fault::LeaderInMinority, Fault::Bridge, Fault::KillMajority, Fault::KillLeaderAfterHeal]
        } else {
            Fault::kinds(size)
        }
    }

    /// The kinds that make sense for a cluster of `size`.
    pub fn kinds(size: u64) -> Vec<Fault> {
        let mut kinds = vec![
            Fault::MinorityPartition,
            Fault::IsolateLeader,
            Fault::KillFollower,
            Fault::KillLeader,
            Fault::KillMajority,
            Fault::PauseLeader,
            Fault::PacketLoss,
            Fault::KillLeaderAfterHeal,
        ];
        if size >= 5 {
            kinds.insert(2, Fault::LeaderInMinority);
            kinds.insert(3, Fault::Bridge);
        }
        kinds
    }

    /// Whether the leader from before the fault stays up and reachable by clients, so probes
    /// can measure how long it keeps them waiting once it lost leadership.
    pub fn probes_leader(self) -> bool {
        matches!(
            self,
            Fault::IsolateLeader
                | Fault::LeaderInMinority
                | Fault::Bridge
                | Fault::PacketLoss
                | Fault::MinorityPartition
        )
    }

    /// Whether the fault is a network partition (the heal-to-one-leader target applies).
    pub fn is_partition(self) -> bool {
        matches!(
            self,
            Fault::MinorityPartition | Fault::IsolateLeader | Fault::LeaderInMinority | Fault::Bridge
        )
    }

    /// How long the fault lasts in round `round` of a long run: partitions of any length
    /// (up to 20 s), pauses longer than an election timeout.
    pub fn length(self, round: usize, long: bool) -> Duration {
        let ms: &[u64] = match (long, self) {
            (false, _) => &[1_000],
            (true, Fault::PauseLeader) => &[1_000, 2_000, 4_000],
            (true, Fault::KillFollower | Fault::KillLeader | Fault::KillMajority) => &[1_000, 3_000],
            (true, _) => &[1_000, 3_000, 7_000, 20_000],
        };
        Duration::from_millis(ms[round % ms.len()])
    }
}

/// What was done, so that it can be undone.
pub enum Applied {
    Links,
    Killed(Vec<u64>),
    Paused(u64),
}

/// The nodes other than `leader`, in a rotating order so that every node takes every role.
pub fn others(processes: &Processes, leader: u64, round: usize) -> Vec<u64> {
    let mut others: Vec<u64> = processes.all().into_iter().filter(|&id| id != leader).collect();
    let len = others.len();
    others.rotate_left(round % len);
    others
}

/// Applies `fault` (all but the kill of `KillLeaderAfterHeal`, which the run does after the heal).
pub fn apply(fault: Fault, processes: &mut Processes, leader: u64, round: usize) -> Result<Applied, String> {
    let size = processes.size;
    let others = others(processes, leader, round);
    let minority = ((size - 1) / 2) as usize;
    let rest =
        |cut: &[u64]| -> Vec<u64> { processes.all().into_iter().filter(|id| !cut.contains(id)).collect() };
    let links = match fault {
        Fault::MinorityPartition | Fault::KillLeaderAfterHeal => {
            let side = others[..minority.max(1).min(others.len() - 1)].to_vec();
            Some(Links::partition(&[side.clone(), rest(&side)]))
        }
        Fault::IsolateLeader => Some(Links::partition(&[vec![leader], rest(&[leader])])),
        Fault::LeaderInMinority => {
            let side = vec![leader, others[0]];
            Some(Links::partition(&[side.clone(), rest(&side)]))
        }
        Fault::Bridge => {
            // Halves {leader, a} and {c, d}, joined by b (the leader keeps a majority through b,
            // which only it and a can reach on that side: Jepsen's bridge).
            let (a, b, c, d) = (others[0], others[1], others[2], others[3]);
            let _ = b;
            Some(Links::Cut(vec![(leader, c), (leader, d), (a, c), (a, d)]))
        }
        Fault::PacketLoss => Some(Links::Loss(30)),
        _ => None,
    };
    if let Some(links) = links {
        links.apply(size)?;
        return Ok(Applied::Links);
    }
    Ok(match fault {
        Fault::KillFollower => {
            processes.kill(others[0]);
            Applied::Killed(vec![others[0]])
        }
        Fault::KillLeader => {
            processes.kill(leader);
            Applied::Killed(vec![leader])
        }
        Fault::KillMajority => {
            let mut victims = vec![leader];
            victims.extend_from_slice(&others[..minority]);
            for &id in &victims {
                processes.kill(id);
            }
            Applied::Killed(victims)
        }
        Fault::PauseLeader => {
            processes.pause(leader);
            Applied::Paused(leader)
        }
        _ => unreachable!("links faults returned above"),
    })
}

/// Undoes what `apply` did.
pub fn heal(applied: &Applied, processes: &mut Processes) -> Result<(), String> {
    match applied {
        Applied::Links => Links::Healed.apply(processes.size)?,
        Applied::Killed(victims) => {
            for &id in victims {
                processes.spawn(id);
            }
        }
        Applied::Paused(id) => processes.resume(*id),
    }
    Ok(())
}

//! Client reads through a chosen server in the simulator (thesis §6.4): what each read mode
//! answers on either side of a partition.

use raft_core::kv::{Command, CommandBody, Operation};
use raft_core::sim::{ClientRead, Input, ReadFailure, Script, SimConfig, Simulation};
use raft_core::{Bytes, NodeId, ReadMode, Role};

fn put(time_ms: u64, key: &str, value: &str) -> Input {
    let operation = Operation::Put {
        key: Bytes::from(key.as_bytes().to_vec()),
        value: Bytes::from(value.as_bytes().to_vec()),
    };
    let command = Command { timestamp_ms: time_ms, body: CommandBody::Request { session: None, operation } };
    Input::Propose { data: command.encode() }
}

/// Reads `key` at `node` now and runs until the read is answered (or `patience_ms` passed).
fn read(
    simulation: &mut Simulation,
    node: NodeId,
    key: &str,
    mode: ReadMode,
    patience_ms: u64,
) -> ClientRead {
    let (asked, _) = simulation.client_read_counts();
    simulation.act(Input::Read { node, key: Bytes::from(key.as_bytes().to_vec()), mode });
    let deadline = simulation.now_ms() + patience_ms;
    simulation.run_until_condition(deadline, |s| s.client_read(asked).is_some_and(|r| r.answer.is_some()));
    simulation.client_read(asked).cloned().expect("the read is recorded")
}

fn value(read: &ClientRead) -> Option<&[u8]> {
    match &read.answer {
        Some(Ok(Some(value))) => Some(&value[..]),
        _ => None,
    }
}

/// A leader cut off into a minority still holds the old value: a stale read there returns it,
/// a linearizable read there fails, and a linearizable read at the majority's new leader sees
/// the new value (thesis §6.4: only reads checked against a majority are linearizable).
#[test]
fn thesis_6_4_stale_reads_go_back_in_time_and_linearizable_reads_do_not() {
    let mut simulation = Simulation::new(SimConfig::new(5, 18), Script::new()).unwrap();
    simulation.run_until(1_000);
    let old_leader = simulation.leader().expect("a leader after a second");
    simulation.act(put(simulation.now_ms(), "x", "1"));
    simulation.run_until(1_500);
    let first = read(&mut simulation, old_leader, "x", ReadMode::Linearizable, 1_000);
    assert_eq!(value(&first), Some(&b"1"[..]), "{first:?}");

    let follower = if old_leader == NodeId(1) { NodeId(2) } else { NodeId(1) };
    simulation.act(Input::Partition { side: vec![old_leader, follower] });
    let new_leader_elected = simulation.run_until_condition(simulation.now_ms() + 5_000, |s| {
        s.leader().is_some_and(|id| id != old_leader && id != follower)
    });
    assert!(new_leader_elected, "the majority elects a leader of its own");
    let new_leader = simulation.leader().unwrap();
    simulation.act(put(simulation.now_ms(), "x", "2"));
    simulation.run_until(simulation.now_ms() + 500);

    let stale = read(&mut simulation, old_leader, "x", ReadMode::Stale, 1_000);
    assert_eq!(value(&stale), Some(&b"1"[..]), "a stale read in the minority: {stale:?}");
    assert_eq!(stale.answered_ms, Some(stale.asked_ms), "answered at once from what is applied");

    let linearizable = read(&mut simulation, old_leader, "x", ReadMode::Linearizable, 5_000);
    assert!(
        matches!(linearizable.answer, Some(Err(ReadFailure::Refused(_)))),
        "a linearizable read in the minority fails: {linearizable:?}"
    );
    assert_eq!(linearizable.read_index, None);
    let lease = read(&mut simulation, follower, "x", ReadMode::Lease, 5_000);
    assert!(matches!(lease.answer, Some(Err(_))), "no lease in the minority either: {lease:?}");

    let fresh = read(&mut simulation, new_leader, "x", ReadMode::Linearizable, 1_000);
    assert_eq!(value(&fresh), Some(&b"2"[..]), "{fresh:?}");
    let index = fresh.read_index.expect("a read index");
    assert!(index >= simulation.node(new_leader).unwrap().raft.as_ref().unwrap().snapshot_index());
    assert!(fresh.answered_ms.unwrap() > fresh.asked_ms, "a ReadIndex round takes a round trip");

    // A follower of the majority forwards the read to its leader.
    let majority_follower =
        (1..=5).map(NodeId).find(|&id| ![old_leader, follower, new_leader].contains(&id)).unwrap();
    assert_eq!(simulation.node(majority_follower).unwrap().raft.as_ref().unwrap().role(), Role::Follower);
    let forwarded = read(&mut simulation, majority_follower, "x", ReadMode::Linearizable, 1_000);
    assert_eq!(value(&forwarded), Some(&b"2"[..]), "{forwarded:?}");
    let missing = read(&mut simulation, new_leader, "nope", ReadMode::Lease, 1_000);
    assert_eq!(missing.answer, Some(Ok(None)), "an absent key is an answer: {missing:?}");
    assert!(simulation.violations().is_empty());
}

/// A server that is down takes no request; one that crashes while a read waits fails it.
#[test]
fn reads_at_a_crashed_server_fail() {
    let mut simulation = Simulation::new(SimConfig::new(3, 4), Script::new()).unwrap();
    simulation.run_until(1_000);
    let leader = simulation.leader().unwrap();
    simulation.act(Input::Crash(leader));
    let down = read(&mut simulation, leader, "x", ReadMode::Stale, 100);
    assert_eq!(down.answer, Some(Err(ReadFailure::NotRunning)));

    let other = (1..=3).map(NodeId).find(|&id| id != leader).unwrap();
    simulation.act(Input::Read { node: other, key: Bytes::from_static(b"x"), mode: ReadMode::Linearizable });
    simulation.act(Input::Crash(other));
    let crashed = simulation.client_reads().last().cloned().unwrap();
    assert!(matches!(crashed.answer, Some(Err(_))), "{crashed:?}");
}

/// Reads are inputs like any other: the same script gives the same answers and the same hash,
/// and the answers are part of the hash.
#[test]
fn reads_replay_and_count_in_the_trace_hash() {
    let mut script = Script::new();
    script.push(900, put(900, "k", "v"));
    for (k, mode) in [ReadMode::Stale, ReadMode::Lease, ReadMode::Linearizable].into_iter().enumerate() {
        for node in 1..=3 {
            let key = Bytes::from_static(b"k");
            script.push(1_200 + 10 * k as u64, Input::Read { node: NodeId(node), key, mode });
        }
    }
    let run = |script: Script| {
        let mut simulation = Simulation::new(SimConfig::new(3, 11), script).unwrap();
        simulation.run_until(3_000);
        (simulation.trace_hash(), simulation.client_reads().cloned().collect::<Vec<_>>())
    };
    let (hash, reads) = run(script.clone());
    assert_eq!(reads.len(), 9);
    assert!(reads.iter().all(|r| r.answer.is_some()), "{reads:?}");
    assert!(
        reads.iter().filter(|r| r.mode != ReadMode::Stale).all(|r| value(r) == Some(&b"v"[..])),
        "{reads:?}"
    );
    assert_eq!(run(script.clone()), (hash, reads));
    let mut other = script;
    other.inputs.retain(|(_, input)| !matches!(input, Input::Read { mode: ReadMode::Stale, .. }));
    assert_ne!(run(other).0, hash);
}

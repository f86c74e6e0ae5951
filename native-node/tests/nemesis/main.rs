//! Nemesis test (issue 12): real `raft-node` processes, 3 and then 5, each in its own network
//! namespace behind a bridge (see `net.rs`), under one fault at a time, cycling (see
//! `faults.rs`): minority partitions, an isolated leader, the leader in a minority and a bridge
//! partition (5 nodes), kill -9 of a follower, the leader or a majority with restart, SIGSTOP of
//! the leader for longer than an election timeout, 30 % packet loss (nftables drop rules: this
//! kernel has no netem), and the kill of a leader the moment it is agreed after a heal.
//!
//! Concurrent clients do put, compare-and-swap and linearizable get (`workload.rs`); the history
//! is checked with raft-core's linearizability checker, and a stale-read control must be flagged
//! by the same checker, to show it has teeth. After every heal (clients paused) and at the end:
//! one agreed leader, every acknowledged write readable on every replica, replicas equal, no
//! node exited unexpectedly. Bounds in asserts are correctness bounds (15 s); the availability
//! targets are figures, printed per fault kind: write stall (longest gap between acknowledged
//! writes from the fault to a second (short run: half a second) after the one leader), heal to one agreed leader, the survivors'
//! election after a leader kill, and how long a client waits for an answer from a leader that
//! lost leadership (probes: single-attempt writes sent to it every 25 ms during the fault).
//!
//! Run (root, `ip` and `nft`; scripts/setup.sh installs them):
//! - short (~60 s, in `npm test`): `FLOTILLA_NEMESIS=short cargo test -p native-node --release --test nemesis -- --nocapture`
//! - long: `FLOTILLA_NEMESIS=long` (`FLOTILLA_NEMESIS_SECONDS`, default 240, per cluster size).
//!
//! Without the variable, or where namespaces cannot be made, it says so and passes.

mod cluster;
mod faults;
mod net;
mod workload;

use cluster::{agreed_leader, health, wait_for_leader, Processes};
use faults::Fault;
use native_node::client::{Client, ClientConfig};
use net::{Links, Names, Namespaces};
use raft_core::linearizability::{check, HistoryBuilder, Observed, Op, Verdict};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{client_config, client_loop, probe, Recorder};

const INNER: &str = "FLOTILLA_NEMESIS_INNER";
const CLIENTS: u64 = 5;
/// The nodes' default election timeout (`raft-node serve --election-timeout-ms`).
const ELECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// Correctness bound for "one agreed leader" (the targets are figures, not asserts).
const LEADER_BOUND: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Short,
    Long,
}

fn mode() -> Option<Mode> {
    match std::env::var("FLOTILLA_NEMESIS").ok()?.as_str() {
        "long" => Some(Mode::Long),
        "" | "0" => None,
        _ => Some(Mode::Short),
    }
}

#[test]
fn nemesis_real_processes_in_network_namespaces() {
    if let Ok(inner) = std::env::var(INNER) {
        let (prefix, size) = inner.split_once(':').unwrap();
        return run_inner(prefix, size.parse().unwrap());
    }
    let Some(mode) = mode() else {
        eprintln!("nemesis skipped: opt-in, set FLOTILLA_NEMESIS=short (or long); needs root, `ip`, `nft`");
        return;
    };
    if let Some(why) = net::tools_missing() {
        eprintln!("nemesis skipped: {why}");
        return;
    }
    let sizes: &[u64] = &[3, 5];
    for &size in sizes {
        let prefix = format!("flt{}s{size}", std::process::id() % 100_000);
        let names = Names::new(&prefix);
        let namespaces = match Namespaces::create(&names, size) {
            Ok(namespaces) => namespaces,
            Err(why) => {
                eprintln!("nemesis skipped: cannot create network namespaces here: {why}");
                return;
            }
        };
        // The test itself runs again inside the hub namespace, where it reaches every node.
        let exe = std::env::current_exe().unwrap();
        let status = Command::new("ip")
            .args(["netns", "exec", &names.hub()])
            .arg(exe)
            .args([
                "nemesis_real_processes_in_network_namespaces",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(INNER, format!("{prefix}:{size}"))
            .env("FLOTILLA_NEMESIS", if mode == Mode::Long { "long" } else { "short" })
            .status()
            .unwrap();
        drop(namespaces);
        assert!(status.success(), "the nemesis run with {size} nodes failed: {status}");
    }
}

fn run_inner(prefix: &str, size: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run(prefix, size, mode().unwrap_or(Mode::Short)));
}

/// What one fault did to availability.
struct FaultRecord {
    fault: Fault,
    length: Duration,
    /// Longest gap between acknowledged writes from the fault to the settled point.
    stall_ms: u64,
    heal_to_leader: Duration,
    /// Leader kills: from the kill to a leader agreed by the survivors.
    survivors_elect: Option<Duration>,
    /// Longest wait of a probe at the old leader that was not answered `ok`.
    probe_wait: Option<Duration>,
}

async fn run(prefix: &str, size: u64, mode: Mode) {
    let long = mode == Mode::Long;
    let seconds: u64 = if long {
        std::env::var("FLOTILLA_NEMESIS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(240)
    } else {
        0
    };
    let root = std::env::temp_dir().join(format!("flotilla-nemesis-{}-{size}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let mut processes = Processes::start(Names::new(prefix), size, root.clone());
    let all = processes.all();
    if wait_for_leader(&processes, &all, Duration::from_secs(20)).await.is_none() {
        panic!("no first leader (exited: {:?}); logs in {}", processes.exited(), root.display());
    }
    let endpoints: Vec<String> = all.iter().map(|&id| processes.address(id)).collect();

    stale_read_control(&processes).await;

    let recorder = Arc::new(Recorder::new());
    let clients: Vec<_> =
        (1..=CLIENTS).map(|id| tokio::spawn(client_loop(id, endpoints.clone(), recorder.clone()))).collect();
    let kinds = if long { Fault::kinds(size) } else { Fault::short_kinds(size) };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut records: Vec<FaultRecord> = Vec::new();
    let mut witnesses_checked = 0;
    let mut round = 0;
    // Short: every kind once. Long: cycle until the deadline.
    while if long { Instant::now() < deadline } else { round < kinds.len() } {
        let fault = kinds[round % kinds.len()];
        let length = fault.length(round / kinds.len(), long);
        round += 1;
        recorder.epoch.store(round as u64, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some((leader, _)) = wait_for_leader(&processes, &all, LEADER_BOUND).await else {
            panic!("no agreed leader before fault {round} ({fault:?}); logs in {}", root.display());
        };
        let started_ms = recorder.now_ms();
        let probe_stop = Arc::new(AtomicBool::new(false));
        let probes =
            fault.probes_leader().then(|| tokio::spawn(probe(processes.address(leader), probe_stop.clone())));
        let applied = faults::apply(fault, &mut processes, leader, round).unwrap();
        let mut survivors_elect = None;
        if fault == Fault::KillLeader {
            survivors_elect = survivors_election(&processes, leader).await;
        }
        tokio::time::sleep(length).await;
        probe_stop.store(true, Ordering::SeqCst);
        faults::heal(&applied, &mut processes).unwrap();
        let healed = Instant::now();
        let heal_to_leader =
            wait_for_leader(&processes, &all, LEADER_BOUND).await.map(|(l, _)| (l, healed.elapsed()));
        let Some((new_leader, heal_to_leader)) = heal_to_leader else {
            panic!(
                "no agreed leader within {LEADER_BOUND:?} of healing {fault:?}; logs in {}",
                root.display()
            );
        };
        if fault == Fault::KillLeaderAfterHeal {
            // However recent the heal: the survivors must elect within two election timeouts.
            processes.kill(new_leader);
            survivors_elect = survivors_election(&processes, new_leader).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            processes.spawn(new_leader);
            wait_for_leader(&processes, &all, LEADER_BOUND).await.expect("a leader after the restart");
        }
        tokio::time::sleep(Duration::from_millis(if long { 1_000 } else { 500 })).await;
        let settled_ms = recorder.now_ms();
        let longest_probe = match probes {
            Some(task) => task.await.unwrap().into_iter().filter(|a| !a.ok).max_by_key(|a| a.waited),
            None => None,
        };
        let probe_wait = longest_probe.as_ref().map(|a| a.waited);
        let acks = recorder.acks_ms.lock().unwrap().clone();
        let stall_ms = longest_gap(&acks, started_ms, settled_ms);
        println!(
            "nemesis {size} nodes, round {round}: {fault:?} for {} ms: stall {stall_ms} ms, heal to one leader {} ms{}{}",
            length.as_millis(),
            heal_to_leader.as_millis(),
            survivors_elect.map_or(String::new(), |d| format!(", survivors elect in {} ms", d.as_millis())),
            longest_probe.map_or(String::new(), |a| format!(
                ", client wait after leadership loss {} ms ({})",
                a.waited.as_millis(),
                a.answer
            )),
        );
        if fault.is_partition() && heal_to_leader > ELECTION_TIMEOUT + Duration::from_millis(500) {
            println!("  ^ misses the target: heal to one leader within an election timeout + 0.5 s");
        }
        records.push(FaultRecord { fault, length, stall_ms, heal_to_leader, survivors_elect, probe_wait });

        // The checks of every heal, with the clients paused.
        assert!(recorder.quiesce(Duration::from_secs(10)).await, "clients did not finish within 10 s");
        let exited = processes.exited();
        assert!(exited.is_empty(), "nodes {exited:?} exited unexpectedly; logs in {}", root.display());
        let witnesses = recorder.witnesses.lock().unwrap().clone();
        let keys: Vec<String> = (0..3).map(|k| format!("e{round}-k{k}")).collect();
        check_replicas(&processes, &keys, &witnesses[witnesses_checked..]).await;
        witnesses_checked = witnesses.len();
        recorder.resume();
    }
    recorder.stop.store(true, Ordering::SeqCst);
    for client in clients {
        let _ = tokio::time::timeout(Duration::from_secs(10), client).await;
    }
    assert!(agreed_leader(&processes, &all).await.is_some(), "no agreed leader at the end");
    // At the end: every acknowledged write of the whole run, on every replica.
    let witnesses = recorder.witnesses.lock().unwrap().clone();
    check_replicas(&processes, &[], &witnesses).await;
    let exited = processes.exited();
    assert!(exited.is_empty(), "nodes {exited:?} exited unexpectedly; logs in {}", root.display());

    print_figures(size, &records, recorder.acks_ms.lock().unwrap().len(), witnesses.len());
    let builder = std::mem::take(&mut *recorder.history.lock().unwrap());
    let history = builder.build();
    let operations = history.len();
    let result = check(&history);
    println!("nemesis {size} nodes: linearizability {:?} over {operations} operations", result.verdict());
    assert!(result.is_linearizable(), "not linearizable:\n{result}\nlogs in {}", root.display());
    drop(processes);
    let _ = std::fs::remove_dir_all(&root);
}

/// From the kill of `dead` to a leader agreed by the others.
async fn survivors_election(processes: &Processes, dead: u64) -> Option<Duration> {
    let survivors: Vec<u64> = processes.all().into_iter().filter(|&id| id != dead).collect();
    wait_for_leader(processes, &survivors, LEADER_BOUND).await.map(|(_, took)| took)
}

/// With no client running: every replica reaches the same applied index, and holds the same
/// value for each of `keys` and the acknowledged value for each witness. Followers learn the
/// latest commit index only with the leader's next message, and a write whose client gave up
/// (outcome unknown) may still commit later, so the replicas are compared until they agree; a
/// difference fails the run only if it lasts 10 s.
async fn check_replicas(processes: &Processes, keys: &[String], witnesses: &[(String, String)]) {
    let mut replicas: Vec<Client> =
        processes.all().iter().map(|&id| replica_client(processes.address(id))).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = Instant::now();
    let mut first_difference = None;
    loop {
        let difference = replica_difference(processes, &mut replicas, keys, witnesses).await;
        let Some(difference) = difference else {
            if let Some(first) = first_difference {
                println!(
                    "  replicas agreed after {} ms (first look: {first})",
                    started.elapsed().as_millis()
                );
            }
            return;
        };
        first_difference.get_or_insert(difference.clone());
        assert!(Instant::now() < deadline, "replicas still differ after 10 s: {difference}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first difference between the replicas, if any.
async fn replica_difference(
    processes: &Processes,
    replicas: &mut [Client],
    keys: &[String],
    witnesses: &[(String, String)],
) -> Option<String> {
    let all = processes.all();
    let mut applied = Vec::new();
    for &id in &all {
        applied.push(health(&processes.address(id)).await.and_then(|h| h["applied_index"].as_u64()));
    }
    if !applied.iter().all(|a| a.is_some() && *a == applied[0]) {
        return Some(format!("applied indexes {applied:?}"));
    }
    for key in keys {
        let mut values = Vec::new();
        for replica in replicas.iter_mut() {
            values.push(local_value(replica, key).await);
        }
        if !values.iter().all(|v| *v == values[0]) {
            return Some(format!("{key} is {values:?} (applied {applied:?})"));
        }
    }
    for (key, value) in witnesses {
        for (replica, id) in replicas.iter_mut().zip(&all) {
            let found = local_value(replica, key).await;
            if found.as_deref() != Some(value.as_str()) {
                return Some(format!("acknowledged write {key}={value} is {found:?} on node {id}"));
            }
        }
    }
    None
}

/// A client that talks to one node only, once per call (for that node's own replica).
fn replica_client(address: String) -> Client {
    let mut config = ClientConfig::new(vec![address]);
    config.attempt_timeout = Duration::from_secs(1);
    config.call_timeout = Duration::from_millis(1);
    config.use_session = false;
    Client::new(config)
}

async fn local_value(replica: &mut Client, key: &str) -> Option<String> {
    let answer = replica.get(key, "stale").await.unwrap_or_else(|e| panic!("stale get {key}: {e}"));
    answer["value"].as_str().map(str::to_string)
}

/// The checker must flag stale reads: a follower is cut off, a write is acknowledged by the
/// others, then the follower's own replica is read (a stale read) and still has the old value.
async fn stale_read_control(processes: &Processes) {
    let all = processes.all();
    let (leader, _) = wait_for_leader(processes, &all, LEADER_BOUND).await.expect("a leader");
    let follower = all.iter().copied().find(|&id| id != leader).unwrap();
    let endpoints: Vec<String> = all.iter().map(|&id| processes.address(id)).collect();
    let mut writer = Client::new(client_config(endpoints));
    let mut reader = replica_client(processes.address(follower));
    let start = Instant::now();
    let us = || start.elapsed().as_micros() as u64;
    let mut history = HistoryBuilder::new();
    let put = history.invoke(1, us(), Op::put("control", "before"));
    writer.put("control", "before").await.expect("the first control write");
    history.complete(put, us(), Observed::Done).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while local_value(&mut reader, "control").await.as_deref() != Some("before") {
        assert!(Instant::now() < deadline, "node {follower} never applied the control write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Links::partition(&[vec![follower], all.iter().copied().filter(|&id| id != follower).collect()])
        .apply(processes.size)
        .unwrap();
    let put = history.invoke(1, us(), Op::put("control", "after"));
    writer.put("control", "after").await.expect("the second control write");
    history.complete(put, us(), Observed::Done).unwrap();
    let get = history.invoke(2, us(), Op::get("control"));
    let seen = local_value(&mut reader, "control").await;
    history.complete(get, us(), Observed::Value(seen.clone().map(|v| v.into_bytes().into()))).unwrap();
    Links::Healed.apply(processes.size).unwrap();
    assert_eq!(seen.as_deref(), Some("before"), "the cut-off follower should still have the old value");
    let verdict = check(&history.build()).verdict();
    println!("nemesis {} nodes: stale-read control: the checker says {verdict:?}", processes.size);
    assert_eq!(verdict, Verdict::NotLinearizable, "the checker missed a stale read");
}

fn longest_gap(acks_ms: &[u64], from_ms: u64, to_ms: u64) -> u64 {
    let mut previous = from_ms;
    let mut longest = 0;
    for &ack in acks_ms.iter().filter(|a| **a > from_ms && **a <= to_ms) {
        longest = longest.max(ack - previous);
        previous = ack;
    }
    longest.max(to_ms.saturating_sub(previous))
}

fn median_max(mut values: Vec<u128>) -> String {
    if values.is_empty() {
        return "-".into();
    }
    values.sort_unstable();
    format!("{} / {}", values[values.len() / 2], values[values.len() - 1])
}

/// The availability figures per fault kind (median / max, ms), as a Markdown table.
fn print_figures(size: u64, records: &[FaultRecord], acks: usize, witnesses: usize) {
    let et = ELECTION_TIMEOUT.as_millis();
    println!("\nnemesis {size} nodes: {} faults, {acks} acknowledged writes ({witnesses} witnesses); election timeout {et} ms", records.len());
    println!("| {size} nodes: fault | n | lengths (ms) | write stall | heal to one leader | survivors elect | client wait after leadership loss |");
    println!("|---|---|---|---|---|---|---|");
    let mut by_kind: BTreeMap<Fault, Vec<&FaultRecord>> = BTreeMap::new();
    for record in records {
        by_kind.entry(record.fault).or_default().push(record);
    }
    for (fault, list) in by_kind {
        let mut lengths: Vec<u128> = list.iter().map(|r| r.length.as_millis()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        println!(
            "| {fault:?} | {} | {} | {} | {} | {} | {} |",
            list.len(),
            lengths.iter().map(u128::to_string).collect::<Vec<_>>().join(", "),
            median_max(list.iter().map(|r| r.stall_ms as u128).collect()),
            median_max(list.iter().map(|r| r.heal_to_leader.as_millis()).collect()),
            median_max(list.iter().filter_map(|r| r.survivors_elect.map(|d| d.as_millis())).collect()),
            median_max(list.iter().filter_map(|r| r.probe_wait.map(|d| d.as_millis())).collect()),
        );
    }
    println!("(median / max, ms; targets: heal to one leader after a partition <= {} ms, survivors elect <= {} ms, client wait <= {} ms)", et + 500, 2 * et, 3 * et / 2);
}

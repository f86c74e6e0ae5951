//! A learner tab whose admitting node dies before the tab has applied any address record must
//! still reach the rest of the cluster (issue #13).
//!
//! A tab learns where the native members are from the replicated address records it applies;
//! those of a bootstrapped cluster are written at the first join, after everything before it, so
//! a tab catching up through a long log knows only the node that admitted it. If that node dies
//! (kill -9 of the invite's node, or the leader gone) first, the tab cannot dial anyone and no
//! native node can dial a tab. The fix: `Admitted` names the native members and their addresses
//! under a proof of the tab key (`raft_core::wire::member_hints`), and the tab dials them at once.
//!
//! The tab here models the wasm tab: it does not redial the node that admitted it (that node is
//! gone for good anyway). The control test is the same tab ignoring the members `Admitted`
//! names, as every tab did before: it stays stranded, which shows that the first test passes
//! only through them.

mod common;

use common::proxy::Proxy;
use common::tab::{Tab, TabOptions};
use common::{Cluster, SECRET};
use native_node::bench::{self, BenchConfig};
use native_node::client::http_admin;
use raft_core::ReadMode;
use std::time::{Duration, Instant};

const CLUSTER: &str = "flotilla";

async fn invite(address: &str) -> String {
    let path = "/admin/invite?uses=1&ttl_ms=600000";
    let answer = http_admin(&[address.to_string()], Some(SECRET), "POST", path, &[]).await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let value: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    value["link"].as_str().unwrap().to_string()
}

struct Stranded {
    cluster: Cluster,
    tab: Tab,
    old_leader: u64,
    new_leader: u64,
    applied_at_cut: u64,
}

/// A 3-node cluster with a 3,000-put log; a tab admitted by the leader through a proxy that is
/// cut at once (so the tab applies nothing more from it), then the leader stopped for good; a
/// new leader elected and one more write committed (`after-failover` = `yes`).
async fn admit_then_lose_the_admitting_node(name: &str, options: TabOptions) -> Stranded {
    let mut cluster = Cluster::start(3, name).await;
    let old_leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let leader_address = cluster.addresses[(old_leader - 1) as usize].clone();
    // A log before any tab: the first join writes the address records after it.
    let report = bench::run(BenchConfig {
        endpoints: cluster.addresses.clone(),
        clients: 16,
        connections: 2,
        ops: 3_000,
        value_size_bytes: 64,
        use_session: false,
        record: None,
        security: Default::default(),
    })
    .await;
    assert_eq!(report.errors, 0, "{report:?}");
    let before_join = cluster.node(old_leader).raft.status().commit_index;

    let proxy = Proxy::start(leader_address.clone()).await;
    let link = invite(&leader_address).await;
    let token = link.split_once("#join=").unwrap().1;
    let tab = Tab::join_with_options(&proxy.address, token, CLUSTER, None, options).await.unwrap();
    proxy.cut();
    cluster.stop(old_leader).await;
    let applied_at_cut = tab.applied();
    assert!(
        applied_at_cut < before_join,
        "precondition: the admitting node must be gone before the tab applied the address records \
         (written after index {before_join}); it applied {applied_at_cut}"
    );

    let new_leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, old_leader);
    cluster.client().put("after-failover", "yes").await.unwrap();
    Stranded { cluster, tab, old_leader, new_leader, applied_at_cut }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_whose_admitting_leader_dies_before_it_applied_anything_follows_the_new_leader() {
    let options =
        TabOptions { use_member_hints: true, redial_admitting_node: false, ..TabOptions::default() };
    let Stranded { cluster, tab, old_leader, new_leader, applied_at_cut } =
        admit_then_lose_the_admitting_node("tab-stranded", options).await;
    let target = cluster.node(new_leader).raft.status().commit_index;
    let started = Instant::now();
    while tab.applied() < target {
        if started.elapsed() > Duration::from_secs(30) {
            let view = tab.view.lock().unwrap();
            panic!(
                "the tab stalled at {} (cut at {applied_at_cut}, target {target}): connected {:?}, closes {:?}, \
                 messages without a connection {}",
                view.applied, view.connected, view.closes, view.sends_without_connection
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "cut at {applied_at_cut}, caught up to {target} from the new leader {:.2} s after the failover",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        tab.get("after-failover", ReadMode::Linearizable).await.unwrap().as_deref(),
        Some(&b"yes"[..]),
        "a linearizable read through the new leader sees the write made after the failover"
    );
    {
        let view = tab.view.lock().unwrap();
        assert_eq!(view.leader, Some(new_leader));
        let others: Vec<u64> = (1..=3).filter(|id| *id != old_leader).collect();
        assert!(
            others.iter().all(|id| view.connected.contains(id)),
            "connected {:?}, wanted {others:?}",
            view.connected
        );
        assert!(view.apply_violations.is_empty(), "{:?}", view.apply_violations);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_a_tab_that_ignores_the_members_its_admission_names_stays_stranded() {
    let options =
        TabOptions { use_member_hints: false, redial_admitting_node: false, ..TabOptions::default() };
    let Stranded { cluster, tab, old_leader, applied_at_cut, .. } =
        admit_then_lose_the_admitting_node("tab-stranded-control", options).await;
    // Twice the silence after which a tab redials everything it knows: it knows no one alive.
    tokio::time::sleep(Duration::from_secs(4)).await;
    {
        let view = tab.view.lock().unwrap();
        let alive: Vec<u64> = (1..=3).filter(|id| *id != old_leader).collect();
        assert!(
            !view.connected.iter().any(|id| alive.contains(id)),
            "the control tab found a live member: connected {:?}",
            view.connected
        );
        assert_eq!(view.applied, applied_at_cut, "the control tab applied entries from nowhere");
    }
    cluster.shutdown().await;
}

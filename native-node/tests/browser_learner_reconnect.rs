//! A learner tab whose only connection is lost before it has applied any address record must
//! still find the cluster again (issue #13: the 8-tab figure's tabs stalled at a multiple of
//! 256 entries for good).
//!
//! The address records of a bootstrapped cluster's members are written at the first join, so
//! they sit at the end of a long log and a tab catching up from its start learns no address
//! until the end of its catch-up. Until then its join socket is its only link: when the leader
//! closed it (a write timeout under load), the test tab had nowhere to redial, and the leader
//! cannot dial a tab. The fix (in `common/tab.rs`, as the wasm tab already does): the tab
//! redials the node that admitted it, and drops connections silent for two seconds.

mod common;

use common::proxy::Proxy;
use common::tab::{Tab, TabOptions};
use common::{Cluster, SECRET};
use native_node::bench::{self, BenchConfig};
use native_node::client::http_admin;
use std::time::{Duration, Instant};

const CLUSTER: &str = "flotilla";

async fn invite(address: &str) -> String {
    let path = "/admin/invite?uses=1&ttl_ms=600000";
    let answer = http_admin(&[address.to_string()], Some(SECRET), "POST", path, &[]).await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let value: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    value["link"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_cut_off_before_it_applied_any_address_record_reconnects_and_catches_up() {
    let cluster = Cluster::start(3, "tab-reconnect").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let leader_address = cluster.addresses[(leader - 1) as usize].clone();
    // A log of 5,000 puts before any tab: the first join writes the address records after it.
    let report = bench::run(BenchConfig {
        endpoints: cluster.addresses.clone(),
        clients: 16,
        connections: 2,
        ops: 5_000,
        value_size_bytes: 64,
        use_session: false,
        record: None,
        security: Default::default(),
    })
    .await;
    assert_eq!(report.errors, 0, "{report:?}");
    let before_join = cluster.node(leader).raft.status().commit_index;

    // The tab joins through a proxy to the leader, which is then cut: its join socket stays
    // open and carries nothing, in both directions, for good.
    let proxy = Proxy::start(leader_address.clone()).await;
    let link = invite(&leader_address).await;
    let token = link.split_once("#join=").unwrap().1;
    // Without the members `Admitted` names (browser_learner_stranded.rs tests those): with them
    // the tab also links to the followers, and a new leader elected under load would feed it
    // over them before the cut is checked; here only the redial of the admitting node may help.
    let options = TabOptions { use_member_hints: false, ..TabOptions::default() };
    let tab = Tab::join_with_options(&proxy.address, token, CLUSTER, None, options).await.unwrap();
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let applied_at_cut = tab.applied();
    assert!(
        applied_at_cut < before_join,
        "precondition: the tab must be cut off before it applied the address records (after index \
         {before_join}); it applied {applied_at_cut}"
    );
    // New connections through the proxy work again; the stuck one never will.
    proxy.heal();

    let target = cluster.node(leader).raft.status().commit_index;
    let started = Instant::now();
    while tab.applied() < target {
        if started.elapsed() > Duration::from_secs(30) {
            let view = tab.view.lock().unwrap();
            panic!(
                "the tab stalled at {} (cut at {applied_at_cut}, target {target}): connected {:?}, closes {:?}, \
                 silences {}, messages without a connection {}",
                view.applied, view.connected, view.closes, view.silences, view.sends_without_connection
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let view = tab.view.lock().unwrap();
    println!(
        "cut at {applied_at_cut}, caught up to {target} {:.2} s after the heal (silences {}, closes {:?})",
        started.elapsed().as_secs_f64(),
        view.silences,
        view.closes
    );
    assert!(view.silences >= 1, "the tab noticed the silent socket");
    assert!(view.apply_violations.is_empty(), "{:?}", view.apply_violations);
}

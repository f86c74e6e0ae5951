//! Browser tabs as voters (issue #14), native side: the Rust test tab of `common/tab.rs`
//! acting as a durable voter tab (it reports `TabStatus`, answers votes and appends, never
//! campaigns and keeps its storage across a reload) against in-process native nodes on
//! loopback, and the `raft-node` binary for the operator's view of a refused promotion.

mod common;

use common::tab::{hello_socket, Tab};
use common::{Cluster, TempDir, SECRET};
use native_node::bench::{self, BenchConfig};
use native_node::client::{http_admin, Client, ClientConfig};
use native_node::history::{check_history, read_history, Recorder};
use raft_core::wire::invite::{tab_key, InviteToken};
use raft_core::wire::tab::{StorageBackend, TabStatus};
use raft_core::{LogIndex, Message, MessageBody, NodeId, Term};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const CLUSTER: &str = "flotilla";
const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");

/// What a tab in Chromium with OPFS and `navigator.storage.persist()` granted reports.
const DURABLE: TabStatus = TabStatus { backend: StorageBackend::Opfs, persistent: true, campaigns: false };

async fn invite(address: &str) -> String {
    let answer =
        http_admin(&[address.to_string()], Some(SECRET), "POST", "/admin/invite?uses=4", &[]).await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let value: Value = serde_json::from_slice(&answer.body).unwrap();
    value["link"].as_str().unwrap().to_string()
}

async fn join(cluster: &Cluster, status: TabStatus) -> Tab {
    let link = invite(&cluster.addresses[0]).await;
    let (base, token) = link.split_once("#join=").unwrap();
    let host = base.trim_start_matches("http://").split('/').next().unwrap();
    let tab = Tab::join_with(host, token, CLUSTER, Some(status)).await.unwrap();
    let members = cluster.nodes.iter().flatten().count();
    wait_until("the tab connects to every native node", Duration::from_secs(10), || {
        tab.view.lock().unwrap().connected.len() == members
    })
    .await;
    tab
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `add_voter` for the tab and waits until the core promoted it (its catch-up rule).
/// The tab's `TabStatus` travels after the connection opens, so the leader may not have it
/// when `join` returns: wait for it first, as an operator reading `admin status` would.
async fn promote(cluster: &Cluster, leader: u64, tab: &Tab) {
    wait_for_reported_storage(cluster, leader, tab).await;
    let answer = cluster.client().admin(json!({ "op": "add_voter", "node": tab.id.0 })).await;
    assert!(answer.is_ok(), "{answer:?}");
    wait_until("the tab becomes a voter", Duration::from_secs(10), || {
        cluster.node(leader).raft.status().voters.contains(&tab.id.0)
    })
    .await;
}

/// A client of node `id` alone (`admin status` on the leader shows what only it knows).
fn client_of(cluster: &Cluster, id: u64) -> Client {
    let mut config = ClientConfig::new(vec![cluster.addresses[(id - 1) as usize].clone()]);
    config.secret = Some(SECRET.to_string());
    Client::new(config)
}

fn impatient_client(cluster: &Cluster) -> Client {
    let mut config = ClientConfig::new(cluster.addresses.clone());
    config.secret = Some(SECRET.to_string());
    config.call_timeout = Duration::from_secs(2);
    Client::new(config)
}

/// 400 operations (puts and gets) from 4 concurrent clients, recorded and checked for
/// linearizability (thesis §6.3).
async fn linearizable_bench(cluster: &Cluster, name: &str) {
    let dir = TempDir::new(name);
    let path = dir.0.join("history.jsonl");
    let report = bench::run(BenchConfig {
        endpoints: cluster
            .nodes
            .iter()
            .zip(&cluster.addresses)
            .filter(|(n, _)| n.is_some())
            .map(|(_, a)| a.clone())
            .collect(),
        clients: 4,
        connections: 1,
        ops: 400,
        value_size_bytes: 8,
        use_session: true,
        record: Some(Recorder::append_to(&path).unwrap()),
        security: Default::default(),
    })
    .await;
    assert_eq!(report.errors, 0, "{report:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().filter(|line| line.contains("\"op\":\"get\"")).count() >= 100, "the workload reads");
    let (result, _) = check_history(&read_history(&text).unwrap());
    assert!(result.is_linearizable(), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_voters_and_a_voter_tab_commit_with_one_native_node_stopped() {
    let mut cluster = Cluster::start(2, "voters-availability").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let tab = join(&cluster, DURABLE).await;
    promote(&cluster, leader, &tab).await;
    let mut client = cluster.client();
    client.put("before", "stop").await.unwrap();
    // Stop the leader: the other native node can only win with the tab's vote (and pre-vote),
    // and can only commit with the tab's acknowledgement.
    cluster.stop(leader).await;
    let survivor = if leader == 1 { 2 } else { 1 };
    let new_leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    assert_eq!(new_leader, survivor);
    assert!(tab.view.lock().unwrap().vote_answers_sent >= 1, "the tab voted");
    assert_eq!(tab.view.lock().unwrap().vote_requests_sent, 0, "the tab never campaigned");
    let mut client = cluster.client();
    for i in 0..50 {
        client.put(&format!("after-{i}"), &i.to_string()).await.unwrap();
    }
    assert_eq!(client.get("before", "linearizable").await.unwrap()["value"], "stop");
    linearizable_bench(&cluster, "voters-history").await;
    // The tab reloads with its storage intact: same id, same term and vote, back to voting.
    let before = tab.view.lock().unwrap().hard_state;
    let tab = tab.reload().await;
    assert_eq!(tab.view.lock().unwrap().hard_state, before, "the reload restored the hard state");
    wait_until("the reloaded tab reconnects", Duration::from_secs(10), || {
        tab.view.lock().unwrap().connected.contains(&survivor)
    })
    .await;
    client.put("after", "reload").await.unwrap();
    assert_eq!(cluster.node(survivor).raft.status().role, "leader");
    // Without the tab, nothing commits: the writes above needed its acknowledgement.
    tab.close();
    let refused = impatient_client(&cluster).put("without", "tab").await;
    assert!(refused.is_err(), "a write committed without the tab: {refused:?}");
    cluster.shutdown().await;
}

/// `raft-node admin add-voter ID` against `endpoints`: success, and what it printed.
fn cli_add_voter(endpoints: &str, id: u64) -> (bool, String) {
    let output = std::process::Command::new(BINARY)
        .args(["admin", "--endpoints", endpoints, "add-voter", &id.to_string()])
        .env("FLOTILLA_SECRET", SECRET)
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn refused_handshakes(cluster: &Cluster) -> u64 {
    cluster
        .nodes
        .iter()
        .flatten()
        .map(|node| node.raft.metrics().peer_handshakes_refused_total.load(Ordering::Relaxed))
        .sum()
}

/// "Its old id is never accepted again" (issue #14), by dialling. A voter tab's storage is
/// wiped; the page still has its invitation link (so the token's mac) and may remember its old
/// id, and it joins again as a new learner under a new id. Dialling as the old id with what the
/// fresh storage holds is refused by every native node and counted: its new key, and a key for
/// the old id derived from the link's token with a fresh incarnation (join nonce), as a page
/// that re-derived it would. Only the key the wiped storage held still opens the old id (the
/// control: a reload with storage intact), so the refusals are the admission record's doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_tabs_old_id_is_refused_with_the_fresh_storages_key_or_incarnation() {
    let cluster = Cluster::start(2, "voters-old-id").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let link = invite(&cluster.addresses[0]).await;
    let (base, token) = link.split_once("#join=").unwrap();
    let host = base.trim_start_matches("http://").split('/').next().unwrap();
    let mac = InviteToken::decode(token).unwrap().mac;
    let members = cluster.nodes.iter().flatten().count();
    let connected = |tab: &Tab| tab.view.lock().unwrap().connected.len() == members;

    let old = Tab::join_with(host, token, CLUSTER, Some(DURABLE)).await.unwrap();
    wait_until("the first tab connects everywhere", Duration::from_secs(10), || connected(&old)).await;
    promote(&cluster, leader, &old).await;
    let (old_id, stored_key) = (old.id, old.key());
    old.close(); // the storage is wiped: the key and the join nonce are gone with it

    let fresh = Tab::join_with(host, token, CLUSTER, Some(DURABLE)).await.unwrap();
    assert!(fresh.id.0 > old_id.0, "ids are never reused: {} after {}", fresh.id, old_id);
    wait_until("the fresh tab connects everywhere", Duration::from_secs(10), || connected(&fresh)).await;
    assert!(!cluster.node(leader).raft.status().voters.contains(&fresh.id.0), "the fresh tab is a learner");

    let before = refused_handshakes(&cluster);
    let mut fresh_incarnation = [0u8; 16];
    getrandom::getrandom(&mut fresh_incarnation).unwrap();
    let rederived = tab_key(&mac, CLUSTER, old_id, &fresh_incarnation);
    for address in &cluster.addresses {
        for (what, key) in
            [("the fresh storage's key", fresh.key()), ("a fresh incarnation's key", rederived)]
        {
            let answer = hello_socket(address, old_id, &key, CLUSTER).await;
            let why =
                answer.err().unwrap_or_else(|| panic!("{address} accepted old id {old_id} with {what}"));
            assert!(why.starts_with("refused: authentication failed"), "{address}, {what}: {why}");
        }
    }
    assert_eq!(refused_handshakes(&cluster) - before, 2 * members as u64, "every refusal is counted");

    // The control: the key the wiped storage held is still the old id's (a reload with OPFS
    // intact dials with it), so the test above would see an acceptance if there were one.
    for address in &cluster.addresses {
        hello_socket(address, old_id, &stored_key, CLUSTER).await.expect("the stored key opens the old id");
    }
    assert!(
        cluster.node(leader).raft.status().voters.contains(&old_id.0),
        "the old id stays a (silent) voter"
    );
}

async fn cli_add_voter_async(cluster: &Cluster, id: u64) -> (bool, String) {
    let endpoints = cluster.endpoints();
    tokio::task::spawn_blocking(move || cli_add_voter(&endpoints, id)).await.unwrap()
}

/// Waits until `admin status` on the leader lists the tab with the storage it reported.
async fn wait_for_reported_storage(cluster: &Cluster, leader: u64, tab: &Tab) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut client = client_of(cluster, leader);
    loop {
        let status = client.admin(json!({ "op": "status" })).await.unwrap();
        let reported = status["browser_peers"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|p| p["id"] == tab.id.0 && !p["storage"].is_null()));
        if reported && status["node"] == leader {
            return;
        }
        assert!(Instant::now() < deadline, "the leader never listed tab {}'s storage: {status}", tab.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_is_refused_with_its_reason_unless_the_tab_is_durable_persistent_and_never_campaigns() {
    let cluster = Cluster::start(3, "voters-refused").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    for (status, reason) in [
        (TabStatus { backend: StorageBackend::Memory, persistent: true, ..DURABLE }, "memory only"),
        (TabStatus { persistent: false, ..DURABLE }, "navigator.storage.persist()"),
        (TabStatus { campaigns: true, ..DURABLE }, "campaigns"),
    ] {
        let tab = join(&cluster, status).await;
        wait_for_reported_storage(&cluster, leader, &tab).await;
        let id = tab.id.0;
        let (ok, output) = cli_add_voter_async(&cluster, id).await;
        assert!(!ok, "{output}");
        assert!(output.contains("voter_refused") && output.contains(reason), "{output}");
        assert!(!cluster.node(leader).raft.status().voters.contains(&id));
        tab.close();
    }
    let refused = cluster
        .node(leader)
        .raft
        .metrics()
        .browser_peers
        .voters
        .promotions_refused_total
        .load(Ordering::Relaxed);
    assert_eq!(refused, 3);
    // A durable one is promoted through the same command; a transfer to it is refused.
    let tab = join(&cluster, DURABLE).await;
    wait_for_reported_storage(&cluster, leader, &tab).await;
    let (ok, output) = cli_add_voter_async(&cluster, tab.id.0).await;
    assert!(ok, "{output}");
    wait_until("the tab becomes a voter", Duration::from_secs(10), || {
        cluster.node(leader).raft.status().voters.contains(&tab.id.0)
    })
    .await;
    let refused = cluster.client().admin(json!({ "op": "transfer", "node": tab.id.0 })).await.unwrap_err();
    assert!(refused.to_string().contains("never campaigns"), "{refused}");
    // Transfer to no one in particular goes to a native voter.
    let answer = cluster.client().admin(json!({ "op": "transfer" })).await.unwrap();
    let new_leader = answer["leader"].as_u64().unwrap();
    assert!(new_leader != leader && new_leader <= 3, "{answer}");
    // admin status shows the tab's storage and role.
    let status = client_of(&cluster, new_leader).admin(json!({ "op": "status" })).await.unwrap();
    let listed = status["browser_peers"].as_array().unwrap();
    let entry = listed.iter().find(|p| p["id"] == tab.id.0).unwrap();
    assert_eq!(entry["role"], "voter", "{status}");
    assert_eq!(entry["storage"]["backend"], "Opfs", "{status}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_tab_may_answer_votes_but_its_requests_close_the_connection() {
    let cluster = Cluster::start(3, "voters-misbehave").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let tab = join(&cluster, DURABLE).await;
    promote(&cluster, leader, &tab).await;
    let malformed =
        |id: u64| cluster.node(id).raft.metrics().peer_frames_malformed_total.load(Ordering::Relaxed);
    let term = Term(cluster.node(leader).raft.status().term);
    let to_leader = |body| Message { from: tab.id, to: NodeId(leader), term, body };
    // An answer passes (the leader asked nothing: the core ignores it) and keeps the link.
    let closes = tab.view.lock().unwrap().closes.len();
    let before = malformed(leader);
    tab.send_raw(
        NodeId(leader),
        to_leader(MessageBody::VoteResponse { kind: raft_core::VoteKind::Vote, granted: false }),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tab.view.lock().unwrap().closes.len(), closes, "a vote answer closed the connection");
    assert_eq!(malformed(leader), before);
    for body in [
        MessageBody::VoteRequest {
            kind: raft_core::VoteKind::Vote,
            reason: raft_core::CampaignReason::ElectionTimeout,
            last_log_index: LogIndex(u64::MAX - 1),
            last_log_term: Term(term.0 + 1),
        },
        MessageBody::VoteRequest {
            kind: raft_core::VoteKind::PreVote,
            reason: raft_core::CampaignReason::ElectionTimeout,
            last_log_index: LogIndex(u64::MAX - 1),
            last_log_term: Term(term.0 + 1),
        },
        MessageBody::TimeoutNow,
        MessageBody::AppendEntries {
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            entries: Vec::new(),
            leader_commit: LogIndex(0),
        },
    ] {
        wait_until("the tab is connected to the leader", Duration::from_secs(10), || {
            tab.view.lock().unwrap().connected.contains(&leader)
        })
        .await;
        let closes = tab.view.lock().unwrap().closes.len();
        let before = malformed(leader);
        let kind = body.kind_name();
        tab.send_raw(NodeId(leader), to_leader(body));
        wait_until(&format!("{kind} closes the connection"), Duration::from_secs(5), || {
            tab.view.lock().unwrap().closes.len() > closes
        })
        .await;
        assert_eq!(malformed(leader), before + 1, "{kind} counted as malformed");
    }
    // A forged `from` too.
    wait_until("the tab reconnects", Duration::from_secs(10), || {
        tab.view.lock().unwrap().connected.contains(&leader)
    })
    .await;
    let closes = tab.view.lock().unwrap().closes.len();
    let other = if leader == 1 { 2 } else { 1 };
    tab.send_raw(
        NodeId(leader),
        Message {
            from: NodeId(other),
            to: NodeId(leader),
            term,
            body: MessageBody::VoteResponse { kind: raft_core::VoteKind::Vote, granted: true },
        },
    );
    wait_until("a forged from closes the connection", Duration::from_secs(5), || {
        tab.view.lock().unwrap().closes.len() > closes
    })
    .await;
    // The cluster kept its leader and term.
    cluster.client().put("after", "attack").await.unwrap();
    assert_eq!(cluster.node(leader).raft.status().term, term.0);
    assert_eq!(cluster.node(leader).raft.status().role, "leader");
    cluster.shutdown().await;
}

/// A cluster of 3 native voters and one voter tab whose learners' TTL is short: the tab goes
/// silent and the leader's answer is returned.
async fn silent_voter_tab(name: &str, demote_after: Option<Duration>) -> (Cluster, u64, u64) {
    let cluster = Cluster::start_with(3, name, |config| {
        config.browser_peers.ttl = Duration::from_millis(500);
        config.browser_peers.voters.silent_after = Duration::from_millis(500);
        config.browser_peers.voters.demote_after = demote_after;
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let tab = join(&cluster, DURABLE).await;
    promote(&cluster, leader, &tab).await;
    let id = tab.id.0;
    // Alive: not reported.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let status = client_of(&cluster, leader).admin(json!({ "op": "status" })).await.unwrap();
    assert_eq!(status["browser_voters_silent"], json!([]), "{status}");
    tab.close();
    (cluster, leader, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_voter_tab_is_reported_and_kept_without_the_demotion_flag() {
    let (cluster, leader, id) = silent_voter_tab("voters-silent", None).await;
    wait_until("the leader reports the silent tab", Duration::from_secs(10), || {
        cluster.node(leader).raft.metrics().browser_peers.voters.silent.load(Ordering::Relaxed) == 1
    })
    .await;
    // Well past the learners' TTL and the silence threshold: still a voter.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let status = client_of(&cluster, leader).admin(json!({ "op": "status" })).await.unwrap();
    let silent = &status["browser_voters_silent"][0];
    assert_eq!(silent["id"], id, "{status}");
    assert!(silent["silent_ms"].as_u64().unwrap() >= 2500, "{status}");
    assert!(
        silent["message"].as_str().unwrap().starts_with(&format!("voter tab {id} silent for ")),
        "{status}"
    );
    assert!(cluster.node(leader).raft.status().voters.contains(&id), "a silent voter tab is kept");
    let scrape = cluster.node(leader).raft.metrics().render(leader);
    assert!(scrape.contains("raft_browser_voters_silent"), "{scrape}");
    let put = cluster.client().put("still", "committing").await;
    assert!(put.is_ok(), "{put:?}; {:?}", cluster.node(leader).raft.status());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_voter_tab_is_demoted_with_the_flag() {
    let (cluster, leader, id) = silent_voter_tab("voters-demote", Some(Duration::from_millis(1500))).await;
    // The leader counts a demotion once `demote_voter` returns, which can be just after the
    // configuration without the tab is visible: wait for both.
    let demoted_sum = || -> u64 {
        (1..=3)
            .map(|n| {
                cluster.node(n).raft.metrics().browser_peers.voters.demoted_total.load(Ordering::Relaxed)
            })
            .sum()
    };
    wait_until("the silent tab is demoted", Duration::from_secs(10), || {
        !cluster.node(leader).raft.status().voters.contains(&id) && demoted_sum() >= 1
    })
    .await;
    let demoted: Vec<u64> = (1..=3)
        .map(|n| cluster.node(n).raft.metrics().browser_peers.voters.demoted_total.load(Ordering::Relaxed))
        .collect();
    assert_eq!(
        demoted.iter().sum::<u64>(),
        1,
        "demoted by {demoted:?}; {:?}",
        cluster.node(leader).raft.status()
    );
    cluster.client().put("still", "committing").await.unwrap();
    cluster.shutdown().await;
}

//! Browser tabs as learners of a real cluster (issue #13), with the Rust test tab of
//! `common/tab.rs` (raft-core + MemoryStorage + tokio-tungstenite, joining by invitation as the
//! wasm tab does) against in-process native nodes.

mod common;

use bytes::Bytes;
use common::tab::{JoinFailure, Tab, TabOptions};
use common::{Cluster, SECRET};
use native_node::client::http_admin;
use raft_core::wire::invite::{invite_key, InviteFields, InviteRole, InviteToken, JoinRefusal};
use raft_core::{LogIndex, Message, MessageBody, NodeId, ReadMode, Term};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const CLUSTER: &str = "flotilla";

async fn invite(address: &str, query: &str) -> String {
    let answer =
        http_admin(&[address.to_string()], Some(SECRET), "POST", &format!("/admin/invite?{query}"), &[])
            .await
            .unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let value: Value = serde_json::from_slice(&answer.body).unwrap();
    value["link"].as_str().unwrap().to_string()
}

fn token_of(link: &str) -> &str {
    link.split_once("#join=").unwrap().1
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Puts `key-{i}` = `value-{i}` for `range`, from 16 concurrent clients.
async fn put_many(cluster: &Cluster, range: std::ops::Range<usize>) -> BTreeMap<Bytes, Bytes> {
    let mut tasks = Vec::new();
    let chunk = range.len().div_ceil(16);
    for part in 0..16 {
        let start = range.start + part * chunk;
        let end = (start + chunk).min(range.end);
        let mut client = cluster.client();
        tasks.push(tokio::spawn(async move {
            for i in start..end {
                client.put(&format!("key-{i}"), &format!("value-{i}")).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    range.map(|i| (Bytes::from(format!("key-{i}")), Bytes::from(format!("value-{i}")))).collect()
}

/// Waits until the tab holds exactly `expected` (the leader's published commit index can lag
/// the last acknowledged puts by a tick), then compares, without printing thousands of pairs.
async fn assert_tab_holds(tab: &Tab, expected: &BTreeMap<Bytes, Bytes>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = tab.kv().await;
    while got != *expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = tab.kv().await;
    }
    assert_same_kv(tab, &got, expected);
}

fn assert_same_kv(tab: &Tab, got: &BTreeMap<Bytes, Bytes>, expected: &BTreeMap<Bytes, Bytes>) {
    let view = format!("{:?}", tab.view.lock().unwrap());
    let missing: Vec<_> =
        expected.iter().filter(|(k, v)| got.get(*k) != Some(v)).map(|(k, _)| k).take(5).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "tab {} differs: {} keys, {} expected; missing or different {missing:?}, extra {extra:?}; {view}",
        tab.id,
        got.len(),
        expected.len()
    );
}

fn leader_commit(cluster: &Cluster, leader: u64) -> u64 {
    cluster.node(leader).raft.status().commit_index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_join_by_invitation_and_replicate_5000_puts() {
    let cluster = Cluster::start(3, "tabs-5000").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = if leader == 1 { 2 } else { 1 };
    // One invitation for two tabs; the first joins through a follower (redirected).
    let link = invite(&cluster.addresses[0], "uses=2&ttl_ms=60000").await;
    let first =
        Tab::join(&cluster.addresses[(follower - 1) as usize], token_of(&link), CLUSTER).await.unwrap();
    let second = Tab::join_link(&link, CLUSTER).await.unwrap();
    assert!(first.id.0 >= 1 << 32 && second.id.0 >= 1 << 32 && first.id != second.id);
    let redirected =
        cluster.node(follower).raft.metrics().browser_peers.redirected_total.load(Ordering::Relaxed);
    assert!(redirected >= 1, "the follower redirected the first tab");
    let expected = put_many(&cluster, 0..5000).await;
    let target = leader_commit(&cluster, leader);
    for tab in [&first, &second] {
        wait_until("the tab applies every put", Duration::from_secs(30), || tab.applied() >= target).await;
        assert_tab_holds(tab, &expected).await;
        let view = tab.view.lock().unwrap();
        assert!(view.apply_violations.is_empty(), "{:?}", view.apply_violations);
    }
    // The native leader holds the same state: read back a sample linearizably.
    let mut client = cluster.client();
    for i in [0, 1234, 4999] {
        let value = client.get(&format!("key-{i}"), "linearizable").await.unwrap();
        assert_eq!(value["value"], format!("value-{i}"));
    }
    // Every native node connects to both tabs (the tabs dial the followers).
    wait_until("both tabs connect to all three nodes", Duration::from_secs(10), || {
        [&first, &second].iter().all(|tab| tab.view.lock().unwrap().connected.len() == 3)
    })
    .await;
    // admin status lists them; metrics count them.
    let status = client.admin(serde_json::json!({ "op": "status" })).await.unwrap();
    let listed: Vec<u64> =
        status["browser_peers"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(listed.len(), 2, "{status}");
    assert!(
        status["browser_peers"][0]["address"] == "browser" && status["browser_peers"][0]["role"] == "learner"
    );
    let metrics = cluster.node(leader).raft.metrics().browser_peers.clone();
    assert_eq!(metrics.connected.load(Ordering::Relaxed), 2);
    assert!(metrics.bytes_sent_total.load(Ordering::Relaxed) > 5000 * 20);
    // A linearizable read on a tab sees a write acknowledged before it began; a stale one is
    // served from what the tab applied.
    client.put("fresh", "yes").await.unwrap();
    assert_eq!(first.get("fresh", ReadMode::Linearizable).await.unwrap(), Some(Bytes::from("yes")));
    assert_eq!(second.get("key-7", ReadMode::Stale).await.unwrap(), Some(Bytes::from("value-7")));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_joining_after_compaction_gets_a_snapshot_then_the_log() {
    let cluster = Cluster::start_with(3, "tabs-snapshot", |config| {
        config.snapshot_interval_entries = 300;
        config.snapshot_trailing_entries = 10;
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let mut expected = put_many(&cluster, 0..1000).await;
    wait_until("the leader compacts its log", Duration::from_secs(10), || {
        cluster.node(leader).raft.status().snapshot_index > 100
    })
    .await;
    let link = invite(&cluster.addresses[0], "").await;
    let tab = Tab::join_link(&link, CLUSTER).await.unwrap();
    wait_until("the tab installs a snapshot", Duration::from_secs(20), || {
        tab.view.lock().unwrap().snapshots_installed >= 1
    })
    .await;
    let applied_by_snapshot = tab.applied();
    expected.extend(put_many(&cluster, 1000..1100).await);
    let target = leader_commit(&cluster, leader);
    wait_until("the tab applies the log after the snapshot", Duration::from_secs(20), || {
        tab.applied() >= target
    })
    .await;
    assert_tab_holds(&tab, &expected).await;
    {
        let view = tab.view.lock().unwrap();
        assert!(view.entries_applied >= 100, "entries after the snapshot came one by one: {view:?}");
        assert!(applied_by_snapshot > 100, "the snapshot covered the compacted entries");
        assert!(view.apply_violations.is_empty(), "{:?}", view.apply_violations);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_follows_the_new_leader_when_the_leader_stops() {
    let mut cluster = Cluster::start(3, "tabs-failover").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let link = invite(&cluster.addresses[(leader - 1) as usize], "").await;
    let tab = Tab::join_link(&link, CLUSTER).await.unwrap();
    let mut expected = put_many(&cluster, 0..300).await;
    wait_until("the tab connects to every node", Duration::from_secs(10), || {
        tab.view.lock().unwrap().connected.len() == 3
    })
    .await;
    cluster.stop(leader).await;
    let new_leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    expected.extend(put_many(&cluster, 300..600).await);
    let target = leader_commit(&cluster, new_leader);
    wait_until("the tab applies the new leader's entries", Duration::from_secs(20), || {
        tab.applied() >= target
    })
    .await;
    assert_tab_holds(&tab, &expected).await;
    {
        let view = tab.view.lock().unwrap();
        assert_eq!(view.leader, Some(new_leader));
        assert!(view.apply_violations.is_empty(), "{:?}", view.apply_violations);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_forged_used_up_foreign_and_surplus_invitations_are_refused_with_their_reason() {
    let cluster = Cluster::start_with(3, "tabs-refusals", |config| config.browser_peers.max = 1).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let address = cluster.addresses[(leader - 1) as usize].clone();
    let refused = |result: Result<Tab, JoinFailure>| match result {
        Err(JoinFailure::Refused(refusal)) => refusal,
        Err(other) => panic!("refused without a reason: {other:?}"),
        Ok(tab) => panic!("tab {} admitted", tab.id),
    };
    // Expired.
    let link = invite(&address, "ttl_ms=1").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(refused(Tab::join_link(&link, CLUSTER).await), JoinRefusal::Expired);
    // Forged: signed with a guessed secret, or a valid token with more uses written in.
    let fields = InviteFields {
        cluster_id: CLUSTER.into(),
        role: InviteRole::Learner,
        expires_unix_ms: u64::MAX,
        nonce: [1; 16],
        max_uses: 5,
    };
    let guessed = InviteToken::sign(&invite_key(b"guess"), fields.clone()).encode();
    assert_eq!(refused(Tab::join(&address, &guessed, CLUSTER).await), JoinRefusal::Forged);
    let genuine = InviteToken::decode(token_of(&invite(&address, "").await)).unwrap();
    let tampered =
        InviteToken { fields: InviteFields { max_uses: 100, ..genuine.fields.clone() }, mac: genuine.mac };
    assert_eq!(refused(Tab::join(&address, &tampered.encode(), CLUSTER).await), JoinRefusal::Forged);
    // Another cluster's (same secret).
    let foreign = InviteToken::sign(
        &invite_key(SECRET.as_bytes()),
        InviteFields { cluster_id: "other".into(), ..fields },
    );
    assert_eq!(refused(Tab::join(&address, &foreign.encode(), CLUSTER).await), JoinRefusal::WrongCluster);
    // Used up: one use, two tabs; the second asks a follower, which redirects to the leader.
    let link = invite(&address, "uses=1").await;
    let tab = Tab::join_link(&link, CLUSTER).await.unwrap();
    let follower = cluster.addresses[(leader % 3) as usize].clone();
    assert_eq!(refused(Tab::join(&follower, token_of(&link), CLUSTER).await), JoinRefusal::UsedUp);
    // The cap (1 here): a second tab with a fresh invitation is refused.
    let link = invite(&address, "").await;
    assert_eq!(refused(Tab::join_link(&link, CLUSTER).await), JoinRefusal::BrowserPeersMax);
    let metrics = cluster.node(leader).raft.metrics().browser_peers.clone();
    let counts: Vec<u64> = metrics.refused_total.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    // expired, forged, used_up, wrong_cluster, browser_peers_max, not_leader
    assert_eq!(counts, vec![1, 2, 1, 1, 1, 0]);
    let scrape = cluster.node(leader).raft.metrics().render(leader);
    assert!(
        scrape.contains("raft_browser_joins_refused_total{node=\"") || scrape.contains("reason=\"used_up\""),
        "{scrape}"
    );
    // The cluster kept serving.
    cluster.client().put("still", "serving").await.unwrap();
    drop(tab);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_that_sends_append_entries_or_a_forged_from_is_disconnected() {
    let cluster = Cluster::start(3, "tabs-misbehave").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let link = invite(&cluster.addresses[0], "uses=2").await;
    let tab = Tab::join_link(&link, CLUSTER).await.unwrap();
    wait_until("the tab connects to every node", Duration::from_secs(10), || {
        tab.view.lock().unwrap().connected.len() == 3
    })
    .await;
    let malformed =
        |id: u64| cluster.node(id).raft.metrics().peer_frames_malformed_total.load(Ordering::Relaxed);
    let before = malformed(leader);
    let term = Term(cluster.node(leader).raft.status().term);
    let append = Message {
        from: tab.id,
        to: NodeId(leader),
        term,
        body: MessageBody::AppendEntries {
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            entries: Vec::new(),
            leader_commit: LogIndex(0),
        },
    };
    tab.send_raw(NodeId(leader), append);
    wait_until("the leader closes the tab's connection", Duration::from_secs(5), || {
        tab.view.lock().unwrap().closes.iter().any(|(peer, _)| *peer == leader)
    })
    .await;
    assert_eq!(malformed(leader), before + 1);
    assert_eq!(cluster.node(leader).raft.status().role, "leader", "the leader kept its term and role");
    // A forged `from`: the tab speaks for node 2 on its connection to another node.
    let other = if leader == 3 { 1 } else { 3 };
    let before = malformed(other);
    let forged = Message {
        from: NodeId(2),
        to: NodeId(other),
        term,
        body: MessageBody::HeartbeatResponse { context: 0 },
    };
    let forged = if other == 2 { Message { from: NodeId(1), ..forged } } else { forged };
    tab.send_raw(NodeId(other), forged);
    wait_until("the node closes the forging tab", Duration::from_secs(5), || {
        tab.view.lock().unwrap().closes.iter().any(|(peer, _)| *peer == other)
    })
    .await;
    assert_eq!(malformed(other), before + 1);
    // A vote request is refused the same way (the tab reconnects to the leader meanwhile).
    wait_until("the tab reconnects", Duration::from_secs(5), || {
        tab.view.lock().unwrap().connected.contains(&leader)
    })
    .await;
    let closes = tab.view.lock().unwrap().closes.len();
    let vote = Message {
        from: tab.id,
        to: NodeId(leader),
        term: Term(term.0 + 1),
        body: MessageBody::VoteRequest {
            kind: raft_core::VoteKind::Vote,
            reason: raft_core::CampaignReason::ElectionTimeout,
            last_log_index: LogIndex(u64::MAX - 1),
            last_log_term: Term(term.0 + 1),
        },
    };
    tab.send_raw(NodeId(leader), vote);
    wait_until("the vote request closes the connection", Duration::from_secs(5), || {
        tab.view.lock().unwrap().closes.len() > closes
    })
    .await;
    // The cluster keeps serving, in the same term.
    cluster.client().put("after", "attack").await.unwrap();
    assert_eq!(cluster.node(leader).raft.status().term, term.0);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tab_is_removed_after_the_ttl_and_a_returning_tab_gets_a_fresh_id() {
    let cluster =
        Cluster::start_with(3, "tabs-ttl", |config| config.browser_peers.ttl = Duration::from_millis(800))
            .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let link = invite(&cluster.addresses[0], "uses=2").await;
    let tab = Tab::join_link(&link, CLUSTER).await.unwrap();
    let id = tab.id.0;
    wait_until("the tab is a learner", Duration::from_secs(5), || {
        cluster.node(leader).raft.status().learners.contains(&id)
    })
    .await;
    // Alive and answering: still a member after two TTLs.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(cluster.node(leader).raft.status().learners.contains(&id), "a live tab is kept");
    tab.close();
    // Under load the leadership can move while the tab is silent: the removal is counted by
    // whichever node led when it removed the tab, so wait for the configuration and the count.
    let removed_sum = || -> u64 {
        (1..=3)
            .map(|n| cluster.node(n).raft.metrics().browser_peers.removed_total.load(Ordering::Relaxed))
            .sum()
    };
    wait_until("the silent tab is removed and counted", Duration::from_secs(10), || {
        !cluster.node(leader).raft.status().learners.contains(&id) && removed_sum() >= 1
    })
    .await;
    let returning = Tab::join_link(&link, CLUSTER).await.unwrap();
    assert!(returning.id.0 > id, "a returning tab joins with a fresh id");
    cluster.shutdown().await;
}

/// `RaftShared` frames (the leader hashes shared entries once for every tab) go only to a tab
/// that asked for them in its `Join` or `Hello`; a tab built before them (which closes a
/// connection on any frame kind but `Raft`) keeps getting `Raft` frames and keeps up, through
/// a join and, after a reload, a `Hello`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_tab_that_asks_for_shared_frames_gets_them_and_an_older_tab_keeps_up() {
    let cluster = Cluster::start(3, "tabs-shared").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let link = invite(&cluster.addresses[0], "uses=2&ttl_ms=60000").await;
    let address = &cluster.addresses[(leader - 1) as usize];
    let older = TabOptions { shared_frames: false, ..TabOptions::default() };
    let mut new =
        Tab::join_with_options(address, token_of(&link), CLUSTER, None, TabOptions::default()).await.unwrap();
    let mut old = Tab::join_with_options(address, token_of(&link), CLUSTER, None, older).await.unwrap();
    let mut expected = BTreeMap::new();
    for (round, range) in [0..1000, 1000..2000].into_iter().enumerate() {
        if round == 1 {
            // Reloaded: every connection, the leader's included, opens again with `Hello`.
            new = new.reload().await;
            old = old.reload().await;
            for tab in [&new, &old] {
                let mut view = tab.view.lock().unwrap();
                (view.raft_frames, view.shared_frames) = (0, 0);
            }
        }
        expected.extend(put_many(&cluster, range).await);
        let target = leader_commit(&cluster, leader);
        for tab in [&new, &old] {
            wait_until("the tab applies every put", Duration::from_secs(30), || tab.applied() >= target)
                .await;
            assert_tab_holds(tab, &expected).await;
        }
        let (new_view, old_view) = (new.view.lock().unwrap(), old.view.lock().unwrap());
        assert!(new_view.shared_frames > 0, "round {round}: {new_view:?}");
        assert!(old_view.shared_frames == 0 && old_view.raft_frames > 0, "round {round}: {old_view:?}");
        assert!(!old_view.closes.iter().any(|(_, why)| why.contains("bad frame")), "{:?}", old_view.closes);
    }
    cluster.shutdown().await;
}

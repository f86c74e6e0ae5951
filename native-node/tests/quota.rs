//! Issue 11, Medium 11: a store's byte quota (`no_space`, an alarm, deletes still work) and a
//! snapshot trigger by the bytes applied, not only the entries (etcd's
//! `--quota-backend-bytes` and `--snapshot-count`).

mod common;

use common::Cluster;
use native_node::client::ClientError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
const VALUE_BYTES: usize = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_beyond_the_quota_are_refused_with_no_space_and_deletes_make_room() {
    let cluster = Cluster::start_with(3, "quota", |config| config.quota_backend_bytes = 300_000).await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    let value = "v".repeat(VALUE_BYTES);
    let mut stored = 0;
    let refusal = loop {
        match client.put(&format!("k{stored}"), &value).await {
            Ok(_) => stored += 1,
            Err(error) => break error,
        }
        assert!(stored < 20, "the quota never stopped a put");
    };
    // 300,000 bytes take five values of 60,000 (plus keys); the sixth is refused.
    assert_eq!(stored, 5);
    match &refusal {
        ClientError::Refused { code, response } => {
            assert_eq!(code, "no_space", "{response}");
            assert!(response["message"].as_str().unwrap().contains("--quota-backend-bytes"), "{response}");
        }
        other => panic!("expected no_space, got {other}"),
    }
    let metrics = cluster.node(leader).raft.metrics().clone();
    assert_eq!(metrics.no_space_alarm.load(Ordering::Relaxed), 1);
    assert!(metrics.kv_bytes.load(Ordering::Relaxed) >= 300_000);
    // Reads and deletes still work; the room they make takes puts again.
    assert_eq!(client.get("k0", "linearizable").await.unwrap()["value"].as_str().unwrap().len(), VALUE_BYTES);
    client.del("k0").await.unwrap();
    client.del("k1").await.unwrap();
    assert_eq!(metrics.no_space_alarm.load(Ordering::Relaxed), 0);
    client.put("again", &value).await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwriting_one_key_with_large_values_snapshots_by_size() {
    let cluster = Cluster::start_with(3, "snapshot-bytes", |config| {
        config.snapshot_interval_entries = 1_000_000;
        config.snapshot_interval_bytes = 512 * 1024;
    })
    .await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    let value = "w".repeat(VALUE_BYTES);
    // 20 overwrites of one key: 1.2 MB through the log, one key in the store.
    for _ in 0..20 {
        client.put("one-key", &value).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.node(leader).raft.status().snapshot_index == 0 {
        assert!(Instant::now() < deadline, "no snapshot after 1.2 MB of entries with a 512 KiB trigger");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await;
}

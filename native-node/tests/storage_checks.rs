//! Issue 11, Medium 12 and 18: files deleted from a data directory are noticed at start, and the
//! errors say what happened.

mod common;

use common::{node_config, TempDir};
use native_node::server;
use raft_core::NodeId;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Starts a one-node cluster in `dir`, writes `puts` values of 60 KiB (the log's segments are
/// 256 KiB, so about four puts fill one), and stops it.
async fn write_and_stop(dir: &TempDir, puts: usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let mut config = node_config(1, &[(NodeId(1), address.clone())], dir);
    config.wal_segment_bytes = 256 * 1024;
    let node = server::start(config, listener).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while node.raft.status().role != "leader" {
        assert!(std::time::Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut config = native_node::client::ClientConfig::new(vec![address]);
    config.use_session = false;
    let mut client = native_node::client::Client::new(config);
    let value = "v".repeat(60 * 1024);
    for i in 0..puts {
        client.put(&format!("key-{i}"), &value).await.unwrap();
    }
    node.shutdown().await;
}

async fn restart_error(dir: &TempDir) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let mut config = node_config(1, &[(NodeId(1), address)], dir);
    config.wal_segment_bytes = 256 * 1024;
    match server::start(config, listener).await {
        Ok(node) => {
            let status = node.raft.status();
            node.shutdown().await;
            panic!("the node started (last index {})", status.last_index)
        }
        Err(error) => error.to_string(),
    }
}

fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("wal"))
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_newest_segment_is_noticed_at_start() {
    let dir = TempDir::new("newest-segment");
    write_and_stop(&dir, 12).await;
    let files = segments(&dir.0.join("node-1"));
    assert!(files.len() >= 2, "{files:?}");
    std::fs::remove_file(files.last().unwrap()).unwrap();
    let error = restart_error(&dir).await;
    assert!(error.contains("is missing") && error.contains("acknowledged writes would be lost"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_only_segment_is_noticed_at_start() {
    let dir = TempDir::new("only-segment");
    write_and_stop(&dir, 1).await;
    for file in segments(&dir.0.join("node-1")) {
        std::fs::remove_file(file).unwrap();
    }
    let error = restart_error(&dir).await;
    assert!(error.contains("is missing"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_first_segment_is_named_as_such() {
    let dir = TempDir::new("first-segment");
    write_and_stop(&dir, 12).await;
    let files = segments(&dir.0.join("node-1"));
    assert!(files.len() >= 2, "{files:?}");
    std::fs::remove_file(&files[0]).unwrap();
    let error = restart_error(&dir).await;
    assert!(error.contains("a log segment was deleted"), "{error}");
    assert!(!error.contains("snapshot at") && !error.contains("cannot restore the raft state"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_is_noticed_at_start() {
    let dir = TempDir::new("database");
    write_and_stop(&dir, 2).await;
    std::fs::remove_file(dir.0.join("node-1").join("raft.redb")).unwrap();
    let error = restart_error(&dir).await;
    assert!(error.contains("the database was deleted or replaced"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_opened_is_not_called_corrupt() {
    let dir = TempDir::new("unopenable");
    let data_dir = dir.0.join("node-1");
    // A directory where the database file should be: an I/O error, not corruption.
    std::fs::create_dir_all(data_dir.join("raft.redb")).unwrap();
    let error = restart_error(&dir).await;
    assert!(error.contains("cannot open or write the file"), "{error}");
    assert!(!error.contains("corrupt"), "{error}");
}

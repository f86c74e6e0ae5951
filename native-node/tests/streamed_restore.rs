//! Issue 11 finding 10: `raft-node admin restore` of a backup larger than one log entry (12 MiB),
//! end to end on three `raft-node` processes: every node ends with the same store, a node
//! restarted afterwards recovers it, and a restore without the admin secret or over
//! `--restore-bytes-max` is refused before the body is read.
//!
//! Ports: 127.0.0.1:7841–7843 (FLOTILLA_RESTORE_TEST_PORT overrides the first).

mod common;

use common::TempDir;
use native_node::client::{Client, ClientConfig};
use raft_core::kv::{Command, CommandBody, KvConfig, KvStore, Operation, RESERVED_KEY_PREFIX};
use raft_core::state_machine::StateMachine;
use raft_core::{Entry, EntryPayload, LogIndex, Term};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");
const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const KEYS: u32 = 192;
const VALUE_BYTES: usize = 64 * 1024;
/// 192 × 64 KiB = 12 MiB of values, three times the old single-entry cap.
const RESTORE_BYTES_MAX: u64 = 16 << 20;

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(id: usize, addresses: &[String], root: &Path) -> Node {
    let bootstrap: Vec<String> =
        addresses.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(format!("node-{id}.log")))
        .unwrap();
    let child = Process::new(BINARY)
        .args(["serve", "--id", &id.to_string(), "--listen", &addresses[id - 1]])
        .arg("--data-dir")
        .arg(root.join(format!("node-{id}")))
        .args(["--bootstrap", &bootstrap.join(",")])
        // Small snapshot interval: snapshots are due while the restore is staged, and after it.
        .args(["--snapshot-interval", "20", "--restore-bytes-max", &RESTORE_BYTES_MAX.to_string()])
        .env("FLOTILLA_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Node(child)
}

fn value_of(i: u32) -> Vec<u8> {
    (0..VALUE_BYTES).map(|j| b'a' + ((i as usize * 7 + j) % 26) as u8).collect()
}

/// The backup to restore: `KEYS` keys of 64 KiB, plus an internal record of its own, which the
/// restore must not take.
fn backup_file(root: &Path) -> std::path::PathBuf {
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    let mut put = |key: Vec<u8>, value: Vec<u8>| {
        let index = LogIndex(store.applied_index().0 + 1);
        let operation = Operation::Put { key: key.into(), value: value.into() };
        let command = Command { timestamp_ms: 1, body: CommandBody::Request { session: None, operation } };
        store
            .apply(&Entry { term: Term(1), index, payload: EntryPayload::Command(command.encode()) })
            .unwrap();
    };
    for i in 0..KEYS {
        put(format!("big/{i:04}").into_bytes(), value_of(i));
    }
    put([RESERVED_KEY_PREFIX, b"address/1"].concat(), b"10.9.9.9:1".to_vec());
    let bytes: Vec<u8> = store.snapshot().flat_map(|chunk| chunk.to_vec()).collect();
    assert!(bytes.len() > 12 << 20, "{} bytes", bytes.len());
    let path = root.join("backup.snap");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn cli(args: &[&str], secret: &str) -> std::process::Output {
    Process::new(BINARY).args(args).env("FLOTILLA_SECRET", secret).env("RUST_LOG", "off").output().unwrap()
}

fn client(address: &str) -> Client {
    let mut config = ClientConfig::new(vec![address.to_string()]);
    config.secret = Some(SECRET.into());
    config.use_session = false;
    config.call_timeout = Duration::from_secs(20);
    Client::new(config)
}

async fn wait_for_leader(addresses: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for address in addresses {
            if let Ok(status) = client(address).admin(json!({ "op": "status" })).await {
                if status["status"]["role"] == json!("leader") {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader within 30 s");
}

/// Every big key read locally (stale) at `address` matches the backup, once it has applied
/// `index`; and the key written before the restore is gone.
async fn check_store(address: &str, index: u64) {
    let mut node = client(address);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = node.admin(json!({ "op": "status" })).await;
        let applied = status.ok().and_then(|s| s["status"]["applied_index"].as_u64()).unwrap_or(0);
        if applied >= index {
            break;
        }
        assert!(Instant::now() < deadline, "{address} did not apply {index} (at {applied})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..KEYS {
        let key = format!("big/{i:04}");
        let answer = node.get(&key, "stale").await.unwrap();
        let expected = String::from_utf8(value_of(i)).unwrap();
        assert_eq!(answer["value"].as_str(), Some(expected.as_str()), "{key} at {address}");
    }
    assert_eq!(node.get("before", "stale").await.unwrap()["value"], Value::Null, "at {address}");
}

/// Sends only the head of a POST declaring `length` body bytes; the status if one comes within
/// 3 s (a server waiting for the body sends none).
async fn headers_only(address: &str, secret: &str, length: u64) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /admin/restore HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {secret}\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut answer)).await.ok()?.ok()?;
    String::from_utf8_lossy(&answer[..read]).split_whitespace().nth(1).map(str::to_string)
}

fn peak_rss_kib(node: &Node) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.0.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_12_mib_restore_streams_to_every_node_and_survives_a_restart() {
    let base: u16 =
        std::env::var("FLOTILLA_RESTORE_TEST_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(7841);
    let addresses: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    let root = TempDir::new("streamed-restore");
    let mut nodes: Vec<Node> = (1..=3).map(|id| spawn(id, &addresses, &root.0)).collect();
    wait_for_leader(&addresses).await;
    let endpoints = addresses.join(",");
    let file = backup_file(&root.0);
    let file_text = file.display().to_string();
    let output = cli(&["kv", "--endpoints", &endpoints, "put", "before", "the restore"], SECRET);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // Refused before the body is read: no secret, or a declared length over the cap.
    for (secret, length, code) in [("wrong", 1u64 << 30, "401"), (SECRET, RESTORE_BYTES_MAX + 1, "413")] {
        for address in &addresses {
            let status = headers_only(address, secret, length).await;
            assert_eq!(status.as_deref(), Some(code), "{address}, secret {secret}, {length} bytes declared");
        }
    }
    let output = cli(&["admin", "--endpoints", &endpoints, "restore", &file_text], "wrong");
    assert!(!output.status.success());

    // The restore itself, through the real CLI, to any node (a follower redirects).
    let started = Instant::now();
    let output = cli(&["admin", "--endpoints", &endpoints, "restore", &file_text], SECRET);
    let took = started.elapsed();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let index = answer["index"].as_u64().unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    println!("restore of {size} bytes took {took:?}; applied at index {index}");
    for address in &addresses {
        check_store(address, index).await;
    }
    // The backup's internal record was not taken: node 1 is still dialled where it listens.
    let status = client(&addresses[0]).admin(json!({ "op": "status" })).await.unwrap();
    assert!(!status.to_string().contains("10.9.9.9"), "{status}");

    // Writes after the restore make every node snapshot; node 3 restarted recovers the store.
    let mut config = ClientConfig::new(addresses.clone());
    config.secret = Some(SECRET.into());
    config.call_timeout = Duration::from_secs(20);
    let mut writer = Client::new(config);
    for i in 0..60 {
        writer.put(&format!("after/{i}"), "x").await.unwrap();
    }
    let peaks: Vec<u64> = nodes.iter().map(peak_rss_kib).collect();
    println!("peak RSS of the three nodes (KiB): {peaks:?}");
    drop(nodes.pop());
    nodes.push(spawn(3, &addresses, &root.0));
    check_store(&addresses[2], index).await;

    // A backup over the cap, through the CLI: refused, the store unchanged.
    let big = root.0.join("too-big.snap");
    std::fs::write(&big, vec![0u8; (RESTORE_BYTES_MAX + 1) as usize]).unwrap();
    let output = cli(&["admin", "--endpoints", &endpoints, "restore", &big.display().to_string()], SECRET);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("too_large"), "{output:?}");
    check_store(&addresses[1], index).await;
}

//! Issue 11, High 6, end to end with the binary: `raft-node certs`, three separately started
//! `serve` processes speaking mutual TLS with separate peer and admin secrets, and the CLI over
//! https/wss with `--tls-ca`; then `dev-cluster --tls`.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");
const PEER: &str = "3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d";
const ADMIN: &str = "4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c";

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("flotilla-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Three consecutive free ports (dev-cluster numbers its nodes from a base port).
fn consecutive_free_ports() -> u16 {
    for _ in 0..50 {
        let base = free_ports(1)[0];
        if base > 65_000 {
            continue;
        }
        let held: Vec<_> =
            (0..3).filter_map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok()).collect();
        if held.len() == 3 {
            return base;
        }
    }
    panic!("no three consecutive free ports");
}

fn spawn_node(id: u64, addresses: &[String], root: &Path, certs: &Path) -> Process {
    let bootstrap: Vec<String> =
        addresses.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
    let log = std::fs::File::create(root.join(format!("node-{id}.log"))).unwrap();
    let child = Command::new(BINARY)
        .args(["serve", "--id", &id.to_string(), "--listen", &addresses[(id - 1) as usize]])
        .arg("--data-dir")
        .arg(root.join(format!("node-{id}")))
        .args(["--bootstrap", &bootstrap.join(",")])
        .arg("--tls-cert")
        .arg(certs.join(format!("node-{id}.pem")))
        .arg("--tls-key")
        .arg(certs.join(format!("node-{id}-key.pem")))
        .arg("--tls-ca")
        .arg(certs.join("ca.pem"))
        .env_remove("FLOTILLA_SECRET")
        .env("FLOTILLA_PEER_SECRET", PEER)
        .env("FLOTILLA_ADMIN_SECRET", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Process(child)
}

fn cli(args: &[&str], ca: Option<&Path>, admin: &str) -> Output {
    let mut command = Command::new(BINARY);
    if let Some(ca) = ca {
        command.arg("--tls-ca").arg(ca);
    }
    command
        .args(args)
        .env_remove("FLOTILLA_SECRET")
        .env("FLOTILLA_ADMIN_SECRET", admin)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

/// Retries `put` until a leader answers (the cluster is electing).
fn put_until_ok(endpoints: &str, ca: &Path, admin: &str, root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = cli(&["kv", "--endpoints", endpoints, "put", "greeting", "over tls"], Some(ca), admin);
        if output.status.success() {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = (1..=3)
                .map(|id| std::fs::read_to_string(root.join(format!("node-{id}.log"))).unwrap_or_default())
                .collect();
            panic!("no put over TLS: {}\nlogs: {logs:?}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn separately_started_nodes_speak_mutual_tls_and_the_cli_speaks_https() {
    let root = TempDir::new("tls-processes");
    let certs = root.0.join("certs");
    let made = Command::new(BINARY).args(["certs", "--nodes", "3", "--out"]).arg(&certs).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let addresses: Vec<String> = free_ports(3).into_iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let _nodes: Vec<Process> = (1..=3).map(|id| spawn_node(id, &addresses, &root.0, &certs)).collect();
    let endpoints = addresses.join(",");
    let ca = certs.join("ca.pem");

    put_until_ok(&endpoints, &ca, ADMIN, &root.0);
    let output = cli(&["kv", "--endpoints", &endpoints, "get", "greeting"], Some(&ca), ADMIN);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "over tls\n");
    let output = cli(&["admin", "--endpoints", &endpoints, "status"], Some(&ca), ADMIN);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // Every member is connected to its peers: mutual TLS between processes works.
    let peers = status["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2, "{status}");
    assert!(peers.iter().all(|peer| peer["connections"].as_u64().unwrap() >= 1), "{status}");
    // Backup goes over https too.
    let backup = root.0.join("backup.bin");
    let output =
        cli(&["admin", "--endpoints", &endpoints, "backup", backup.to_str().unwrap()], Some(&ca), ADMIN);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Without the CA the CLI reaches nothing; the peer secret is no admin secret.
    let output = cli(&["kv", "--endpoints", &endpoints, "get", "greeting"], None, ADMIN);
    assert!(!output.status.success());
    let output = cli(&["admin", "--endpoints", &endpoints, "status"], Some(&ca), PEER);
    assert!(String::from_utf8_lossy(&output.stderr).contains("unauthorized"));
}

#[test]
fn dev_cluster_tls_makes_certificates_and_serves_over_tls() {
    let root = TempDir::new("dev-cluster-tls");
    let base = consecutive_free_ports();
    let log = std::fs::File::create(root.0.join("node-1.log")).unwrap();
    let _cluster = Process(
        Command::new(BINARY)
            .args(["dev-cluster", "--tls", "--nodes", "3", "--base-port", &base.to_string()])
            .arg("--data-root")
            .arg(&root.0)
            .env("FLOTILLA_SECRET", PEER)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let endpoints = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect::<Vec<_>>().join(",");
    let ca = root.0.join("certs").join("ca.pem");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ca.exists() {
        assert!(Instant::now() < deadline, "dev-cluster --tls wrote no CA");
        std::thread::sleep(Duration::from_millis(50));
    }
    // FLOTILLA_SECRET alone: peer and admin secret in a dev cluster.
    put_until_ok(&endpoints, &ca, PEER, &root.0);
    let output = cli(&["kv", "--endpoints", &endpoints, "get", "greeting"], None, PEER);
    assert!(!output.status.success(), "plaintext reaches a TLS dev cluster");
}

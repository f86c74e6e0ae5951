//! Recorded histories of native runs and `raft-node check`: a healthy 3-node cluster's bench
//! history checks clean, and the same history with a stale read added is flagged, by the binary
//! and in its HTML report (thesis §6.3: linearizability).

mod common;

use common::{Cluster, TempDir};
use native_node::bench::{self, BenchConfig};
use native_node::history::{check_history, read_history, HistoryLine, Recorder};
use std::process::Command;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");

/// A get appended after everything else that returns the value a put overwrote: `put v1`
/// completed, then `put v2` completed, then the get (invoked after both) returns v1.
fn stale_read(lines: &[HistoryLine]) -> HistoryLine {
    let puts: Vec<&HistoryLine> =
        lines.iter().filter(|line| line.op == "put" && line.outcome == "ok").collect();
    let (first, second) = puts
        .iter()
        .flat_map(|a| puts.iter().map(move |b| (*a, *b)))
        .find(|(a, b)| a.key == b.key && a.complete_us.unwrap() < b.invoke_us)
        .expect("two sequential puts of one key");
    let end = lines.iter().filter_map(|line| line.complete_us).max().unwrap();
    assert!(second.complete_us.unwrap() <= end);
    HistoryLine {
        client: 99,
        op: "get".into(),
        key: first.key.clone(),
        value: None,
        expected: None,
        invoke_us: end + 10,
        complete_us: Some(end + 20),
        outcome: "ok".into(),
        result: Some(first.value.clone()),
        swapped: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_clusters_bench_history_checks_clean_and_a_stale_read_is_flagged() {
    let cluster = Cluster::start(3, "history").await;
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    let dir = TempDir::new("history-files");
    let good = dir.0.join("good.jsonl");
    let report = bench::run(BenchConfig {
        endpoints: cluster.addresses.clone(),
        clients: 4,
        connections: 1,
        ops: 400,
        value_size_bytes: 8,
        use_session: true,
        record: Some(Recorder::append_to(&good).unwrap()),
        security: Default::default(),
    })
    .await;
    cluster.shutdown().await;
    assert_eq!(report.errors, 0, "{report:?}");

    let text = std::fs::read_to_string(&good).unwrap();
    let lines: Vec<HistoryLine> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 400);
    assert!(lines.iter().filter(|line| line.op == "get").count() >= 150, "the workload reads too");
    let (result, summary) = check_history(&read_history(&text).unwrap());
    assert!(result.is_linearizable(), "{result}");
    assert_eq!(summary.summary, "no violation in 400 operations");

    let clean = Command::new(BINARY).arg("check").arg(&good).output().unwrap();
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{stdout}");
    assert!(stdout.starts_with("no violation in 400 operations"), "{stdout}");

    // The same history with a stale read added.
    let stale = stale_read(&lines);
    let bad = dir.0.join("bad.jsonl");
    std::fs::write(&bad, format!("{text}{}\n", serde_json::to_string(&stale).unwrap())).unwrap();
    let html = dir.0.join("report.html");
    let flagged = Command::new(BINARY).arg("check").arg(&bad).arg("--html").arg(&html).output().unwrap();
    let stdout = String::from_utf8_lossy(&flagged.stdout);
    assert_eq!(flagged.status.code(), Some(1), "{stdout}");
    let value = stale.result.clone().unwrap().unwrap();
    let sentence = format!("get {} returned {value} after put {}=", stale.key, stale.key);
    assert!(stdout.contains(&sentence), "{stdout}");
    assert!(stdout.contains("! #400 client 99"), "the stale read is the one marked: {stdout}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(&sentence), "the report names the operation");
    assert!(page.contains("function mountHistoryPanel"), "the panel is inlined: no server needed");
}

//! Issue 11, Medium 14: a leader's heartbeats must not wait behind its own log write. A flood of
//! 64 KiB puts made every fsync slow, heartbeats queued behind them, and followers deposed the
//! leader. Here the disk is made slow on purpose (a 1.5 s write) and the test plays both
//! followers: it elects the node, has it write, and counts the heartbeats that leave while the
//! write is in flight.

use native_node::kv::{KvStateMachine, StateMachine};
use native_node::metrics::Metrics;
use native_node::raft::{Network, Raft, RaftConfig};
use native_node::storage::Storage;
use raft_core::kv::KvConfig;
use raft_core::{Membership, Message, MessageBody, NodeId};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Records what the node sends.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(Instant, Message)>>,
}

impl Network for Recorder {
    fn send(&self, message: Message) {
        self.sent.lock().unwrap().push((Instant::now(), message));
    }
}

impl Recorder {
    fn take(&self) -> Vec<(Instant, Message)> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_leave_while_the_leaders_log_write_is_in_flight() {
    let dir = std::env::temp_dir().join(format!("flotilla-heartbeats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let storage = Arc::new(Storage::open_with_segment_bytes(&dir, 1024 * 1024).unwrap());
    let mut config = RaftConfig::new(NodeId(1), 7);
    config.tick_interval = Duration::from_millis(10);
    // Election timeout 300 ms, heartbeats every 30 ms.
    config.core.election_timeout_ticks = 30;
    config.core.heartbeat_interval_ticks = 3;
    config.bootstrap = Some(Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]));
    let network = Arc::new(Recorder::default());
    let (inbound_tx, inbound_rx) = mpsc::channel(1024);
    let state_machine: Box<dyn StateMachine> = Box::new(KvStateMachine::new(KvConfig::default()).unwrap());
    let raft = Raft::start(
        config,
        state_machine,
        storage.clone(),
        network.clone(),
        inbound_rx,
        Arc::new(Metrics::default()),
    )
    .unwrap();

    // Play nodes 2 and 3: grant every (pre-)vote and answer every heartbeat, counting the
    // heartbeats to node 2.
    let heartbeats_to_two = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let responder = {
        let network = network.clone();
        let counter = heartbeats_to_two.clone();
        tokio::spawn(async move {
            loop {
                for (_, message) in network.take() {
                    let body = match message.body {
                        MessageBody::VoteRequest { kind, .. } => {
                            MessageBody::VoteResponse { kind, granted: true }
                        }
                        MessageBody::Heartbeat { context, .. } => {
                            if message.to == NodeId(2) {
                                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            MessageBody::HeartbeatResponse { context }
                        }
                        _ => continue,
                    };
                    let answer = Message { from: message.to, to: message.from, term: message.term, body };
                    if inbound_tx.send(answer).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while raft.status().role != "leader" {
        assert!(Instant::now() < deadline, "node 1 was never elected");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let the election's own writes finish, then make the disk slow and write.
    tokio::time::sleep(Duration::from_millis(200)).await;
    storage.delay_writes_for_tests(Duration::from_millis(1500));
    let writer = {
        let raft = raft.clone();
        tokio::spawn(async move {
            let command = raft_core::kv::Command::unsessioned(
                1,
                raft_core::kv::Operation::Put {
                    key: b"k".to_vec().into(),
                    value: vec![0u8; 64 * 1024].into(),
                },
            );
            let _ = raft.apply(command.encode(), Duration::from_secs(5)).await;
        })
    };
    // The write starts at once; measure one second inside its 1.5 s.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = heartbeats_to_two.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let heartbeats = heartbeats_to_two.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert_eq!(raft.status().role, "leader", "the leader was deposed during its write");
    // Heartbeats go every 30 ms: about 33 in that second if they do not wait for the disk.
    assert!(heartbeats >= 5, "only {heartbeats} heartbeats to node 2 left during a 1.5 s log write");
    responder.abort();
    storage.delay_writes_for_tests(Duration::ZERO);
    writer.abort();
    raft.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

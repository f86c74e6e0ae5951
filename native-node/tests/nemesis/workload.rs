//! The clients of a nemesis run and what they record.
//!
//! - Workload clients do put, compare-and-swap and linearizable get on a few keys, recording
//!   invoke and ok / fail / unknown for raft-core's linearizability checker. The keys change
//!   with every fault (`epoch`), so each key's history stays short enough to check exactly.
//!   A quarter of the puts go to a key of their own ("witnesses"): every acknowledged one must
//!   be readable, with its value, after each heal and at the end.
//! - Probes measure how long a client waits for an answer from a leader that lost leadership:
//!   during a fault they send single-attempt writes to the leader from before the fault.

use native_node::client::{Client, ClientConfig, ClientError};
use native_node::connection::ConnectionPool;
use raft_core::linearizability::{HistoryBuilder, Observed, Op};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shared by the workload clients and the test.
pub struct Recorder {
    pub start: Instant,
    pub history: Mutex<HistoryBuilder>,
    /// When each acknowledged write completed, in ms since `start`.
    pub acks_ms: Mutex<Vec<u64>>,
    /// Acknowledged witness writes (key, value), in order.
    pub witnesses: Mutex<Vec<(String, String)>>,
    /// Part of every key name; the test raises it at each fault.
    pub epoch: AtomicU64,
    /// While set, clients start no new operation (the test compares replicas).
    pub paused: AtomicBool,
    pub in_flight: AtomicUsize,
    pub stop: AtomicBool,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            history: Mutex::new(HistoryBuilder::new()),
            acks_ms: Mutex::new(Vec::new()),
            witnesses: Mutex::new(Vec::new()),
            epoch: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Stops new operations and waits (up to `timeout`) for those in flight to finish.
    pub async fn quiesce(&self, timeout: Duration) -> bool {
        self.paused.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// The client configuration of the workload: one second per attempt, four per call.
pub fn client_config(endpoints: Vec<String>) -> ClientConfig {
    let mut config = ClientConfig::new(endpoints);
    config.attempt_timeout = Duration::from_secs(1);
    config.call_timeout = Duration::from_secs(4);
    config
}

/// One workload client, until `recorder.stop`.
pub async fn client_loop(client_id: u64, endpoints: Vec<String>, recorder: Arc<Recorder>) {
    let mut client = Client::new(client_config(endpoints));
    let mut seed = client_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut sequence = 0u64;
    while !recorder.stop.load(Ordering::SeqCst) {
        if recorder.paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        recorder.in_flight.fetch_add(1, Ordering::SeqCst);
        if recorder.paused.load(Ordering::SeqCst) {
            recorder.in_flight.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        sequence += 1;
        let epoch = recorder.epoch.load(Ordering::SeqCst);
        let key = format!("e{epoch}-k{}", seed % 3);
        let value = format!("c{client_id}-{sequence}");
        let op = match (seed >> 8) % 4 {
            0 => Op::put(key.clone(), value.clone()),
            1 => Op::get(key.clone()),
            2 => {
                // Expect whatever the client last saw there (a stale read outside the history).
                let expected = current_value(&mut client, &key).await;
                Op::cas(key.clone(), expected.map(Into::into), value.clone())
            }
            _ => Op::put(format!("w{client_id}-{sequence}"), value.clone()),
        };
        run_op(client_id, &mut client, op, &recorder).await;
        recorder.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run_op(client_id: u64, client: &mut Client, op: Op, recorder: &Recorder) {
    let invoked = recorder.now_us();
    let id = recorder.history.lock().unwrap().invoke(client_id, invoked, op.clone());
    let observed = match &op {
        Op::Put { key, value } => {
            let (key, value) = (String::from_utf8_lossy(key), String::from_utf8_lossy(value));
            match client.put(&key, &value).await {
                Ok(_) => {
                    if key.starts_with('w') {
                        recorder.witnesses.lock().unwrap().push((key.into_owned(), value.into_owned()));
                    }
                    Observed::Done
                }
                Err(_) => Observed::Unknown,
            }
        }
        Op::Get { key } => match client.get(&String::from_utf8_lossy(key), "linearizable").await {
            Ok(answer) => Observed::Value(answer["value"].as_str().map(|v| v.as_bytes().to_vec().into())),
            Err(_) => Observed::Failed,
        },
        Op::CompareAndSwap { key, expected, new } => {
            let expected = expected.as_ref().map(|e| String::from_utf8_lossy(e).into_owned());
            let (key, new) = (String::from_utf8_lossy(key), String::from_utf8_lossy(new));
            match client.cas(&key, expected.as_deref(), &new).await {
                Ok(_) => Observed::Swapped(true),
                Err(ClientError::Refused { code, .. }) if code == "cas_failed" => Observed::Swapped(false),
                Err(_) => Observed::Unknown,
            }
        }
        _ => Observed::Unknown,
    };
    let completed = recorder.now_us();
    if matches!(observed, Observed::Done | Observed::Swapped(true)) {
        recorder.acks_ms.lock().unwrap().push(completed / 1000);
    }
    let _ = recorder.history.lock().unwrap().complete(id, completed, observed);
}

async fn current_value(client: &mut Client, key: &str) -> Option<String> {
    client.get(key, "stale").await.ok()?["value"].as_str().map(str::to_string)
}

/// What one probe saw: how long it waited and whether the node answered `ok`.
#[derive(Clone, Debug)]
pub struct ProbeAnswer {
    pub waited: Duration,
    pub ok: bool,
    pub answer: String,
}

/// Until `stop`, every 25 ms: one write to `address` alone, one attempt (5 s at most), no
/// retry elsewhere. Returns every answer.
pub async fn probe(address: String, stop: Arc<AtomicBool>) -> Vec<ProbeAnswer> {
    let pool = ConnectionPool::new();
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let mut config = ClientConfig::new(vec![address.clone()]);
        config.attempt_timeout = Duration::from_secs(5);
        config.call_timeout = Duration::from_millis(1);
        config.use_session = false;
        let mut client = Client::with_pool(config, pool.clone());
        let answers = answers.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let result = client.put(&format!("probe-{n}"), "p").await;
            let waited = sent.elapsed();
            let answer = match &result {
                Ok(_) => "ok".to_string(),
                Err(error) => error.to_string(),
            };
            answers.lock().unwrap().push(ProbeAnswer { waited, ok: result.is_ok(), answer });
        }));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    let answers = answers.lock().unwrap().clone();
    answers
}

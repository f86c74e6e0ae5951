//! Peer connection liveness (issue 12): a connection that stops carrying traffic is found and
//! replaced within about one election timeout, and what was queued for the peer moves to the
//! next connection.
//!
//! A partition that drops packets without resetting connections leaves TCP in retransmission
//! backoff: the socket still looks open, a reader waits forever, a writer's bytes pile up in the
//! send buffer. Without liveness a node "connected" to every peer hears nothing for as long as
//! the backoff lasts (tens of seconds), long after the network healed. So:
//! - every connection sends a WebSocket ping every [`LivenessConfig::ping_interval`] (a quarter
//!   of an election timeout); the far end's WebSocket library answers with a pong (tungstenite
//!   does so while it reads, on both the dialled and the accepted side), so even a link between
//!   two followers, which carries no Raft traffic, hears something several times per timeout;
//! - a connection on which nothing (frame, ping or pong) arrived for
//!   [`LivenessConfig::idle_timeout`] (one election timeout) is closed; the dialling side redials
//!   at once, with backoff capped well below an election timeout;
//! - every write has [`LivenessConfig::write_timeout`]: a far end that stopped reading (full
//!   send buffer) cannot hold the connection task;
//! - a dial (TCP connect, upgrade, handshake) has [`LivenessConfig::dial_timeout`]: a dial sent
//!   into the partition is abandoned and retried rather than waited on after the heal;
//! - dialled peer sockets set `TCP_USER_TIMEOUT`, so the kernel gives up on unacknowledged data
//!   too (accepted sockets get a looser one in the server);
//! - the peer's outbound queue ([`PeerQueue`]) belongs to the peer, not to a connection: it is
//!   leased by whichever connection is up and handed to the next one when that one ends. It is
//!   bounded and drops the *oldest* message when full and messages older than
//!   [`LivenessConfig::stale_after`] when dequeued: after a partition, what the core said long
//!   ago is superseded (Raft tolerates loss; heartbeats and probes resend what matters).

use bytes::Bytes;
use raft_core::Message;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Timeouts that keep peer connections live, all derived from the election timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LivenessConfig {
    /// How often a connection pings its peer.
    pub ping_interval: Duration,
    /// A connection that heard nothing for this long is closed (and redialled).
    pub idle_timeout: Duration,
    /// Longest time one write (or flush) to a peer socket may take.
    pub write_timeout: Duration,
    /// Longest time a dial (connect, upgrade and handshake) may take.
    pub dial_timeout: Duration,
    /// `TCP_USER_TIMEOUT` of dialled peer sockets: the kernel aborts a connection whose sent
    /// data stays unacknowledged this long.
    pub tcp_user_timeout: Duration,
    /// Queued messages older than this are dropped instead of sent.
    pub stale_after: Duration,
    /// Longest pause between two dials of an unreachable peer.
    pub redial_delay_max: Duration,
}

/// The shortest election timeout liveness is derived from: below it, pings and timeouts would
/// be so tight that a busy machine's scheduling delays alone close connections.
pub const ELECTION_TIMEOUT_FLOOR: Duration = Duration::from_millis(200);

impl LivenessConfig {
    /// Liveness for a cluster whose election timeout is `election_timeout`: pings every quarter
    /// of it; an idle connection is closed, and a dial abandoned, after one.
    pub fn for_election_timeout(election_timeout: Duration) -> LivenessConfig {
        let election = election_timeout.max(ELECTION_TIMEOUT_FLOOR);
        LivenessConfig {
            ping_interval: election / 4,
            idle_timeout: election,
            write_timeout: election,
            dial_timeout: election,
            tcp_user_timeout: election * 2,
            stale_after: election * 2,
            redial_delay_max: election / 2,
        }
    }
}

impl Default for LivenessConfig {
    /// For the default election timeout of 500 ms (50 ticks of 10 ms).
    fn default() -> LivenessConfig {
        LivenessConfig::for_election_timeout(Duration::from_millis(500))
    }
}

/// One peer's outbound messages: bounded, oldest dropped first, drained by one connection at a
/// time (the one holding the [`QueueLease`]).
pub struct PeerQueue<T = Message> {
    messages: Mutex<VecDeque<(Instant, T)>>,
    capacity: usize,
    arrived: Notify,
    leased: AtomicBool,
}

/// What [`PeerQueue::push`] had to give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued, nothing dropped.
    Queued,
    /// Queued; the oldest message was dropped to make room.
    DroppedOldest,
}

impl<T> PeerQueue<T> {
    /// An empty queue of at most `capacity` messages (at least one).
    pub fn new(capacity: usize) -> Arc<PeerQueue<T>> {
        Arc::new(PeerQueue {
            messages: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            arrived: Notify::new(),
            leased: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, T)>> {
        self.messages.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `message`; a full queue drops its oldest message (the newest says more).
    pub fn push(&self, message: T) -> Pushed {
        let pushed = {
            let mut messages = self.lock();
            let pushed = if messages.len() >= self.capacity {
                messages.pop_front();
                Pushed::DroppedOldest
            } else {
                Pushed::Queued
            };
            messages.push_back((Instant::now(), message));
            debug_assert!(messages.len() <= self.capacity);
            pushed
        };
        self.arrived.notify_one();
        pushed
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the oldest message queued less than `stale_after` ago, if any; returns it with the
    /// number of stale messages dropped on the way.
    pub fn try_pop(&self, stale_after: Duration) -> (Option<T>, u64) {
        let mut messages = self.lock();
        let mut stale = 0;
        while let Some((queued_at, message)) = messages.pop_front() {
            if queued_at.elapsed() <= stale_after {
                return (Some(message), stale);
            }
            stale += 1;
        }
        (None, stale)
    }

    /// Waits for the next message that is not stale; see [`PeerQueue::try_pop`].
    pub async fn pop(&self, stale_after: Duration) -> (T, u64) {
        let mut stale_total = 0;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            // Registered before looking, so a push between the look and the wait is not missed.
            arrived.as_mut().enable();
            let (message, stale) = self.try_pop(stale_after);
            stale_total += stale;
            if let Some(message) = message {
                return (message, stale_total);
            }
            arrived.await;
        }
    }

    /// The right to drain the queue, if no other connection holds it.
    pub fn try_lease(self: &Arc<PeerQueue<T>>) -> Option<QueueLease<T>> {
        self.leased
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| QueueLease { queue: self.clone() })
    }
}

/// A connection's right to drain its peer's queue; dropping it hands the queue on.
pub struct QueueLease<T = Message> {
    queue: Arc<PeerQueue<T>>,
}

impl<T> QueueLease<T> {
    /// The leased queue.
    pub fn queue(&self) -> &PeerQueue<T> {
        &self.queue
    }
}

impl<T> Drop for QueueLease<T> {
    fn drop(&mut self) {
        self.queue.leased.store(false, Ordering::Release);
    }
}

/// Per-peer link figures for status and metrics.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Connections established after the first one (dialled or accepted).
    pub reconnects: AtomicU64,
    /// Last ping round trip, microseconds; 0 before the first pong.
    pub ping_round_trip_micros: AtomicU64,
    /// When anything was last heard from the peer, microseconds since [`epoch`]; 0: never.
    pub last_heard_micros: AtomicU64,
    /// Connections closed for idleness.
    pub idle_closes: AtomicU64,
    /// Connections closed because a write timed out.
    pub write_timeouts: AtomicU64,
}

impl LinkStats {
    /// Records that something arrived from the peer now.
    pub fn heard(&self) {
        self.last_heard_micros.store(micros_since_epoch().max(1), Ordering::Relaxed);
    }

    /// Time since anything was heard from the peer, if ever.
    pub fn since_last_heard(&self) -> Option<Duration> {
        match self.last_heard_micros.load(Ordering::Relaxed) {
            0 => None,
            at => Some(Duration::from_micros(micros_since_epoch().saturating_sub(at))),
        }
    }

    /// The last ping round trip, if a pong came back.
    pub fn ping_round_trip(&self) -> Option<Duration> {
        match self.ping_round_trip_micros.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}

/// The process's reference instant for ping payloads and last-heard times.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn micros_since_epoch() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// A ping's payload: when it was sent, so its pong gives the round trip.
pub fn ping_payload() -> Bytes {
    Bytes::copy_from_slice(&micros_since_epoch().to_le_bytes())
}

/// The round trip a pong reports, if it answers one of our pings (the payload is whatever the
/// peer sent: anything else is ignored, never trusted).
pub fn pong_round_trip(payload: &[u8]) -> Option<Duration> {
    let sent = u64::from_le_bytes(payload.try_into().ok()?);
    let now = micros_since_epoch();
    (sent <= now).then(|| Duration::from_micros((now - sent).max(1)))
}

/// What liveness needs from a WebSocket message type beyond [`crate::transport::WsMessage`].
pub trait LivenessMessage: Sized {
    /// A ping carrying `payload`.
    fn ping(payload: Bytes) -> Self;
    /// The payload, if this is a pong.
    fn pong_payload(&self) -> Option<&[u8]>;
}

impl LivenessMessage for axum::extract::ws::Message {
    fn ping(payload: Bytes) -> Self {
        axum::extract::ws::Message::Ping(payload)
    }
    fn pong_payload(&self) -> Option<&[u8]> {
        match self {
            axum::extract::ws::Message::Pong(payload) => Some(payload),
            _ => None,
        }
    }
}

impl LivenessMessage for tokio_tungstenite::tungstenite::Message {
    fn ping(payload: Bytes) -> Self {
        tokio_tungstenite::tungstenite::Message::Ping(payload)
    }
    fn pong_payload(&self) -> Option<&[u8]> {
        match self {
            tokio_tungstenite::tungstenite::Message::Pong(payload) => Some(payload),
            _ => None,
        }
    }
}

/// Sets `TCP_USER_TIMEOUT` on `stream` where the platform has it (Linux); a no-op elsewhere.
///
/// # Errors
/// The OS error when the option cannot be set.
pub fn set_tcp_user_timeout(stream: &tokio::net::TcpStream, timeout: Duration) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        socket2::SockRef::from(stream).set_tcp_user_timeout(Some(timeout))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (stream, timeout);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{MessageBody, NodeId, Term};

    fn message(context: u64) -> Message {
        Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(1),
            body: MessageBody::HeartbeatResponse { context },
        }
    }

    fn context(message: &Message) -> u64 {
        match message.body {
            MessageBody::HeartbeatResponse { context } => context,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_message() {
        let queue = PeerQueue::new(2);
        assert_eq!(queue.push(message(1)), Pushed::Queued);
        assert_eq!(queue.push(message(2)), Pushed::Queued);
        assert_eq!(queue.push(message(3)), Pushed::DroppedOldest);
        let forever = Duration::from_secs(3600);
        assert_eq!(queue.try_pop(forever).0.as_ref().map(context), Some(2));
        assert_eq!(queue.try_pop(forever).0.as_ref().map(context), Some(3));
        assert_eq!(queue.try_pop(forever), (None, 0));
    }

    #[test]
    fn stale_messages_are_dropped_and_counted() {
        let queue = PeerQueue::new(8);
        queue.push(message(1));
        queue.push(message(2));
        std::thread::sleep(Duration::from_millis(20));
        queue.push(message(3));
        let (next, stale) = queue.try_pop(Duration::from_millis(10));
        assert_eq!((next.as_ref().map(context), stale), (Some(3), 2));
    }

    #[test]
    fn one_connection_at_a_time_holds_the_queue_and_dropping_hands_it_on() {
        let queue = PeerQueue::<Message>::new(8);
        let first = queue.try_lease().expect("free");
        assert!(queue.try_lease().is_none());
        drop(first);
        assert!(queue.try_lease().is_some());
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let queue = PeerQueue::new(8);
        let pusher = queue.clone();
        let pushed = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            pusher.push(message(7));
        });
        let (next, stale) = tokio::time::timeout(Duration::from_secs(5), queue.pop(Duration::from_secs(60)))
            .await
            .expect("the push wakes the waiter");
        assert_eq!((context(&next), stale), (7, 0));
        pushed.await.unwrap();
    }

    #[test]
    fn pongs_give_round_trips_and_garbage_gives_none() {
        let payload = ping_payload();
        assert!(pong_round_trip(&payload).is_some());
        assert_eq!(pong_round_trip(b"junk"), None);
        assert_eq!(pong_round_trip(&u64::MAX.to_le_bytes()), None);
    }

    #[test]
    fn timeouts_follow_the_election_timeout_with_a_floor() {
        let config = LivenessConfig::for_election_timeout(Duration::from_millis(1000));
        assert_eq!(config.ping_interval, Duration::from_millis(250));
        assert_eq!(config.idle_timeout, Duration::from_millis(1000));
        let tiny = LivenessConfig::for_election_timeout(Duration::from_millis(10));
        assert_eq!(tiny.idle_timeout, ELECTION_TIMEOUT_FLOOR);
    }
}

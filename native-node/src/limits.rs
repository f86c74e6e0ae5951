//! Connection limits: "authenticate before you allocate, bound every connection count, time
//! out every idle socket" (etcd's `--max-request-bytes`, Consul's
//! `limits.http_max_conns_per_client`).
//!
//! - The open-file soft limit is raised to the hard limit at start ([`raise_fd_limit`]), and
//!   the total number of connections is kept [`FDS_RESERVED`] below it, so that sockets can
//!   never take the file descriptors the log, the snapshots and the peers need.
//! - [`serve`] is the accept loop: a connection cap per client address and in total, a
//!   header-read timeout on every HTTP request, and an idle timeout on every socket, WebSockets
//!   included ([`GuardedIo`]: no byte moved either way for that long closes it).
//! - A `/raft` socket may read only [`crate::peer_auth::HANDSHAKE_FRAME_BYTES_MAX`] plus a little
//!   until its handshake completes ([`ReadBudget`]), so unauthenticated peers cost kilobytes,
//!   not the 8 MiB a frame may have later.

use crate::metrics::Metrics;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// File descriptors kept free of client connections, for the log, snapshots, redb and peers:
/// a quarter of the limit, at most this many.
pub const FDS_RESERVED: u64 = 256;

/// The limits of one node's listener.
#[derive(Clone, Debug)]
pub struct ListenerLimits {
    /// TCP connections open at once, all clients together (also kept below the fd limit).
    pub connections_max: usize,
    /// TCP connections open at once from one IP address.
    pub connections_per_address_max: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// A socket that moves no byte in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Client and event-stream WebSockets (`/client`, `/events`) open at once.
    pub client_websockets_max: usize,
    /// Peer WebSockets (`/raft`) open at once: a separate pool, so clients never crowd out
    /// peers.
    pub peer_websockets_max: usize,
    /// Bytes a `/raft` socket may read before its handshake completes.
    pub handshake_read_bytes_max: u64,
}

impl Default for ListenerLimits {
    fn default() -> ListenerLimits {
        ListenerLimits {
            connections_max: 16_384,
            connections_per_address_max: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            client_websockets_max: 4096,
            peer_websockets_max: 256,
            handshake_read_bytes_max: 16 * 1024,
        }
    }
}

/// Raises the open-file soft limit to the hard limit; returns the soft limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
        }
    }
}

/// Counts open connections, in total and per address.
#[derive(Debug)]
pub struct ConnectionTracker {
    total: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    total_max: usize,
    per_address_max: usize,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionGuard {
    tracker: Arc<ConnectionTracker>,
    address: IpAddr,
}

impl ConnectionTracker {
    /// A tracker with these caps.
    pub fn new(total_max: usize, per_address_max: usize) -> Arc<ConnectionTracker> {
        Arc::new(ConnectionTracker {
            total: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            total_max,
            per_address_max,
        })
    }

    /// Admits a connection from `address`, or says why not.
    ///
    /// # Errors
    /// A lowercase reason when a cap is reached.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<ConnectionGuard, &'static str> {
        let mut per_address = self.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.total.load(Ordering::Relaxed) >= self.total_max {
            return Err("too many connections");
        }
        let count = per_address.entry(address).or_insert(0);
        if *count >= self.per_address_max {
            return Err("too many connections from this address");
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(ConnectionGuard { tracker: self.clone(), address })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut per_address =
            self.tracker.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = per_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                per_address.remove(&self.address);
            }
        }
        self.tracker.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many bytes a connection may still read: unlimited, except on a `/raft` socket whose
/// handshake has not completed.
#[derive(Debug)]
pub struct ReadBudget {
    read: AtomicU64,
    limit: AtomicU64,
}

impl Default for ReadBudget {
    fn default() -> ReadBudget {
        ReadBudget { read: AtomicU64::new(0), limit: AtomicU64::new(u64::MAX) }
    }
}

impl ReadBudget {
    /// From now on, at most `bytes` more may be read.
    pub fn limit_to(&self, bytes: u64) {
        let read = self.read.load(Ordering::Relaxed);
        self.limit.store(read.saturating_add(bytes), Ordering::Relaxed);
    }

    /// No limit any more (the peer authenticated).
    pub fn lift(&self) {
        self.limit.store(u64::MAX, Ordering::Relaxed);
    }
}

/// What a request knows about its connection (a request extension).
#[derive(Clone, Debug)]
pub struct ConnectionContext {
    /// The client's address.
    pub remote: SocketAddr,
    /// The connection's read budget.
    pub read_budget: Arc<ReadBudget>,
    /// What the connection proved at the TLS layer about being a peer.
    pub peer_proof: crate::tls::PeerProof,
}

/// A socket with an idle timeout and a read budget.
pub struct GuardedIo {
    inner: TcpStream,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    budget: Arc<ReadBudget>,
    metrics: Arc<Metrics>,
}

impl GuardedIo {
    fn new(inner: TcpStream, idle_timeout: Duration, budget: Arc<ReadBudget>, metrics: Arc<Metrics>) -> Self {
        GuardedIo { inner, idle_timeout, idle: Box::pin(tokio::time::sleep(idle_timeout)), budget, metrics }
    }

    fn moved(&mut self) {
        let deadline = Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }

    /// `Pending` while the socket may stay idle; an error once it has been idle too long.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.metrics.connections_timed_out_total.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long"))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let read = this.budget.read.load(Ordering::Relaxed);
        let allowed = this.budget.limit.load(Ordering::Relaxed).saturating_sub(read);
        if allowed == 0 {
            this.metrics.connections_refused_total.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "read limit before authentication exceeded",
            )));
        }
        let before = buf.filled().len();
        let poll = if allowed < buf.remaining() as u64 {
            // Only while a budget applies (a handshake): read into a small buffer of its size.
            let mut small = vec![0u8; allowed as usize];
            let mut small_buf = ReadBuf::new(&mut small);
            let poll = Pin::new(&mut this.inner).poll_read(cx, &mut small_buf);
            if let Poll::Ready(Ok(())) = poll {
                buf.put_slice(small_buf.filled());
            }
            poll
        } else {
            Pin::new(&mut this.inner).poll_read(cx, buf)
        };
        match poll {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled().len() - before;
                this.budget.read.fetch_add(filled as u64, Ordering::Relaxed);
                this.moved();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.check_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(written)) => {
                this.moved();
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.check_idle(cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, buffers) {
            Poll::Ready(Ok(written)) => {
                this.moved();
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.check_idle(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` turns true; with `tls`, every
/// connection must complete a TLS handshake within the header-read timeout first.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ListenerLimits,
    metrics: Arc<Metrics>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let fd_limit = raise_fd_limit();
    let total_max = match fd_limit {
        Some(fds) => {
            limits.connections_max.min(fds.saturating_sub(FDS_RESERVED.min(fds / 4)).max(16) as usize)
        }
        None => limits.connections_max,
    };
    tracing::info!(?fd_limit, connections_max = total_max, "listener limits");
    let tracker = ConnectionTracker::new(total_max, limits.connections_per_address_max);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: wait a little rather than spin; the limits above keep
                // this rare.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let guard = match tracker.admit(remote.ip()) {
            Ok(guard) => guard,
            Err(why) => {
                metrics.connections_refused_total.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%remote, why, "connection refused");
                drop(tcp);
                continue;
            }
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted socket");
        }
        if let Err(error) =
            crate::peer_liveness::set_tcp_user_timeout(&tcp, crate::server::ACCEPTED_TCP_USER_TIMEOUT)
        {
            tracing::debug!(%error, "cannot set TCP_USER_TIMEOUT on an accepted socket");
        }
        let budget = Arc::new(ReadBudget::default());
        let io = GuardedIo::new(tcp, limits.idle_timeout, budget.clone(), metrics.clone());
        let router = router.clone();
        let header_read_timeout = limits.header_read_timeout;
        let mut shutdown = shutdown.clone();
        let metrics = metrics.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let io = match tls {
                None => crate::tls::AcceptedStream::Plain(io),
                Some(acceptor) => {
                    match tokio::time::timeout(header_read_timeout, acceptor.accept(io)).await {
                        Ok(Ok(stream)) => crate::tls::AcceptedStream::Tls(Box::new(stream)),
                        Ok(Err(error)) => {
                            metrics.connections_tls_failed_total.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%error, %remote, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            metrics.connections_timed_out_total.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            };
            let context =
                ConnectionContext { remote, read_budget: budget, peer_proof: io.client_certificate() };
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(context.clone());
                    let mut router = router.clone();
                    async move {
                        tower_service::Service::call(&mut router, request.map(axum::body::Body::new)).await
                    }
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
            tokio::pin!(connection);
            let stopping = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopping => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            if let Err(error) = result {
                if error.is_timeout() {
                    metrics.connections_timed_out_total.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_address_and_in_total() {
        let tracker = ConnectionTracker::new(3, 2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = tracker.admit(a).unwrap();
        let _second = tracker.admit(a).unwrap();
        assert_eq!(tracker.admit(a).unwrap_err(), "too many connections from this address");
        let _third = tracker.admit(b).unwrap();
        assert_eq!(tracker.admit(b).unwrap_err(), "too many connections");
        drop(first);
        assert!(tracker.admit(a).is_ok());
        assert_eq!(tracker.open(), 2);
    }
}

//! A TCP proxy that can "blackhole": stop forwarding in both directions without closing
//! anything, as a network partition does to a TCP connection (the peer's kernel never answers,
//! the socket stays open, the connection task hears nothing).
//!
//! Connections that saw a blackhole stay stuck for good, even after [`Proxy::heal`]: the worst
//! case of TCP retransmission backoff, which only a new connection gets out of. New connections
//! made while blackholed are accepted and never forwarded (a dial into a partition hangs).

use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// One proxied address.
pub struct Proxy {
    /// Where to connect instead of the target.
    pub address: String,
    blackhole: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on 127.0.0.1 forwarding to `target`.
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (blackhole, watching) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Dropped with the accept task: every connection task ends with it.
            let mut connections = JoinSet::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let target = target.clone();
                let mut watching = watching.clone();
                connections.spawn(async move {
                    let mut inbound = inbound;
                    let blackholed_now = *watching.borrow_and_update();
                    if blackholed_now {
                        // Hold it open, forward nothing.
                        std::future::pending::<()>().await;
                    }
                    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                    let _ = outbound.set_nodelay(true);
                    let _ = inbound.set_nodelay(true);
                    {
                        let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                        let blackholed = watching.wait_for(|on| *on);
                        tokio::select! {
                            _ = copy => return,
                            _ = blackholed => {}
                        }
                    }
                    // Stuck for good: both sockets open, nothing read or written.
                    let _keep = (inbound, outbound);
                    std::future::pending::<()>().await;
                });
            }
        });
        Proxy { address, blackhole, task }
    }

    /// Stops forwarding; connections open now never forward again.
    pub fn cut(&self) {
        self.blackhole.send_replace(true);
    }

    /// New connections forward again (old ones stay stuck).
    pub fn heal(&self) {
        self.blackhole.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

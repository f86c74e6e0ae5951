//! One client WebSocket carrying many requests at once.
//!
//! The server answers requests on a socket in completion order, matched by `id` (see
//! `server::serve_client_socket`), so any number of callers can share one connection: a task per
//! connection gives each request an id, writes every request queued at that moment with one
//! flush, and routes each answer to its caller. Sharing matters under load: with a socket per
//! caller, every request and every answer is a system call and a wake-up of its own on both
//! sides, and on this project's 2-core machine the kernel's share of that was about half of
//! the CPU of a 256-client benchmark. [`ConnectionPool`] hands out one connection per server
//! address; clients given the same pool share them.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Bytes tungstenite reads at a time. It zero-fills the buffer on every read, so a large one
/// costs more than it saves; a few KiB still take many small answers per read.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Requests waiting for an answer before abandoned ones are looked for (then twice as many as
/// are left): amortised O(1) per request.
const PRUNE_AT_LEAST: usize = 1024;

/// A request on its way to the connection task: the JSON object without its `id`, and where the
/// answer goes.
struct Outgoing {
    body: String,
    reply: oneshot::Sender<Result<Value, String>>,
}

/// A shared client connection to one server. Cheap to clone the `Arc` around it; it closes when
/// the server does, on a protocol error, or when the last handle is dropped.
pub struct Connection {
    address: String,
    requests: mpsc::UnboundedSender<Outgoing>,
}

impl Connection {
    /// Connects to `address` (host:port) and starts the connection's task.
    ///
    /// # Errors
    /// A description if the connection is refused or takes longer than `timeout`.
    pub async fn open(address: &str, timeout: Duration) -> Result<Arc<Connection>, String> {
        let url = format!("ws://{address}/client");
        let ws_config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES);
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true);
        let (socket, _) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| format!("connecting to {address} timed out"))?
            .map_err(|e| format!("cannot connect to {address}: {e}"))?;
        let (requests, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(socket, queue, address.to_string()));
        Ok(Arc::new(Connection { address: address.to_string(), requests }))
    }

    /// The server's host:port.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether the connection's task has stopped (the server closed it, or it broke).
    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }

    /// Sends `body` (a JSON object, without `id`) and waits up to `timeout` for its answer.
    ///
    /// # Errors
    /// A description if the connection is closed, breaks, or the answer does not come in time.
    pub async fn call(&self, body: String, timeout: Duration) -> Result<Value, String> {
        let (reply, answer) = oneshot::channel();
        let address = &self.address;
        self.requests
            .send(Outgoing { body, reply })
            .map_err(|_| format!("{address} closed the connection"))?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(format!("{address} closed the connection")),
            Err(_) => Err(format!("no answer from {address} in time")),
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The connection's task: writes queued requests (one flush per batch) and routes answers by id.
/// When it ends, every caller still waiting gets an error (their reply senders are dropped).
async fn run(socket: Socket, mut queue: mpsc::UnboundedReceiver<Outgoing>, address: String) {
    let (mut sink, mut stream) = socket.split();
    let mut waiting: HashMap<u64, oneshot::Sender<Result<Value, String>>> = HashMap::new();
    let mut next_id: u64 = 1;
    let mut prune_at = PRUNE_AT_LEAST;
    loop {
        tokio::select! {
            request = queue.recv() => {
                let Some(mut request) = request else { break };
                loop {
                    let id = next_id;
                    next_id += 1;
                    if waiting.len() >= prune_at {
                        // Callers that gave up (timed out) are forgotten here rather than when
                        // their answer comes, which it may never do.
                        waiting.retain(|_, reply| !reply.is_closed());
                        prune_at = (2 * waiting.len()).max(PRUNE_AT_LEAST);
                    }
                    waiting.insert(id, request.reply);
                    if sink.feed(WsMessage::text(with_id(&request.body, id))).await.is_err() {
                        return;
                    }
                    match queue.try_recv() {
                        Ok(next) => request = next,
                        Err(_) => break,
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            message = stream.next() => {
                let text = match message {
                    Some(Ok(WsMessage::Text(text))) => text,
                    Some(Ok(WsMessage::Close(_))) | None => break,
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => {
                        tracing::debug!(%address, %error, "client connection failed");
                        break;
                    }
                };
                let answer: Value = match serde_json::from_str(&text) {
                    Ok(answer) => answer,
                    Err(error) => {
                        tracing::warn!(%address, %error, "the server sent invalid JSON; reconnecting");
                        break;
                    }
                };
                let Some(id) = answer.get("id").and_then(Value::as_u64) else {
                    tracing::warn!(%address, %answer, "an answer without an id");
                    continue;
                };
                if let Some(reply) = waiting.remove(&id) {
                    let _ = reply.send(Ok(answer));
                }
            }
        }
    }
}

/// `body` (a JSON object) with `"id":<id>` as its first member.
fn with_id(body: &str, id: u64) -> String {
    let rest = body.strip_prefix('{').unwrap_or("}");
    let separator = if rest.trim_start().starts_with('}') { "" } else { "," };
    format!("{{\"id\":{id}{separator}{rest}")
}

/// Connections by server address, shared by the clients given the same pool.
#[derive(Clone, Default)]
pub struct ConnectionPool {
    open: Arc<Mutex<HashMap<String, Arc<Connection>>>>,
}

impl ConnectionPool {
    /// An empty pool.
    pub fn new() -> ConnectionPool {
        ConnectionPool::default()
    }

    /// The pool's open connection to `address`, or a new one.
    ///
    /// # Errors
    /// As [`Connection::open`].
    pub async fn connection(&self, address: &str, timeout: Duration) -> Result<Arc<Connection>, String> {
        if let Some(open) = self.lookup(address) {
            return Ok(open);
        }
        // Callers racing here may each open one; the last stored wins and the others close
        // when their callers drop them. Rare (first use, reconnects) and harmless.
        let connection = Connection::open(address, timeout).await?;
        self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(address.to_string(), connection.clone());
        Ok(connection)
    }

    fn lookup(&self, address: &str) -> Option<Arc<Connection>> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(address).filter(|c| !c.is_closed()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::with_id;

    #[test]
    fn the_id_goes_first() {
        assert_eq!(with_id(r#"{"op":"get","key":"k"}"#, 7), r#"{"id":7,"op":"get","key":"k"}"#);
        assert_eq!(with_id("{}", 3), r#"{"id":3}"#);
        assert_eq!(with_id("{ }", 3), r#"{"id":3 }"#);
    }
}

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

use futures_util::stream::{SplitSink, SplitStream};
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
    reply: Reply,
}

/// A shared client connection to one server. Cheap to clone the `Arc` around it; it closes when
/// the server does, on a protocol error, or when the last handle is dropped.
pub struct Connection {
    address: String,
    requests: mpsc::UnboundedSender<Outgoing>,
}

/// How a client reaches servers: over TLS (`wss://`, trusting the cluster's CA) or not, and
/// the token it presents (the client token, or the admin secret; see [`crate::credentials`]).
#[derive(Clone, Default)]
pub struct ClientSecurity {
    /// TLS client configuration; `None`: plaintext.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Sent as `Authorization: Bearer` when the socket opens.
    pub token: Option<String>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.tls.is_some())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Connection {
    /// Connects to `address` (host:port) and starts the connection's task.
    ///
    /// # Errors
    /// A description if the connection is refused or takes longer than `timeout`.
    pub async fn open(address: &str, timeout: Duration) -> Result<Arc<Connection>, String> {
        Connection::open_with(address, timeout, &ClientSecurity::default()).await
    }

    /// Connects to `address` with `security`, as [`Connection::open`].
    ///
    /// # Errors
    /// A description if the connection is refused (a TLS failure included) or takes longer than
    /// `timeout`.
    pub async fn open_with(
        address: &str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> Result<Arc<Connection>, String> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let scheme = if security.tls.is_some() { "wss" } else { "ws" };
        let mut request = format!("{scheme}://{address}/client")
            .into_client_request()
            .map_err(|e| format!("bad address {address}: {e}"))?;
        if let Some(token) = &security.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| "the token is not valid in an HTTP header".to_string())?;
            request.headers_mut().insert(tokio_tungstenite::tungstenite::http::header::AUTHORIZATION, value);
        }
        let ws_config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES);
        let connector = security.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(request, Some(ws_config), true, connector);
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
type Reply = oneshot::Sender<Result<Value, String>>;

/// Callers waiting for an answer, by request id.
struct Waiting {
    replies: HashMap<u64, Reply>,
    prune_at: usize,
}

impl Waiting {
    fn insert(&mut self, id: u64, reply: Reply) {
        if self.replies.len() >= self.prune_at {
            // Callers that gave up (timed out) are forgotten here rather than when their answer
            // comes, which it may never do.
            self.replies.retain(|_, reply| !reply.is_closed());
            self.prune_at = (2 * self.replies.len()).max(PRUNE_AT_LEAST);
        }
        self.replies.insert(id, reply);
    }
}

/// The connection's task: writes queued requests and routes answers, side by side, so that
/// a write waiting for the server to read never keeps this side from reading the server's
/// answers (each side waiting for the other would stall both). When either side ends, so does
/// the connection, and every caller still waiting gets an error (its reply is dropped).
async fn run(socket: Socket, queue: mpsc::UnboundedReceiver<Outgoing>, address: String) {
    let (sink, stream) = socket.split();
    let waiting = Mutex::new(Waiting { replies: HashMap::new(), prune_at: PRUNE_AT_LEAST });
    tokio::select! {
        () = write_requests(sink, queue, &waiting) => {}
        () = read_answers(stream, &waiting, &address) => {}
    }
}

fn lock(waiting: &Mutex<Waiting>) -> std::sync::MutexGuard<'_, Waiting> {
    waiting.lock().unwrap_or_else(|e| e.into_inner())
}

/// Gives each request an id and writes every request queued at that moment with one flush.
async fn write_requests(
    mut sink: SplitSink<Socket, WsMessage>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    waiting: &Mutex<Waiting>,
) {
    let mut next_id: u64 = 1;
    while let Some(mut request) = queue.recv().await {
        loop {
            let id = next_id;
            next_id += 1;
            lock(waiting).insert(id, request.reply);
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
}

/// Hands each answer to the caller waiting for its id.
async fn read_answers(mut stream: SplitStream<Socket>, waiting: &Mutex<Waiting>, address: &str) {
    while let Some(message) = stream.next().await {
        let text = match message {
            Ok(WsMessage::Text(text)) => text,
            Ok(WsMessage::Close(_)) => return,
            Ok(_) => continue,
            Err(error) => {
                tracing::debug!(%address, %error, "client connection failed");
                return;
            }
        };
        let answer: Value = match serde_json::from_str(&text) {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%address, %error, "the server sent invalid JSON; reconnecting");
                return;
            }
        };
        let Some(id) = answer.get("id").and_then(Value::as_u64) else {
            tracing::warn!(%address, %answer, "an answer without an id");
            continue;
        };
        let reply = lock(waiting).replies.remove(&id);
        if let Some(reply) = reply {
            let _ = reply.send(Ok(answer));
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
    security: ClientSecurity,
}

impl ConnectionPool {
    /// An empty pool of plaintext connections without a token.
    pub fn new() -> ConnectionPool {
        ConnectionPool::default()
    }

    /// An empty pool whose connections use `security`.
    pub fn with_security(security: ClientSecurity) -> ConnectionPool {
        ConnectionPool { open: Arc::default(), security }
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
        let connection = Connection::open_with(address, timeout, &self.security).await?;
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

//! A client of the JSON API over WebSocket: the CLI's `kv`, `admin` and `bench` use it, and so
//! do the tests.
//!
//! It retries across `endpoints`, follows `not_leader` answers to the leader, and, with a session
//! (thesis §6.3), resends a write with the same sequence number after a timeout or a lost
//! connection, so the cluster applies it once even when the first attempt did land.

use crate::connection::{ClientSecurity, Connection, ConnectionPool};
use serde_json::{json, Value};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where and how a client talks to a cluster.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// host:port of the nodes, tried in turn.
    pub endpoints: Vec<String>,
    /// The admin secret, sent with admin ops.
    pub secret: Option<String>,
    /// The client token, presented when a connection opens (the admin secret is presented
    /// instead when there is none).
    pub token: Option<String>,
    /// Speak TLS (`wss://`, `https`) trusting this configuration's CA; `None`: plaintext.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// How long a call may take across all retries.
    pub call_timeout: Duration,
    /// Open a session on the first write and use it for exactly-once retries.
    pub use_session: bool,
}

impl ClientConfig {
    /// What connections of this client present and how they are secured.
    pub fn security(&self) -> ClientSecurity {
        ClientSecurity { tls: self.tls.clone(), token: self.token.clone().or_else(|| self.secret.clone()) }
    }

    /// Defaults: 5 s per attempt, 30 s per call, sessions on.
    pub fn new(endpoints: Vec<String>) -> ClientConfig {
        ClientConfig {
            endpoints,
            secret: None,
            token: None,
            tls: None,
            attempt_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            use_session: true,
        }
    }
}

/// Why a call failed.
#[derive(Clone, Debug)]
pub enum ClientError {
    /// No node answered usefully before the call's deadline; a write may or may not be applied.
    Unavailable(String),
    /// A node answered with a final refusal (`ok: false`, not retryable).
    Refused {
        /// The stable error code.
        code: String,
        /// The full response.
        response: Value,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unavailable(why) => write!(f, "cluster unavailable: {why}"),
            ClientError::Refused { code, response } => {
                let message = response.get("message").and_then(Value::as_str).unwrap_or("");
                write!(f, "{code}: {message}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// Times one write registers a new session after the cluster forgot the old one.
const SESSION_RENEWALS_MAX: u32 = 3;

struct Session {
    client_id: u64,
    next_sequence: u64,
}

/// A connection-keeping, retrying client.
pub struct Client {
    config: ClientConfig,
    pool: ConnectionPool,
    connection: Option<Arc<Connection>>,
    preferred: Option<String>,
    cursor: usize,
    session: Option<Session>,
    /// Whether an attempt of the last call may have been applied without this client hearing
    /// of it (a lost connection, a timeout): then its write must not be sent again in another
    /// session.
    last_call_uncertain: bool,
    /// Attempts that were retried (for the bench's error accounting).
    pub retries: u64,
}

impl Client {
    /// A client with connections of its own; it connects on first use.
    pub fn new(config: ClientConfig) -> Client {
        let pool = ConnectionPool::with_security(config.security());
        Client::with_pool(config, pool)
    }

    /// A client that shares `pool`'s connections with the other clients given it: its requests
    /// travel beside theirs on one WebSocket per server (see [`crate::connection`]).
    pub fn with_pool(config: ClientConfig, pool: ConnectionPool) -> Client {
        Client {
            config,
            pool,
            connection: None,
            preferred: None,
            cursor: 0,
            session: None,
            last_call_uncertain: false,
            retries: 0,
        }
    }

    fn pick_address(&mut self) -> Option<String> {
        if let Some(address) = &self.preferred {
            return Some(address.clone());
        }
        if self.config.endpoints.is_empty() {
            return None;
        }
        let address = self.config.endpoints[self.cursor % self.config.endpoints.len()].clone();
        Some(address)
    }

    fn rotate(&mut self) {
        self.preferred = None;
        self.cursor = self.cursor.wrapping_add(1);
        self.connection = None;
    }

    /// One attempt. `body` is the request serialized once per call, without its `id`: the
    /// connection gives each attempt a fresh one, so a late answer to an earlier attempt never
    /// passes for this one's.
    async fn attempt(&mut self, address: &str, body: &str) -> Result<Value, String> {
        let connection = match &self.connection {
            Some(open) if open.address() == address && !open.is_closed() => open.clone(),
            _ => {
                let connection = self.pool.connection(address, self.config.attempt_timeout).await?;
                self.connection = Some(connection.clone());
                connection
            }
        };
        connection.call(body.to_string(), self.config.attempt_timeout).await
    }

    /// Sends one request (a JSON object with `op`), retrying as the module docs say.
    ///
    /// # Errors
    /// [`ClientError::Refused`] for a final `ok: false`, [`ClientError::Unavailable`] after the
    /// call timeout.
    pub async fn call(&mut self, request: Value) -> Result<Value, ClientError> {
        if !request.is_object() {
            return Err(ClientError::Unavailable("a request must be a JSON object".into()));
        }
        self.call_body(&request.to_string()).await
    }

    /// [`Client::call`] for a request already serialized as a JSON object.
    async fn call_body(&mut self, body: &str) -> Result<Value, ClientError> {
        let deadline = Instant::now() + self.config.call_timeout;
        let mut backoff = Duration::from_millis(10);
        let mut last_error = String::from("no endpoints");
        let mut first = true;
        self.last_call_uncertain = false;
        loop {
            if !first {
                self.retries += 1;
                if Instant::now() >= deadline {
                    return Err(ClientError::Unavailable(last_error));
                }
            }
            first = false;
            let Some(address) = self.pick_address() else {
                return Err(ClientError::Unavailable("no endpoints given".into()));
            };
            let response = match self.attempt(&address, body).await {
                Ok(response) => response,
                Err(error) => {
                    last_error = error;
                    self.last_call_uncertain = true;
                    self.rotate();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                    continue;
                }
            };
            if response.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(response);
            }
            let code = response.get("error").and_then(Value::as_str).unwrap_or("unknown").to_string();
            let retryable = response.get("retryable").and_then(Value::as_bool).unwrap_or(false);
            last_error = format!(
                "{code} from {address}: {}",
                response.get("message").and_then(Value::as_str).unwrap_or("")
            );
            if matches!(code.as_str(), "timeout" | "leadership_lost" | "storage" | "internal" | "unknown") {
                // The outcome of this attempt is not known: it may yet be applied.
                self.last_call_uncertain = true;
            }
            if code == "not_leader" {
                match response.get("leader_address").and_then(Value::as_str) {
                    Some(leader) if leader != address => {
                        self.preferred = Some(leader.to_string());
                        continue;
                    }
                    _ => self.rotate(),
                }
            } else if !retryable {
                return Err(ClientError::Refused { code, response });
            } else if code == "shutting_down" || code == "leadership_lost" {
                // That node no longer leads (and may not know who does): try another. A write
                // whose outcome is unknown is resent with the same session sequence, so it is
                // applied at most once.
                self.rotate();
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    async fn session(&mut self) -> Result<Option<(u64, u64)>, ClientError> {
        if !self.config.use_session {
            return Ok(None);
        }
        if self.session.is_none() {
            let response = self.call(json!({ "op": "register" })).await?;
            let client_id = response
                .get("client_id")
                .and_then(Value::as_u64)
                .ok_or_else(|| ClientError::Unavailable("register answered without a client_id".into()))?;
            self.session = Some(Session { client_id, next_sequence: 1 });
        }
        Ok(self.session.as_ref().map(|s| (s.client_id, s.next_sequence)))
    }

    /// Sends a write with the session attached; retries inside the call reuse its sequence
    /// number, the next write gets the next one.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn write(&mut self, mut request: Value) -> Result<Value, ClientError> {
        let mut renewals = 0;
        loop {
            if let Some((client_id, sequence)) = self.session().await? {
                if let Some(object) = request.as_object_mut() {
                    object.insert("session".into(), json!({ "client_id": client_id, "sequence": sequence }));
                }
            }
            let result = self.call(request.clone()).await;
            self.sequence_used();
            renewals += 1;
            if renewals > SESSION_RENEWALS_MAX || !self.session_lost(&result) {
                return result;
            }
        }
    }

    /// Whether `result` says the cluster forgot this client's session (expired, or evicted by
    /// newer ones) *and* no attempt of the write can have been applied: then the session is
    /// dropped and the write may be sent again in a new one. If an earlier attempt's outcome is
    /// unknown, the error is returned instead: resending could apply the write twice.
    fn session_lost(&mut self, result: &Result<Value, ClientError>) -> bool {
        let Err(ClientError::Refused { code, .. }) = result else { return false };
        if !matches!(code.as_str(), "session_expired" | "unknown_session") || self.session.is_none() {
            return false;
        }
        if self.last_call_uncertain {
            return false;
        }
        tracing::debug!(%code, "the cluster forgot this client's session; registering again");
        self.session = None;
        true
    }

    /// Whatever a write's outcome, its sequence number now belongs to it: reusing the number for
    /// another write would get that one answered from the session cache without being applied.
    fn sequence_used(&mut self) {
        if let Some(session) = self.session.as_mut() {
            session.next_sequence += 1;
        }
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn put(&mut self, key: &str, value: &str) -> Result<Value, ClientError> {
        // Serialized straight from borrowed strings: the benchmark's hot path, where building
        // and dropping a `Value` map per put was a tenth of the client's CPU.
        #[derive(serde::Serialize)]
        struct SessionField {
            client_id: u64,
            sequence: u64,
        }
        #[derive(serde::Serialize)]
        struct Put<'a> {
            op: &'static str,
            key: &'a str,
            value: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            session: Option<SessionField>,
        }
        let mut renewals = 0;
        loop {
            let session =
                self.session().await?.map(|(client_id, sequence)| SessionField { client_id, sequence });
            let body = serde_json::to_string(&Put { op: "put", key, value, session })
                .map_err(|e| ClientError::Unavailable(format!("cannot encode a put: {e}")))?;
            let result = self.call_body(&body).await;
            self.sequence_used();
            renewals += 1;
            if renewals > SESSION_RENEWALS_MAX || !self.session_lost(&result) {
                return result;
            }
        }
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn del(&mut self, key: &str) -> Result<Value, ClientError> {
        self.write(json!({ "op": "del", "key": key })).await
    }

    /// Sets `key` to `value` if it holds `expected` (`None`: absent).
    ///
    /// # Errors
    /// As [`Client::call`]; a mismatch is `Refused` with code `cas_failed`.
    pub async fn cas(
        &mut self,
        key: &str,
        expected: Option<&str>,
        value: &str,
    ) -> Result<Value, ClientError> {
        self.write(json!({ "op": "cas", "key": key, "expected": expected, "value": value })).await
    }

    /// Reads `key` with the given read mode (`linearizable`, `lease`, `stale`).
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn get(&mut self, key: &str, read: &str) -> Result<Value, ClientError> {
        self.call(json!({ "op": "get", "key": key, "read": read })).await
    }

    /// Sends an admin op with the secret.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn admin(&mut self, mut request: Value) -> Result<Value, ClientError> {
        if let (Some(secret), Some(object)) = (&self.config.secret, request.as_object_mut()) {
            object.insert("secret".into(), json!(secret));
        }
        self.call(request).await
    }
}

/// One HTTP/1.1 answer: status, headers (lowercase names) and body.
#[derive(Clone, Debug)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// Headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole answer. Small on
/// purpose: the admin backup/restore commands need raw bytes, which the JSON API does not carry.
///
/// # Errors
/// A message when the node cannot be reached or answers something that is not HTTP.
pub async fn http_request(
    address: &str,
    method: &str,
    path: &str,
    secret: Option<&str>,
    body: &[u8],
) -> Result<HttpAnswer, String> {
    http_request_tls(address, method, path, secret, body, None).await
}

/// A request body: bytes in memory, or a file sent from disk as it is read (from its start
/// again for every endpoint tried), so that a large backup is never held in memory.
#[derive(Clone, Copy, Debug)]
pub enum RequestBody<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// The whole content of this file.
    File(&'a std::path::Path),
}

/// The time one exchange may take: 30 s, and one more second per MiB of body (a restore moves
/// through the log at well over 1 MiB/s).
fn exchange_timeout(body_bytes: u64) -> Duration {
    Duration::from_secs(30 + body_bytes / (1 << 20))
}

/// The largest answer read into memory: every route answers a few KiB of JSON or text, so a
/// broken or malicious server cannot make the CLI buffer gigabytes (for the length of
/// [`exchange_timeout`]) before it gives up. A backup, the store itself, is streamed to its file
/// instead ([`crate::backup_download`]).
pub const HTTP_ANSWER_BYTES_MAX: u64 = 8 << 20;

/// [`http_request`], over TLS when `tls` is given.
///
/// # Errors
/// As [`http_request`], and when the TLS handshake fails.
pub async fn http_request_tls(
    address: &str,
    method: &str,
    path: &str,
    secret: Option<&str>,
    body: &[u8],
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<HttpAnswer, String> {
    http_request_body_tls(address, method, path, secret, RequestBody::Bytes(body), tls).await
}

/// Connects to `address` (over TLS when `tls` is given) and sends the head of an HTTP/1.1
/// request with `Connection: close`; the caller sends `body_bytes` of body after it.
pub(crate) async fn send_request_head(
    address: &str,
    method: &str,
    path: &str,
    secret: Option<&str>,
    body_bytes: u64,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Box<dyn crate::tls::ByteStream>, String> {
    use tokio::io::AsyncWriteExt;
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let mut stream: Box<dyn crate::tls::ByteStream> = match tls {
        None => Box::new(tcp),
        Some(tls) => Box::new(crate::tls::connect(tls, address, tcp).await?),
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {body_bytes}\r\n"
    );
    if let Some(secret) = secret {
        head.push_str(&format!("Authorization: Bearer {secret}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.map_err(|e| format!("send to {address}: {e}"))?;
    Ok(stream)
}

/// [`http_request_tls`] with a body that may be a file.
///
/// # Errors
/// As [`http_request_tls`], and when the file cannot be read.
pub async fn http_request_body_tls(
    address: &str,
    method: &str,
    path: &str,
    secret: Option<&str>,
    body: RequestBody<'_>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<HttpAnswer, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut file, body_bytes) = match body {
        RequestBody::Bytes(bytes) => (None, bytes.len() as u64),
        RequestBody::File(file) => {
            let cannot = |e: std::io::Error| format!("cannot read {}: {e}", file.display());
            let opened = tokio::fs::File::open(file).await.map_err(cannot)?;
            let len = opened.metadata().await.map_err(cannot)?.len();
            (Some(opened.take(len)), len)
        }
    };
    let exchange = async {
        let mut stream = send_request_head(address, method, path, secret, body_bytes, tls).await?;
        // A server may answer before the whole body is read (a restore over its cap: 413) and
        // close; its answer, not the broken pipe, is what the caller needs.
        let sent = match (&mut file, body) {
            (Some(file), _) => tokio::io::copy(file, &mut stream).await.map(|_| ()),
            (None, RequestBody::Bytes(bytes)) => stream.write_all(bytes).await,
            (None, RequestBody::File(_)) => Ok(()),
        };
        let sent = sent.map_err(|e| format!("send to {address}: {e}"));
        let mut answer = Vec::new();
        let cap = HTTP_ANSWER_BYTES_MAX;
        let received = (&mut stream).take(cap.saturating_add(1)).read_to_end(&mut answer).await;
        if answer.len() as u64 > cap {
            return Err(format!("{address} answered {method} {path} with more than {cap} bytes"));
        }
        if answer.is_empty() {
            sent?;
        }
        if !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            received.map_err(|e| format!("receive from {address}: {e}"))?;
        }
        Ok::<Vec<u8>, String>(answer)
    };
    let answer = tokio::time::timeout(exchange_timeout(body_bytes), exchange)
        .await
        .map_err(|_| format!("{address} did not answer in time"))??;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{address} sent no HTTP header"))?;
    let (status, headers) = parse_answer_head(&answer[..split], address)?;
    let mut body = answer[split + 4..].to_vec();
    if headers.iter().any(|(name, value)| name == "transfer-encoding" && value.contains("chunked")) {
        body = dechunk(&body).ok_or_else(|| format!("{address} sent a malformed chunked body"))?;
    }
    Ok(HttpAnswer { status, headers, body })
}

/// An HTTP answer's status code and headers (names in lowercase) from its head, the bytes
/// before the blank line.
pub(crate) fn parse_answer_head(head: &[u8], address: &str) -> Result<(u16, Vec<(String, String)>), String> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{address} sent no HTTP status"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok((status, headers))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Sends an admin HTTP request to the first endpoint that answers, following `not_leader`
/// answers to the leader.
///
/// # Errors
/// A message when no endpoint answered.
pub async fn http_admin(
    endpoints: &[String],
    secret: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<HttpAnswer, String> {
    http_admin_tls(endpoints, secret, method, path, body, None).await
}

/// [`http_admin`], over TLS when `tls` is given.
///
/// # Errors
/// A message when no endpoint answered.
pub async fn http_admin_tls(
    endpoints: &[String],
    secret: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<HttpAnswer, String> {
    http_admin_body_tls(endpoints, secret, method, path, RequestBody::Bytes(body), tls).await
}

/// [`http_admin_tls`] with a body that may be a file (`admin restore` streams its backup).
///
/// # Errors
/// A message when no endpoint answered.
pub async fn http_admin_body_tls(
    endpoints: &[String],
    secret: Option<&str>,
    method: &str,
    path: &str,
    body: RequestBody<'_>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<HttpAnswer, String> {
    let mut last_error = "no endpoints given".to_string();
    let mut queue: std::collections::VecDeque<String> = endpoints.iter().cloned().collect();
    let mut hops = 0;
    while let Some(address) = queue.pop_front() {
        match http_request_body_tls(&address, method, path, secret, body, tls).await {
            Ok(answer) if answer.status == 307 && hops < 5 => {
                hops += 1;
                let leader = serde_json::from_slice::<Value>(&answer.body)
                    .ok()
                    .and_then(|v| v.get("leader_address").and_then(Value::as_str).map(str::to_string));
                if let Some(leader) = leader {
                    queue.push_front(leader);
                }
            }
            Ok(answer) => return Ok(answer),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

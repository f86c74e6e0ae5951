//! `raft-node admin backup FILE`: `GET /admin/backup` streamed into FILE.
//!
//! A backup is the whole store (up to `--quota-backend-bytes`), so the CLI neither holds it in
//! memory nor gives the transfer a fixed deadline: the body goes to `FILE.partial` as it
//! arrives, each read may wait at most [`DOWNLOAD_IDLE_TIMEOUT`] (a stalled server is given up
//! on, a slow link is not), and only a body of exactly the announced `Content-Length`, synced to
//! disk, is renamed to FILE. A cut-off download therefore never leaves a file that looks like a
//! backup, and never replaces an earlier one.

use crate::client::{parse_answer_head, send_request_head, HTTP_ANSWER_BYTES_MAX};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// How long one read of the answer may wait for bytes. The head comes after the leader's
/// barrier and the store's serialisation, both bounded by the node's request timeout.
pub const DOWNLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer head read (status line and headers).
const HEAD_BYTES_MAX: usize = 64 * 1024;

/// A backup written to its file.
#[derive(Debug)]
pub struct Downloaded {
    /// Bytes written.
    pub bytes: u64,
    /// The log index the backup holds everything up to (`x-flotilla-index`).
    pub index: Option<String>,
}

/// An answer's status line and headers, and the body bytes read with them.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    body_start: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

async fn read_with_idle_timeout<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut [u8],
    address: &str,
) -> Result<usize, String> {
    match tokio::time::timeout(DOWNLOAD_IDLE_TIMEOUT, stream.read(buffer)).await {
        Err(_) => Err(format!("{address} sent nothing for {DOWNLOAD_IDLE_TIMEOUT:?}")),
        Ok(Err(error)) => Err(format!("receive from {address}: {error}")),
        Ok(Ok(read)) => Ok(read),
    }
}

async fn read_head<R: AsyncRead + Unpin>(stream: &mut R, address: &str) -> Result<Head, String> {
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if received.len() > HEAD_BYTES_MAX {
            return Err(format!("{address} sent an answer head over {HEAD_BYTES_MAX} bytes"));
        }
        let read = read_with_idle_timeout(stream, &mut buffer, address).await?;
        if read == 0 {
            return Err(format!("{address} closed the connection before its answer's head ended"));
        }
        received.extend_from_slice(&buffer[..read]);
    };
    let (status, headers) = parse_answer_head(&received[..end], address)?;
    Ok(Head { status, headers, body_start: received[end + 4..].to_vec() })
}

/// The rest of a small answer (an error or a redirect), at most [`HTTP_ANSWER_BYTES_MAX`].
async fn read_small_body<R: AsyncRead + Unpin>(stream: &mut R, mut body: Vec<u8>, address: &str) -> Vec<u8> {
    let mut buffer = vec![0u8; 64 * 1024];
    while (body.len() as u64) < HTTP_ANSWER_BYTES_MAX {
        match read_with_idle_timeout(stream, &mut buffer, address).await {
            Ok(0) | Err(_) => break,
            Ok(read) => body.extend_from_slice(&buffer[..read]),
        }
    }
    body.truncate(HTTP_ANSWER_BYTES_MAX as usize);
    body
}

fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// What one endpoint did with the request.
enum Outcome {
    Done(Downloaded),
    /// Not the leader: try this address.
    Redirect(Option<String>),
    /// An answer that is no backup (a wrong secret, an error): final, as for every admin
    /// request, so a wrong secret is not tried on every node.
    Refused(String),
}

/// Writes the body after `head` to `file` through `FILE.partial`.
async fn write_body<R: AsyncRead + Unpin>(
    stream: &mut R,
    head: Head,
    file: &Path,
    address: &str,
) -> Result<Downloaded, String> {
    if head.header("transfer-encoding").is_some() {
        return Err(format!("{address} sent the backup with a transfer encoding; expected a Content-Length"));
    }
    let length: u64 = head
        .header("content-length")
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| format!("{address} did not say how long the backup is (no Content-Length)"))?;
    let partial = partial_path(file);
    let cannot = |e: std::io::Error| format!("cannot write {}: {e}", partial.display());
    let mut out = tokio::fs::File::create(&partial).await.map_err(cannot)?;
    let mut written = 0u64;
    let index = head.header("x-flotilla-index").map(str::to_string);
    let mut chunk = head.body_start;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        if written + chunk.len() as u64 > length {
            return Err(format!("{address} sent more than the {length} bytes it announced"));
        }
        out.write_all(&chunk).await.map_err(cannot)?;
        written += chunk.len() as u64;
        if written == length {
            break;
        }
        let read = read_with_idle_timeout(stream, &mut buffer, address).await?;
        if read == 0 {
            return Err(format!("{address} cut the backup off after {written} of {length} bytes"));
        }
        chunk = buffer[..read].to_vec();
    }
    out.sync_all().await.map_err(cannot)?;
    drop(out);
    tokio::fs::rename(&partial, file)
        .await
        .map_err(|e| format!("cannot rename {} to {}: {e}", partial.display(), file.display()))?;
    // The rename itself survives a crash once the directory is synced (best effort: some
    // platforms cannot open a directory).
    let directory = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(directory) = tokio::fs::File::open(directory).await {
        let _ = directory.sync_all().await;
    }
    Ok(Downloaded { bytes: written, index })
}

async fn download_from(
    address: &str,
    secret: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
    file: &Path,
) -> Result<Outcome, String> {
    let mut stream = send_request_head(address, "GET", "/admin/backup", secret, 0, tls).await?;
    let head = read_head(&mut stream, address).await?;
    match head.status {
        200 => {
            let written = write_body(&mut stream, head, file, address).await;
            if written.is_err() {
                let _ = tokio::fs::remove_file(partial_path(file)).await;
            }
            written.map(Outcome::Done)
        }
        307 => {
            let body = read_small_body(&mut stream, head.body_start, address).await;
            let leader = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("leader_address").and_then(Value::as_str).map(str::to_string));
            Ok(Outcome::Redirect(leader))
        }
        status => {
            let body = read_small_body(&mut stream, head.body_start, address).await;
            Ok(Outcome::Refused(format!("{address} answered {status}: {}", String::from_utf8_lossy(&body))))
        }
    }
}

/// Downloads a backup from the first of `endpoints` that gives one, following `not_leader`
/// answers to the leader (as [`crate::client::http_admin_body_tls`] does), into `file`.
///
/// # Errors
/// The last endpoint's error: refused, unreachable, stalled, cut off, or the file not written.
pub async fn download_backup(
    endpoints: &[String],
    secret: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
    file: &Path,
) -> Result<Downloaded, String> {
    let mut last_error = "no endpoints given".to_string();
    let mut queue: std::collections::VecDeque<String> = endpoints.iter().cloned().collect();
    let mut hops = 0;
    while let Some(address) = queue.pop_front() {
        match download_from(&address, secret, tls, file).await {
            Ok(Outcome::Done(downloaded)) => return Ok(downloaded),
            Ok(Outcome::Redirect(leader)) => {
                last_error = format!("{address} is not the leader");
                if let Some(leader) = leader.filter(|_| hops < 5) {
                    hops += 1;
                    queue.push_front(leader);
                }
            }
            Ok(Outcome::Refused(error)) => return Err(error),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

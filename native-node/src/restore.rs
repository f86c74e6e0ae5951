//! Streamed restores: `POST /admin/restore` of a user snapshot of any size the node may hold
//! (issue 11 finding 10), in bounded memory.
//!
//! # Design
//! The body is read in pieces of at most [`RESTORE_CHUNK_BYTES_MAX`] and each piece is proposed
//! as a `RestoreChunk` log entry; the next piece is read only once this one is applied, so the
//! handler holds one piece at a time and the socket's own flow control holds back the rest.
//! Every replica stages the pieces beside its store (decoding them as they come) and swaps the
//! whole snapshot in when the piece marked `last` is applied
//! (`raft_core::kv::KvStore`'s `restore_chunk`).
//!
//! Why not stage the body on the leader's disk and install it as the leader's own snapshot, to
//! reach followers by InstallSnapshot (Raft §7, thesis §5.3)? A snapshot stands for the state
//! the log up to its index produces; a state that no entry produced would make replicas that
//! apply the log (a follower in the middle of it, a browser learner) disagree with replicas that
//! install the snapshot at the same index, and the swap would not be an entry that is committed
//! before it is applied. Through the log, "apply only what is committed" holds as for any
//! command: a piece takes effect only once committed, the swap happens at one index on every
//! replica, and until then every read sees the old store whole (never half a restore).
//!
//! The staged pieces are part of the store's state, so a snapshot taken mid-restore carries
//! them (raft-core's `kv::staging`) and compaction goes on as usual. A restore its proposer
//! abandons is aborted by an entry (below, and on drop) or, if the leader dies, dropped by
//! every replica once the log clock has moved `RESTORE_IDLE_MS` past its last piece, or
//! `RESTORE_STAGED_MS_MAX` past its first, or after `RESTORE_PIECES_MAX` pieces, or superseded
//! by the next restore. Every replica keeps this node's internal records (peer addresses) and
//! drops the backup's: raft-core's store does that for every driver.
//!
//! Before a byte of the body is read: the admin credential, then a declared length over
//! `--restore-bytes-max` (413). While reading: the same cap on the bytes actually sent (for
//! chunked bodies), an idle timeout per read, and a deadline for the body that grows with the
//! bytes received ([`body_deadline`]), so a client dripping a byte at a time cannot hold the
//! handler, its socket and its piece buffer for ever.

use crate::kv::decode_response;
use crate::server::{http_response, kv_answer, raft_error, AppState};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use raft_core::kv::{CommandBody, Output, RESTORE_CHUNK_BYTES_MAX};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The default of `--restore-bytes-max`: the largest snapshot `POST /admin/restore` accepts.
pub const RESTORE_BYTES_MAX_DEFAULT: u64 = 1 << 30;

/// A restore whose body sends nothing for this long is aborted.
pub const RESTORE_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The time a restore body may take before it must average [`RESTORE_BODY_BYTES_PER_SEC_MIN`].
pub const RESTORE_BODY_GRACE: Duration = Duration::from_secs(20);

/// The slowest average rate a restore body may arrive at, after [`RESTORE_BODY_GRACE`]; the
/// time spent waiting for pieces to commit counts too. Four times slower than the CLI's own
/// deadline assumes (1 MiB/s), so an honest restore meets the CLI's deadline first.
pub const RESTORE_BODY_BYTES_PER_SEC_MIN: u64 = 256 * 1024;

/// When a restore body that started at `started` and has sent `received` bytes is too slow.
fn body_deadline(started: tokio::time::Instant, received: u64) -> tokio::time::Instant {
    started + RESTORE_BODY_GRACE + Duration::from_secs(received / RESTORE_BODY_BYTES_PER_SEC_MIN)
}

/// One log entry's worth of a streamed restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestorePiece {
    /// The next bytes of the snapshot.
    Chunk {
        /// The same for every piece of one restore.
        restore_id: u64,
        /// 0, 1, 2, …
        sequence: u64,
        /// At most [`RESTORE_CHUNK_BYTES_MAX`] bytes.
        data: Bytes,
        /// The final piece: applying it swaps the snapshot in.
        last: bool,
    },
    /// Drop the staged restore.
    Abort {
        /// The restore to drop.
        restore_id: u64,
    },
}

impl RestorePiece {
    pub(crate) fn into_body(self) -> CommandBody {
        match self {
            RestorePiece::Chunk { restore_id, sequence, data, last } => {
                CommandBody::RestoreChunk { restore_id, sequence, data, last }
            }
            RestorePiece::Abort { restore_id } => CommandBody::RestoreAbort { restore_id },
        }
    }
}

/// Proposes an abort of the restore if the handler stops before its last piece, whatever the
/// reason (an error, the client going away and the request future being dropped).
struct AbortUnlessFinished {
    raft: crate::raft::Raft,
    restore_id: u64,
    timeout: Duration,
    finished: bool,
}

impl Drop for AbortUnlessFinished {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (raft, restore_id, timeout) = (self.raft.clone(), self.restore_id, self.timeout);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = raft.restore_piece(RestorePiece::Abort { restore_id }, timeout).await;
            });
        }
    }
}

fn refusal(status: StatusCode, code: &str, message: String) -> Response {
    http_response(status, crate::api::error_response(code, message, false))
}

/// The 413 for a restore over `bytes_max`.
pub(crate) fn too_large(bytes_max: u64) -> Response {
    let message = format!("a restore carries at most {bytes_max} bytes (--restore-bytes-max)");
    refusal(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
}

/// Streams `body` into the log piece by piece (see the module's documentation). The caller has
/// checked the admin credential and the declared length.
pub(crate) async fn stream(state: &AppState, body: axum::body::Body, bytes_max: u64) -> Response {
    let mut id = [0u8; 8];
    if getrandom::getrandom(&mut id).is_err() {
        return refusal(StatusCode::SERVICE_UNAVAILABLE, "internal", "no randomness for a restore id".into());
    }
    let restore_id = u64::from_le_bytes(id);
    let mut guard = AbortUnlessFinished {
        raft: state.raft.clone(),
        restore_id,
        timeout: state.request_timeout,
        finished: false,
    };
    let mut stream = body.into_data_stream();
    let mut piece = BytesMut::new();
    let (mut sequence, mut total) = (0u64, 0u64);
    let started = tokio::time::Instant::now();
    loop {
        let slow = body_deadline(started, total);
        let deadline = slow.min(tokio::time::Instant::now() + RESTORE_IDLE_TIMEOUT);
        let mut data = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) if deadline == slow => {
                let message = format!(
                    "the restore body came slower than {RESTORE_BODY_BYTES_PER_SEC_MIN} bytes/s on average \
                     ({total} bytes in {:?})",
                    started.elapsed()
                );
                state.metrics.connections_timed_out_total.fetch_add(1, Ordering::Relaxed);
                return refusal(StatusCode::REQUEST_TIMEOUT, "timeout", message);
            }
            Err(_) => {
                let message = format!("the restore body sent nothing for {RESTORE_IDLE_TIMEOUT:?}");
                state.metrics.connections_timed_out_total.fetch_add(1, Ordering::Relaxed);
                return refusal(StatusCode::REQUEST_TIMEOUT, "timeout", message);
            }
            Ok(Some(Err(error))) => {
                return refusal(StatusCode::BAD_REQUEST, "bad_request", format!("reading the body: {error}"))
            }
            Ok(None) => break,
            Ok(Some(Ok(data))) => data,
        };
        total += data.len() as u64;
        if total > bytes_max {
            return too_large(bytes_max);
        }
        while !data.is_empty() {
            let take = (RESTORE_CHUNK_BYTES_MAX - piece.len()).min(data.len());
            piece.extend_from_slice(&data.split_to(take));
            if piece.len() == RESTORE_CHUNK_BYTES_MAX {
                let chunk =
                    RestorePiece::Chunk { restore_id, sequence, data: piece.split().freeze(), last: false };
                if let Err(answer) = propose(state, chunk).await {
                    return answer;
                }
                sequence += 1;
            }
        }
    }
    let last = RestorePiece::Chunk { restore_id, sequence, data: piece.freeze(), last: true };
    let answer = propose(state, last).await;
    // Applied (swapped in or refused, which drops the staging): nothing left to abort.
    guard.finished = answer.is_ok();
    match answer {
        Ok(answer) | Err(answer) => answer,
    }
}

/// Proposes one piece and waits for it to apply: `Ok` with the final answer when the state
/// machine staged or restored it, `Err` with the answer to give up with otherwise.
async fn propose(state: &AppState, piece: RestorePiece) -> Result<Response, Response> {
    let applied = match state.raft.restore_piece(piece, state.request_timeout).await {
        Ok(applied) => applied,
        Err(error) => {
            let (status, body) = raft_error(state, &error);
            return Err(http_response(status, body));
        }
    };
    let response = decode_response(&applied.response);
    let good = matches!(response, Ok(Ok(Output::RestoreStaged { .. } | Output::Restored)));
    let (status, body) = kv_answer(response, Some(applied.index.0));
    let answer = http_response(status, body);
    if good {
        Ok(answer)
    } else {
        Err(answer)
    }
}

//! Client sessions (thesis §6.3): at-most-once application of retried requests.
//!
//! Each session remembers the last sequence number it applied and that request's response. A
//! retry (same sequence) gets the cached response without applying again; an older sequence is
//! refused as stale. Sessions expire by the store's log clock, and the table is bounded: when
//! full, registering evicts the least recently used session. Both are decided inside `apply`,
//! from replicated data only, so every replica expires and evicts the same sessions.

use crate::kv::command::ClientId;
use crate::kv::response::{KvError, Response};
use alloc::collections::{BTreeMap, BTreeSet};

/// One live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    /// The store clock when the session was last used, in milliseconds.
    pub(crate) last_active_ms: u64,
    /// The last sequence number applied and its response; `None` before the first request.
    pub(crate) last: Option<(u64, Response)>,
}

/// What the table says about a request, before the operation runs.
#[derive(Debug)]
pub(crate) enum Admission<'a> {
    /// A new sequence number: apply the operation, then [`Sessions::record`] its response.
    Apply,
    /// A retry of the last request: answer with its cached response, apply nothing.
    Cached(&'a Response),
    /// Refused; nothing is applied or cached.
    Refused(KvError),
}

/// The session table: live sessions, their recency order, and recently expired ids.
///
/// Invariant: `by_activity` holds exactly `(session.last_active_ms, id)` for every live session.
/// Invariant: `live` and `expired` are disjoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sessions {
    live: BTreeMap<ClientId, Session>,
    /// Live sessions ordered least recently used first; ties broken by id, so deterministic.
    by_activity: BTreeSet<(u64, ClientId)>,
    /// Ids of sessions that expired or were evicted, so a late request hears "expired" rather
    /// than "unknown". Bounded: the oldest ids are forgotten first.
    expired: BTreeSet<ClientId>,
}

impl Sessions {
    /// Live sessions in id order.
    pub(crate) fn live(&self) -> impl DoubleEndedIterator<Item = (&ClientId, &Session)> + ExactSizeIterator {
        self.live.iter()
    }

    /// Remembered expired ids in order.
    pub(crate) fn expired(&self) -> impl DoubleEndedIterator<Item = &ClientId> + ExactSizeIterator {
        self.expired.iter()
    }

    /// The live sessions and the remembered expired ids, for writing a snapshot.
    pub(crate) fn into_parts(self) -> (BTreeMap<ClientId, Session>, BTreeSet<ClientId>) {
        (self.live, self.expired)
    }

    /// Whether `client_id` names a live session.
    pub(crate) fn is_live(&self, client_id: ClientId) -> bool {
        self.live.contains_key(&client_id)
    }

    /// Whether `client_id` is remembered as expired.
    #[cfg(test)]
    pub(crate) fn is_expired(&self, client_id: ClientId) -> bool {
        self.expired.contains(&client_id)
    }

    /// Adds a live session as read from a snapshot (no limits applied; the caller checks).
    pub(crate) fn insert_live(&mut self, client_id: ClientId, session: Session) {
        self.by_activity.insert((session.last_active_ms, client_id));
        self.live.insert(client_id, session);
    }

    /// Adds an expired id as read from a snapshot.
    pub(crate) fn insert_expired(&mut self, client_id: ClientId) {
        self.expired.insert(client_id);
    }

    /// Expires every session idle longer than `timeout_ms` at `clock_ms`.
    pub(crate) fn expire_idle(&mut self, clock_ms: u64, timeout_ms: u64, expired_remembered_max: usize) {
        while let Some(&(last_active_ms, client_id)) = self.by_activity.first() {
            // Invariant: last_active_ms <= clock_ms, because activity is stamped with the clock.
            debug_assert!(last_active_ms <= clock_ms);
            if clock_ms - last_active_ms <= timeout_ms {
                break;
            }
            self.end(client_id, Ending::Expired, expired_remembered_max);
        }
    }

    /// Opens a session at `clock_ms`, evicting the least recently used one if the table holds
    /// `sessions_max` already.
    pub(crate) fn register(
        &mut self,
        client_id: ClientId,
        clock_ms: u64,
        sessions_max: usize,
        expired_remembered_max: usize,
    ) {
        debug_assert!(sessions_max > 0);
        while self.live.len() >= sessions_max {
            let Some(&(_, oldest)) = self.by_activity.first() else { break };
            self.end(oldest, Ending::Expired, expired_remembered_max);
        }
        let session = Session { last_active_ms: clock_ms, last: None };
        self.insert_live(client_id, session);
        // A client id is a log index, so it is never reused; it cannot be in `expired` already.
        debug_assert!(!self.expired.contains(&client_id));
    }

    /// Closes a session at the client's request.
    ///
    /// # Errors
    ///
    /// [`KvError::SessionExpired`] or [`KvError::UnknownSession`] if it is not live.
    pub(crate) fn close(&mut self, client_id: ClientId) -> Result<(), KvError> {
        if !self.live.contains_key(&client_id) {
            return Err(not_live(&self.expired, client_id));
        }
        self.end(client_id, Ending::Closed, 0);
        Ok(())
    }

    /// Decides what to do with request `sequence` of `client_id` at `clock_ms`, and marks the
    /// session as used.
    pub(crate) fn admit(&mut self, client_id: ClientId, sequence: u64, clock_ms: u64) -> Admission<'_> {
        let Some(session) = self.live.get_mut(&client_id) else {
            return Admission::Refused(not_live(&self.expired, client_id));
        };
        // Any request, even a retry or a stale one, shows the client is alive.
        self.by_activity.remove(&(session.last_active_ms, client_id));
        session.last_active_ms = clock_ms;
        self.by_activity.insert((clock_ms, client_id));
        match &session.last {
            None => Admission::Apply,
            Some((last_sequence, _)) if sequence > *last_sequence => Admission::Apply,
            Some((last_sequence, response)) if sequence == *last_sequence => Admission::Cached(response),
            Some((last_sequence, _)) => Admission::Refused(KvError::StaleSequence {
                client_id,
                sequence,
                last_sequence: *last_sequence,
            }),
        }
    }

    /// Caches `response` as the answer to `sequence` of a session admitted with
    /// [`Admission::Apply`].
    pub(crate) fn record(&mut self, client_id: ClientId, sequence: u64, response: Response) {
        if let Some(session) = self.live.get_mut(&client_id) {
            session.last = Some((sequence, response));
        } else {
            debug_assert!(false, "recording a response for a session that is not live");
        }
    }

    fn end(&mut self, client_id: ClientId, ending: Ending, expired_remembered_max: usize) {
        let Some(session) = self.live.remove(&client_id) else { return };
        let removed = self.by_activity.remove(&(session.last_active_ms, client_id));
        debug_assert!(removed);
        if ending == Ending::Closed || expired_remembered_max == 0 {
            return;
        }
        self.expired.insert(client_id);
        // Forget the oldest registrations first: their clients are the least likely to return.
        while self.expired.len() > expired_remembered_max {
            self.expired.pop_first();
        }
    }
}

/// The error for a request naming a session that is not live.
fn not_live(expired: &BTreeSet<ClientId>, client_id: ClientId) -> KvError {
    if expired.contains(&client_id) {
        KvError::SessionExpired { client_id }
    } else {
        KvError::UnknownSession { client_id }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Idle too long, or evicted to make room: remembered as expired.
    Expired,
    /// Closed by its client: forgotten.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::response::Output;

    #[test]
    fn retry_is_cached_and_older_is_stale() {
        let mut sessions = Sessions::default();
        sessions.register(ClientId(1), 0, 4, 4);
        assert!(matches!(sessions.admit(ClientId(1), 5, 1), Admission::Apply));
        sessions.record(ClientId(1), 5, Ok(Output::Written));
        assert!(matches!(sessions.admit(ClientId(1), 5, 2), Admission::Cached(Ok(Output::Written))));
        assert!(matches!(
            sessions.admit(ClientId(1), 4, 3),
            Admission::Refused(KvError::StaleSequence { sequence: 4, last_sequence: 5, .. })
        ));
        assert!(matches!(sessions.admit(ClientId(1), 6, 4), Admission::Apply));
    }

    #[test]
    fn eviction_takes_the_least_recently_used() {
        let mut sessions = Sessions::default();
        sessions.register(ClientId(1), 0, 2, 8);
        sessions.register(ClientId(2), 1, 2, 8);
        // Client 1 is used after client 2 registered, so client 2 is now the least recent.
        let _ = sessions.admit(ClientId(1), 1, 2);
        sessions.register(ClientId(3), 3, 2, 8);
        assert!(sessions.is_live(ClientId(1)));
        assert!(sessions.is_expired(ClientId(2)));
        assert!(sessions.is_live(ClientId(3)));
    }

    #[test]
    fn expired_memory_is_bounded() {
        let mut sessions = Sessions::default();
        for id in 1..=5 {
            sessions.register(ClientId(id), 0, 8, 2);
        }
        sessions.expire_idle(100, 10, 2);
        assert_eq!(sessions.live().len(), 0);
        assert_eq!(sessions.expired().copied().collect::<alloc::vec::Vec<_>>(), [ClientId(4), ClientId(5)]);
        assert!(matches!(
            sessions.admit(ClientId(1), 1, 100),
            Admission::Refused(KvError::UnknownSession { .. })
        ));
        assert!(matches!(
            sessions.admit(ClientId(5), 1, 100),
            Admission::Refused(KvError::SessionExpired { .. })
        ));
    }
}

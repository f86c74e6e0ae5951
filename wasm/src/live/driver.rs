//! The tab's Raft driver: a [`RaftNode`] with raft-core's [`MemoryStorage`] and a [`KvStore`],
//! driven exactly as raft-core/GUIDE.md's driver contract says (and as `native-node` drives
//! its own): for every `Ready`, send `messages`; stage snapshot chunks, install a completed
//! snapshot and persist hard state and entries; send `messages_after_persist`; serve wanted
//! snapshot chunks; apply `committed_entries` in order; answer `read_states` once applied; call
//! `advance`.
//!
//! "Persisted" means held in [`MemoryStorage`] and, when the tab has durable storage, written
//! and flushed through [`TabLog`]'s file operations, which the Worker carries out before it
//! sends any frame the same call produced (vote answers and append acknowledgements included).
//! A tab without durable storage is a learner (thesis §4.2.1) that forgets everything when
//! closed and joins again with a fresh id; it never comes back under the same id with a
//! shorter log. A tab with durable storage restarts from it under its stored id.
//!
//! The driver checks its own apply sequence: every applied entry must be the one after the
//! last applied (or restored) index. A violation is counted and the entry is not applied, so a
//! test can assert the counter stays at zero.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use raft_core::kv::{KvConfig, KvStore};
use raft_core::state_machine::{restore_from_chunks, StateMachine};
use raft_core::storage::MemoryStorage;
use raft_core::wire::records;
use raft_core::{Bytes, Config, LogIndex, Message, NodeId, RaftNode, ReadError, ReadMode, Restored};

use super::store::{FileOp, Opened, TabLog};

/// Bytes per snapshot chunk if this node ever had to serve one (a learner does not lead).
const SNAPSHOT_CHUNK_BYTES: usize = 256 * 1024;
/// Linearizable reads waiting for their index to be applied, at most.
pub const WAITING_READS_MAX: usize = 4096;

/// The answer to one read the page asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadDone {
    /// The id the Worker gave the read.
    pub request_id: u64,
    /// The read index (served at or after it), or why there is none.
    pub result: Result<LogIndex, ReadError>,
}

/// The core's configuration for a tab, matching native-node's timing (10 ms ticks, elections
/// after 50 ticks, heartbeats every 5), with `campaigns: false`: learner or voter, a tab never
/// campaigns, but its read timeouts and lease arithmetic use the same ticks as the cluster's.
pub fn tab_config(id: NodeId, seed: u64) -> Config {
    let mut config = Config::new(id, seed);
    config.election_timeout_ticks = 50;
    config.heartbeat_interval_ticks = 5;
    config.clock_drift_ticks_max = 5;
    // A tab's memory is small and a snapshot costs a copy of the state: compact every 10,000
    // entries, keeping 1,024 behind (the leader never needs them from a learner).
    config.snapshot_interval_entries = 10_000;
    config.snapshot_trailing_entries = 1024;
    // A tab votes and acknowledges once promoted, but never starts an election or a pre-vote
    // and ignores TimeoutNow (VOTER-PROTOCOL.md): it has no address and its uptime is a
    // person's whim.
    config.campaigns = false;
    config
}

/// A tab's replica: node, storage, state machine and the apply-sequence check.
pub struct Driver {
    node: RaftNode,
    storage: MemoryStorage,
    store: KvStore,
    /// Messages the node wants sent, in order, for the transport to seal.
    outbox: VecDeque<Message>,
    /// Linearizable reads confirmed by the leader, waiting until their index is applied.
    waiting_reads: Vec<ReadDone>,
    /// Reads answered (applied far enough, or failed).
    done_reads: Vec<ReadDone>,
    /// The last index applied or installed: the apply-sequence check's reference.
    last_applied: LogIndex,
    /// Entries applied, one by one.
    applied_entries: u64,
    /// Entries handed out twice or out of order (must stay 0).
    apply_violations: u64,
    /// Snapshots installed from the leader.
    snapshots_installed: u64,
    /// Messages the node refused (counted, as native-node does).
    steps_refused: u64,
    /// Peer messages stepped.
    steps: u64,
    /// Durable storage, if the tab has it.
    log: Option<TabLog>,
}

impl Driver {
    /// A fresh, empty replica with id `id` (assigned by the leader that admitted the tab).
    ///
    /// # Errors
    /// The core's or the store's refusal of the configuration.
    pub fn new(id: NodeId, seed: u64) -> Result<Driver, String> {
        let storage = MemoryStorage::from_restored(Restored::empty());
        let node = RaftNode::new(tab_config(id, seed), storage.restored(LogIndex(0)))
            .map_err(|e| alloc::format!("{e}"))?;
        let store = KvStore::new(KvConfig::default()).map_err(|e| alloc::format!("{e}"))?;
        Ok(Driver {
            node,
            storage,
            store,
            outbox: VecDeque::new(),
            waiting_reads: Vec::new(),
            done_reads: Vec::new(),
            last_applied: LogIndex(0),
            applied_entries: 0,
            apply_violations: 0,
            snapshots_installed: 0,
            steps_refused: 0,
            steps: 0,
            log: None,
        })
    }

    /// A replica restarted from durable storage under its stored id: term, vote, log and
    /// snapshot as they were flushed; the committed entries after the snapshot are applied again.
    ///
    /// # Errors
    /// The core's or the store's refusal of what was stored.
    pub fn restore(opened: Opened, seed: u64) -> Result<Driver, String> {
        let Opened { identity, restored, snapshot, log } = opened;
        let mut storage = MemoryStorage::from_restored(restored);
        storage.snapshot = snapshot;
        let mut store = KvStore::new(KvConfig::default()).map_err(|e| alloc::format!("{e}"))?;
        let mut last_applied = LogIndex(0);
        if let Some((meta, data)) = &storage.snapshot {
            restore_from_chunks(&mut store, [&data[..]])
                .map_err(|e| alloc::format!("the stored snapshot: {e:?}"))?;
            last_applied = meta.index;
        }
        let node = RaftNode::new(tab_config(identity.node_id, seed), storage.restored(last_applied))
            .map_err(|e| alloc::format!("{e}"))?;
        let mut driver = Driver::new(identity.node_id, seed)?;
        driver.node = node;
        driver.storage = storage;
        driver.store = store;
        driver.last_applied = last_applied;
        driver.log = Some(log);
        driver.drive();
        Ok(driver)
    }

    /// From now on everything persisted is also written to `log` (a tab just admitted with
    /// durable storage: its log is empty).
    pub fn attach_log(&mut self, log: TabLog) {
        self.log = Some(log);
    }

    /// The generation of the log file in use, with durable storage.
    pub fn log_generation(&self) -> Option<u64> {
        self.log.as_ref().map(TabLog::generation)
    }

    /// File operations to carry out, in order, before sending anything produced since the
    /// last call.
    pub fn take_file_ops(&mut self) -> Vec<FileOp> {
        self.log.as_mut().map_or_else(Vec::new, TabLog::take_ops)
    }

    /// The core.
    pub fn node(&self) -> &RaftNode {
        &self.node
    }

    /// The applied key-value state.
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    /// One tick of logical time (the Worker's timer calls this every 10 ms).
    pub fn tick(&mut self) {
        self.node.tick();
        self.drive();
    }

    /// A message from an authenticated peer.
    pub fn step(&mut self, message: Message) {
        self.steps += 1;
        if self.node.step(message).is_err() {
            self.steps_refused += 1;
        }
        self.drive();
    }

    /// The connection to `peer` failed or dropped messages.
    pub fn report_unreachable(&mut self, peer: NodeId) {
        self.node.report_unreachable(peer);
        self.drive();
    }

    /// Starts a linearizable read (ReadIndex asked of the leader, thesis §6.4); its answer
    /// comes out of [`Driver::take_reads`] once this replica has applied the read index.
    pub fn read_linearizable(&mut self, request_id: u64) {
        if self.waiting_reads.len() >= WAITING_READS_MAX {
            self.done_reads.push(ReadDone { request_id, result: Err(ReadError::TooManyPending) });
            return;
        }
        self.node.read(request_id, ReadMode::Linearizable);
        self.drive();
    }

    /// Reads answered since the last call.
    pub fn take_reads(&mut self) -> Vec<ReadDone> {
        core::mem::take(&mut self.done_reads)
    }

    /// Messages to send since the last call.
    pub fn take_messages(&mut self) -> Vec<Message> {
        self.outbox.drain(..).collect()
    }

    /// `(applied entries, apply violations, snapshots installed, steps, steps refused)`.
    pub fn counters(&self) -> (u64, u64, u64, u64, u64) {
        (
            self.applied_entries,
            self.apply_violations,
            self.snapshots_installed,
            self.steps,
            self.steps_refused,
        )
    }

    /// The member addresses recorded in the replicated state.
    pub fn addresses(&self) -> Vec<(NodeId, String)> {
        self.store
            .iter_prefix(records::ADDRESS_KEY_PREFIX)
            .filter_map(|(key, value)| records::parse_address(key, value))
            .collect()
    }

    /// The user's key-value pairs (reserved records left out, as native-node's lists do).
    pub fn user_pairs(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.store.iter().filter(|(key, _)| !key.starts_with(records::RESERVED_KEY_PREFIX))
    }

    /// Everything the node's `Ready`s ask, in the contract's order, until it has nothing left.
    fn drive(&mut self) {
        while self.node.has_ready() {
            let ready = self.node.ready();
            // 1. Messages that may leave before anything is durable.
            self.outbox.extend(ready.messages.iter().cloned());
            // 2. Stage chunks, install a completed snapshot, store hard state and entries.
            let installed = self.storage.persist(&ready);
            if let Some(log) = self.log.as_mut() {
                match (&installed, &ready.snapshot_installed) {
                    (Some(data), Some(meta)) => {
                        log.rewrite(Some((meta, data)), &self.storage.hard_state, &self.storage.entries)
                    }
                    _ if ready.hard_state.is_some() || !ready.entries.is_empty() => {
                        log.append(&self.storage.hard_state, &ready.entries)
                    }
                    _ => {}
                }
            }
            if let (Some(data), Some(meta)) = (installed, &ready.snapshot_installed) {
                self.install(meta.index, &data);
            }
            // 3. Messages that promise what was just persisted.
            self.outbox.extend(ready.messages_after_persist.iter().cloned());
            // A learner never leads, but the contract says to serve what is wanted.
            for request in &ready.snapshot_chunks_wanted {
                match self.storage.snapshot_chunk(request, SNAPSHOT_CHUNK_BYTES) {
                    Some((data, last)) => self.node.send_snapshot_chunk(
                        request.to,
                        request.meta.index,
                        request.offset,
                        data,
                        last,
                    ),
                    None => self.node.report_snapshot(request.to, raft_core::SnapshotStatus::Failed),
                }
            }
            // 4. Apply, in order, checking the sequence; compact when the core asks.
            for entry in &ready.committed_entries {
                self.apply(entry);
            }
            // 5. Reads wait for their index.
            for read in &ready.read_states {
                let done = ReadDone { request_id: read.request_id, result: read.result };
                match read.result {
                    Ok(_) => self.waiting_reads.push(done),
                    Err(_) => self.done_reads.push(done),
                }
            }
            self.node.advance();
            // The core counts applied entries at `advance`; compact when its policy says so.
            self.maybe_compact();
        }
        self.serve_reads();
        self.outbox.extend(self.node.take_messages());
    }

    /// Takes a snapshot of the applied state when the core's policy asks, and compacts the
    /// stored log behind it (a tab's memory is all it has).
    fn maybe_compact(&mut self) {
        let applied = self.store.applied_index();
        if self.node.snapshot_wanted().is_none() || applied != self.node.applied_index() {
            return;
        }
        if let Ok(created) = self.node.snapshot_created(applied) {
            let data: Vec<u8> = self.store.snapshot().flat_map(|chunk| chunk.to_vec()).collect();
            if let Some(log) = self.log.as_mut() {
                // Compacted entries stay in the file in use until the new one is durable.
                let retained: Vec<_> = self
                    .storage
                    .entries
                    .iter()
                    .filter(|e| e.index > created.compact_through)
                    .cloned()
                    .collect();
                log.rewrite(Some((&created.meta, &data)), &self.storage.hard_state, &retained);
            }
            self.storage.compact(&created, Bytes::from(data));
        }
    }

    /// Applies one committed entry if it is the next in sequence; counts a violation (and
    /// applies nothing) otherwise: an entry handed out twice, or after a gap.
    fn apply(&mut self, entry: &raft_core::Entry) -> bool {
        if entry.index != self.last_applied.next() {
            self.apply_violations += 1;
            return false;
        }
        // The response is for the proposer, which is a native node, not this tab.
        let _ = self.store.apply(entry);
        self.last_applied = entry.index;
        self.applied_entries += 1;
        true
    }

    fn install(&mut self, index: LogIndex, data: &[u8]) {
        if index <= self.last_applied {
            // The core never rolls a node back with a stale snapshot; if it did, count it.
            self.apply_violations += 1;
            return;
        }
        if restore_from_chunks(&mut self.store, [data]).is_err() {
            // A snapshot the store refuses would leave this replica behind for good.
            self.apply_violations += 1;
            return;
        }
        self.last_applied = index;
        self.snapshots_installed += 1;
    }

    fn serve_reads(&mut self) {
        let applied = self.last_applied;
        let (ready, waiting): (Vec<ReadDone>, Vec<ReadDone>) = core::mem::take(&mut self.waiting_reads)
            .into_iter()
            .partition(|read| matches!(read.result, Ok(index) if index <= applied));
        self.waiting_reads = waiting;
        self.done_reads.extend(ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::borrow::ToOwned;
    use raft_core::kv::{Command, Operation};
    use raft_core::{bootstrap, Entry, EntryPayload, Membership, MembershipChange, Role, Term};

    /// A one-voter "native" leader driven the same way, with a short snapshot interval.
    struct Leader {
        node: RaftNode,
        storage: MemoryStorage,
        store: KvStore,
    }

    impl Leader {
        fn new() -> Leader {
            let storage = MemoryStorage::from_restored(bootstrap(Membership::with_voters([NodeId(1)])));
            let mut config = tab_config(NodeId(1), 7);
            // A native node campaigns; only tabs do not.
            config.campaigns = true;
            config.snapshot_interval_entries = 50;
            config.snapshot_trailing_entries = 5;
            let node = RaftNode::new(config, storage.restored(LogIndex(0))).unwrap();
            Leader { node, storage, store: KvStore::new(KvConfig::default()).unwrap() }
        }

        fn drive(&mut self, out: &mut Vec<Message>) {
            while self.node.has_ready() {
                let ready = self.node.ready();
                out.extend(ready.messages.iter().cloned());
                self.storage.persist(&ready);
                out.extend(ready.messages_after_persist.iter().cloned());
                for request in &ready.snapshot_chunks_wanted {
                    let (data, last) = self.storage.snapshot_chunk(request, 100).unwrap();
                    self.node.send_snapshot_chunk(request.to, request.meta.index, request.offset, data, last);
                }
                for entry in &ready.committed_entries {
                    let _ = self.store.apply(entry);
                }
                self.node.advance();
                if self.node.snapshot_wanted().is_some() {
                    if let Ok(created) = self.node.snapshot_created(self.node.applied_index()) {
                        let data: Vec<u8> = self.store.snapshot().flat_map(|c| c.to_vec()).collect();
                        self.storage.compact(&created, Bytes::from(data));
                    }
                }
            }
            out.extend(self.node.take_messages());
        }
    }

    fn put(key: &str, value: &str) -> Bytes {
        Command::unsessioned(
            1,
            Operation::Put { key: Bytes::from(key.to_owned()), value: Bytes::from(value.to_owned()) },
        )
        .encode()
    }

    /// Runs leader and tab for `ticks`, delivering every message at once.
    fn run(leader: &mut Leader, tab: &mut Driver, ticks: u32) {
        for _ in 0..ticks {
            let mut wire = Vec::new();
            leader.node.tick();
            leader.drive(&mut wire);
            tab.tick();
            wire.extend(tab.take_messages());
            while !wire.is_empty() {
                for message in core::mem::take(&mut wire) {
                    if message.to == NodeId(1) {
                        let _ = leader.node.step(message);
                        leader.drive(&mut wire);
                    } else {
                        tab.step(message);
                        wire.extend(tab.take_messages());
                    }
                }
            }
        }
    }

    const TAB: NodeId = NodeId(1 << 32);

    #[test]
    fn a_learner_tab_gets_a_snapshot_then_the_log_and_applies_each_entry_once_in_order() {
        let mut leader = Leader::new();
        let mut tab = Driver::new(TAB, 3).unwrap();
        run(&mut leader, &mut tab, 200);
        assert_eq!(leader.node.role(), Role::Leader);
        // Enough entries before the tab is added that the leader has compacted its log.
        for k in 0..120 {
            leader.node.propose(put(&alloc::format!("k{k}"), "before")).unwrap();
        }
        run(&mut leader, &mut tab, 20);
        assert!(
            leader.node.latest_snapshot().is_some(),
            "the leader took a snapshot (snapshot index {}, applied {})",
            leader.node.snapshot_index(),
            leader.node.applied_index()
        );
        let index = leader.node.membership_index();
        leader.node.change_membership(MembershipChange::AddLearner(TAB), index).unwrap();
        run(&mut leader, &mut tab, 100);
        for k in 0..80 {
            leader.node.propose(put(&alloc::format!("k{k}"), "after")).unwrap();
            if k % 10 == 0 {
                run(&mut leader, &mut tab, 3);
            }
        }
        run(&mut leader, &mut tab, 100);
        let (applied, violations, snapshots, _, _) = tab.counters();
        assert_eq!(violations, 0);
        assert!(snapshots >= 1, "the tab joined after compaction, so it got a snapshot");
        assert!(applied > 80, "then the log: {applied} entries");
        assert_eq!(tab.node().role(), Role::Follower);
        assert!(!tab.node().membership().is_voter(TAB));
        let theirs: Vec<_> = leader.store.iter().collect();
        let ours: Vec<_> = tab.store().iter().collect();
        assert_eq!(theirs, ours, "the tab's state is the leader's, key by key");
        assert_eq!(tab.store().applied_index(), leader.store.applied_index());

        // A linearizable read through the tab's own node is answered once applied, at an index
        // at or after the last write.
        let last_write = leader.node.commit_index();
        tab.read_linearizable(9);
        run(&mut leader, &mut tab, 20);
        let reads = tab.take_reads();
        assert_eq!(reads.len(), 1);
        assert!(matches!(reads[0].result, Ok(index) if index >= last_write), "{reads:?}");
    }

    #[test]
    fn a_tab_with_durable_storage_restarts_from_its_files_under_its_id_without_a_snapshot() {
        use super::super::store::{apply_ops, Identity, TabLog, IDENTITY_FILE, LOG_FILES};
        let mut files = alloc::collections::BTreeMap::new();
        let mut leader = Leader::new();
        let mut tab = Driver::new(TAB, 3).unwrap();
        tab.attach_log(TabLog::create(&Identity {
            cluster_id: "c".into(),
            node_id: TAB,
            join_nonce: [1; 16],
            tab_key: alloc::vec![2; 32],
        }));
        run(&mut leader, &mut tab, 200);
        for k in 0..120 {
            leader.node.propose(put(&alloc::format!("k{k}"), "before")).unwrap();
        }
        run(&mut leader, &mut tab, 20);
        let index = leader.node.membership_index();
        leader.node.change_membership(MembershipChange::AddLearner(TAB), index).unwrap();
        for k in 0..60 {
            leader.node.propose(put(&alloc::format!("k{k}"), "after")).unwrap();
            run(&mut leader, &mut tab, 2);
            apply_ops(&mut files, &tab.take_file_ops());
        }
        run(&mut leader, &mut tab, 50);
        apply_ops(&mut files, &tab.take_file_ops());
        assert_eq!(tab.counters().2, 1, "the tab got one snapshot (stored by a log rewrite)");
        let term = tab.node().term();
        let stored_through = tab.node().commit_index();

        // The tab closes; its files are read back.
        let get = |name: &str| files.get(name).cloned().unwrap_or_default();
        let (identity, log0, log1) = (get(IDENTITY_FILE), get(LOG_FILES[0]), get(LOG_FILES[1]));
        let opened = TabLog::open("", &identity, [&log0, &log1]).unwrap().unwrap();
        assert_eq!(opened.identity.node_id, TAB);
        let mut tab = Driver::restore(opened, 4).unwrap();
        assert_eq!(tab.node().term(), term);
        assert!(tab.store().applied_index() >= stored_through, "the stored log is applied again");
        for k in 0..20 {
            leader.node.propose(put(&alloc::format!("k{k}"), "later")).unwrap();
        }
        run(&mut leader, &mut tab, 50);
        let (_, violations, snapshots, _, _) = tab.counters();
        assert_eq!((violations, snapshots), (0, 0), "no snapshot transfer after the restart");
        let theirs: Vec<_> = leader.store.iter().collect();
        let ours: Vec<_> = tab.store().iter().collect();
        assert_eq!(theirs, ours);
    }

    #[test]
    fn the_apply_check_catches_an_entry_applied_twice_or_after_a_gap() {
        let mut tab = Driver::new(TAB, 3).unwrap();
        let entry = |index| Entry { term: Term(1), index: LogIndex(index), payload: EntryPayload::Noop };
        assert!(tab.apply(&entry(1)));
        assert!(!tab.apply(&entry(1)), "twice");
        assert!(!tab.apply(&entry(3)), "after a gap");
        assert!(tab.apply(&entry(2)));
        assert_eq!(tab.counters().1, 2);
    }

    #[test]
    fn a_read_without_a_leader_fails_instead_of_waiting_for_ever() {
        let mut tab = Driver::new(TAB, 3).unwrap();
        tab.read_linearizable(1);
        for _ in 0..200 {
            tab.tick();
        }
        let reads = tab.take_reads();
        assert_eq!(reads.len(), 1);
        assert!(reads[0].result.is_err());
    }
}

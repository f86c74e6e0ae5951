//! The inputs of a run applied to the cluster: proposals, crashes and restarts, pauses,
//! partitions, membership changes, transfers, client reads and changes to messages on the wire.

use super::campaigns::late_campaign_news;
use super::{Event, Liveness, Simulation, Storage};
use crate::ready::bootstrap;
use crate::sim::client_reads::ReadFailure;
use crate::sim::script::Input;
use crate::types::{Membership, NodeId};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use bytes::Bytes;

impl Simulation {
    pub(super) fn handle_input(&mut self, input: Input) {
        match input {
            Input::Propose { data } => match self.leader().and_then(|id| self.index(id)) {
                Some(k) => self.propose_at(k, data),
                None => self.stats.proposals_refused += 1,
            },
            Input::ProposeTo { node, data } => match self.index(node) {
                Some(k) if self.nodes[k].liveness() == Liveness::Up => self.propose_at(k, data),
                _ => self.stats.proposals_refused += 1,
            },
            Input::Crash(id) => self.crash(id),
            Input::WipeDisk(id) => {
                self.crash(id);
                if let Some(k) = self.index(id) {
                    let initial = self.config.node_ids().filter(|&id| self.config.is_initial_voter(id));
                    let restored = bootstrap(Membership::with_voters(initial));
                    self.nodes[k].storage = Storage {
                        hard_state: restored.hard_state,
                        entries: restored.entries,
                        ..Storage::default()
                    };
                }
            }
            Input::Restart(id) => {
                if self.index(id).is_some_and(|k| self.nodes[k].raft.is_none()) {
                    self.start_node(id);
                }
            }
            Input::Pause(id) => {
                if let Some(k) = self.index(id) {
                    if self.nodes[k].raft.is_some() {
                        self.nodes[k].paused = true;
                    }
                }
            }
            Input::Resume(id) => self.resume(id),
            Input::Campaign(id) => {
                if let Some(k) = self.index(id) {
                    let paused = self.nodes[k].paused;
                    if let (Some(raft), false) = (self.nodes[k].raft.as_mut(), paused) {
                        raft.campaign();
                        self.after_node_changed(k);
                    }
                }
            }
            Input::Partition { side } => {
                let side: BTreeSet<NodeId> = side.into_iter().collect();
                let ids: Vec<NodeId> = self.config.node_ids().collect();
                for &a in &ids {
                    for &b in &ids {
                        if side.contains(&a) != side.contains(&b) {
                            self.cut.insert((a, b));
                        }
                    }
                }
                self.adversary_on_partition();
            }
            Input::CutLink { from, to } => {
                self.cut.insert((from, to));
                self.adversary_on_partition();
            }
            Input::RestoreLink { from, to } => {
                self.cut.remove(&(from, to));
            }
            Input::Heal => self.cut.clear(),
            Input::SetLink { from, to, link } => {
                self.links.insert((from, to), link);
            }
            Input::Snapshot(id) => {
                if let Some(k) = self.index(id) {
                    self.take_snapshot(k);
                }
            }
            Input::ChangeMembership { change } => {
                let leader = self.leader();
                let accepted = leader.and_then(|id| self.index(id)).is_some_and(|k| {
                    let raft = self.nodes[k].raft.as_mut().expect("a leader is running");
                    let expected = raft.membership_index();
                    let late_news = late_campaign_news(&self.config, raft, &change);
                    let accepted = raft.change_membership(change.clone(), expected).is_ok();
                    if let Some(server) = late_news {
                        raft.set_peer_campaigns(server, false);
                    }
                    self.after_node_changed(k);
                    accepted
                });
                if let (true, Some(leader)) = (accepted, leader) {
                    self.stats.membership_changes += 1;
                    self.adversary_on_membership(leader, &change);
                } else {
                    self.stats.membership_changes_refused += 1;
                }
            }
            Input::TransferLeadership { target } => {
                if let Some(k) = self.leader().and_then(|id| self.index(id)) {
                    let raft = self.nodes[k].raft.as_mut().expect("a leader is running");
                    if let Ok(target) = raft.transfer_leadership(target) {
                        self.transfer_pending = Some((target, raft.term()));
                    }
                    self.after_node_changed(k);
                }
            }
            Input::DropMessage { id } => self.alter_in_flight(id, false),
            Input::DuplicateMessage { id } => self.alter_in_flight(id, true),
            Input::Read { node, key, mode } => self.client_read_at(node, key, mode),
        }
    }

    /// A client asks server `node` for `key`: its node gives a read index (or refuses), and the
    /// read is answered once the server has applied that index (see [`ClientReads`]).
    pub(super) fn client_read_at(&mut self, node: NodeId, key: Bytes, mode: crate::reads::ReadMode) {
        let key = if key.is_empty() {
            let written = self.workload.as_ref().and_then(|w| w.last_written_key());
            written.unwrap_or_else(|| Bytes::from_static(b"k"))
        } else {
            key
        };
        let now = self.now_ms;
        let request_id = self.client_reads.ask(node, key, mode, now);
        let running = self.index(node).filter(|&k| self.nodes[k].liveness() == Liveness::Up);
        let Some(k) = running else {
            self.client_reads.fail(request_id, ReadFailure::NotRunning, now, &mut self.trace_hash);
            return;
        };
        if mode == crate::reads::ReadMode::Lease && self.clock_stalled_recently(k) {
            self.client_reads.beyond_drift_bound(request_id);
        } else {
            self.read_asked(request_id, mode);
        }
        if let Some(raft) = self.nodes[k].raft.as_mut() {
            self.client_reads.waiting(k, request_id);
            raft.read(request_id, mode);
        }
        self.after_node_changed(k);
    }

    pub(super) fn propose_at(&mut self, k: usize, data: bytes::Bytes) {
        let Some(raft) = self.nodes[k].raft.as_mut() else {
            self.stats.proposals_refused += 1;
            return;
        };
        match raft.propose(data) {
            Ok(_) => self.stats.proposals_accepted += 1,
            Err(_) => self.stats.proposals_refused += 1,
        }
        self.after_node_changed(k);
    }

    pub(super) fn crash(&mut self, id: NodeId) {
        let Some(k) = self.index(id) else {
            return;
        };
        let node = &mut self.nodes[k];
        if node.raft.is_none() {
            return;
        }
        // Whatever was being written is lost with the process.
        node.raft = None;
        node.persisting = None;
        node.paused = false;
        node.held.clear();
        node.persist_done_held = false;
        self.stats.crashes += 1;
        self.client_reads.crashed(k, self.now_ms, &mut self.trace_hash);
        if let Some(workload) = self.workload.as_mut() {
            workload.crashed(k);
        }
    }

    pub(super) fn resume(&mut self, id: NodeId) {
        let Some(k) = self.index(id) else {
            return;
        };
        if !self.nodes[k].paused {
            return;
        }
        self.nodes[k].paused = false;
        self.nodes[k].resumed_ms = Some(self.now_ms);
        if core::mem::take(&mut self.nodes[k].persist_done_held) {
            self.finish_persist(k);
        }
        while let Some(message) = self.nodes[k].held.pop_front() {
            self.deliver(k, message);
        }
        if let (Some(workload), Some(raft)) = (self.workload.as_mut(), self.nodes[k].raft.as_mut()) {
            workload.resume(k, raft, self.now_ms);
            self.note_workload_reads();
            self.flush_workload();
        }
        self.after_node_changed(k);
    }

    /// Whether server `k`'s clock stalled (it was paused, its ticks skipped) within the last
    /// election timeout of its ticks: its tick count then lags the others' by the pause, past
    /// `clock_drift_ticks_max`, and a lease it holds may count time it did not see pass (the
    /// guide's rule 3 for lease reads; a real process stopped by a long GC pause or a frozen VM
    /// is in the same case).
    pub(super) fn clock_stalled_recently(&self, k: usize) -> bool {
        let node = &self.nodes[k];
        let window_ms = (self.config.election_timeout_ticks + 1) * node.tick_period_ms;
        node.paused || node.resumed_ms.is_some_and(|resumed| self.now_ms < resumed + window_ms)
    }

    /// Removes one message from the wire, or delivers a second copy of it.
    pub(super) fn alter_in_flight(&mut self, id: u64, duplicate: bool) {
        let is_it = |event: &Event| matches!(event, Event::Deliver(m) if m.id == id);
        if duplicate {
            let Some((time_ms, event)) = self.events.first(is_it) else {
                return;
            };
            let event = event.clone();
            self.stats.messages_duplicated += 1;
            self.push_event(time_ms, event);
        } else if self.events.remove_first(is_it).is_some() {
            self.stats.messages_dropped += 1;
        }
    }
}

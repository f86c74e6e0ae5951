//! [`Simulation`]: a whole cluster of [`RaftNode`]s on a simulated network and simulated disks,
//! driven by a discrete event queue.
//!
//! Every random choice (latency, loss, duplication, timer phases) comes from the config's seed,
//! and events at the same time run in the order they were scheduled, so a run is a pure
//! function of ([`SimConfig`], [`Script`]). The trace hash folds in every event.

use crate::config::Config;
use crate::message::Message;
use crate::node::RaftNode;
use crate::ready::SnapshotMeta;
use crate::ready::{bootstrap, Ready, Restored};
use crate::rng::Rng;
use crate::sim::checker::{entry_hash, Checker, NodeTrack, Violation};
use crate::sim::client_reads::{ClientRead, ClientReads};
use crate::sim::config::{Adversary, LinkConfig, SimConfig};
use crate::sim::hash::{combine, trace_combine};
use crate::sim::machine::{SimStateMachine, SNAPSHOT_CHUNK_BYTES};
use crate::sim::queue::EventQueue;
use crate::sim::quorum_acks::QuorumAcks;
use crate::sim::rules::Rules;
use crate::sim::script::{Input, Script};
use crate::sim::workload::{Workload, WorkloadConfig, WorkloadEvent};
use crate::types::{Entry, HardState, LogIndex, Membership, NodeId, Role};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

mod adversary;
mod campaigns;
mod corners;
mod inputs;

pub use adversary::CONVERGENCE_MS_MAX;

/// What a node's disk holds: everything that survives a crash.
#[derive(Clone, Debug, Default)]
pub struct Storage {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The persisted log (possibly starting after a compaction point).
    pub entries: Vec<Entry>,
    /// The latest snapshot and its bytes.
    pub snapshot: Option<(SnapshotMeta, Bytes)>,
    /// A snapshot being received. On a real disk this is a temporary file; a crash discards it.
    pub staging: Vec<u8>,
}

impl Storage {
    /// Stores a batch's entries: everything from the first one's index is replaced.
    fn store_entries(&mut self, entries: Vec<Entry>) {
        let Some(first) = entries.first() else {
            return;
        };
        // Stored entries are contiguous, so the cut is found by arithmetic, not by a scan.
        let stored_from = self.entries.first().map_or(first.index, |e| e.index);
        let keep = first.index.0.saturating_sub(stored_from.0) as usize;
        self.entries.truncate(keep);
        self.entries.extend(entries);
    }

    /// Drops entries up to and including `index`.
    fn compact(&mut self, index: LogIndex) {
        let stored_from = self.entries.first().map_or(index, |e| e.index);
        let covered = (index.0 + 1).saturating_sub(stored_from.0).min(self.entries.len() as u64);
        self.entries.drain(..covered as usize);
    }
}

/// Stages a batch's snapshot chunks in order (a chunk at offset 0 starts a snapshot over) and
/// returns the bytes of the snapshot the batch installs, taken as its last chunk is staged.
///
/// One batch can finish one snapshot and start receiving the next (a new leader's, say): the
/// next one's first chunks follow the finished one's last in `chunks`, and must stay staged,
/// not be installed. Staging every chunk first and installing what was staged installed the
/// next snapshot's first chunk (issue 19, item 5: "snapshot holds no simulator state").
fn stage_chunks(
    staging: &mut Vec<u8>,
    chunks: &[crate::ready::SnapshotChunk],
    installed: Option<&SnapshotMeta>,
) -> Option<Vec<u8>> {
    let mut data = None;
    for chunk in chunks {
        if chunk.offset == 0 {
            staging.clear();
        }
        staging.extend_from_slice(&chunk.data);
        if chunk.last && installed == Some(&chunk.meta) {
            data = Some(core::mem::take(staging));
        }
    }
    data
}

/// Whether a server is running, crashed or paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Running.
    Up,
    /// Crashed; only its storage remains.
    Down,
    /// Paused: alive but handling nothing.
    Paused,
}

/// One simulated server.
#[derive(Clone, Debug)]
pub struct SimNode {
    /// Its id.
    pub id: NodeId,
    /// The Raft state machine, `None` while crashed.
    pub raft: Option<RaftNode>,
    /// Its disk.
    pub storage: Storage,
    /// A batch being written to disk; lost if the node crashes first.
    persisting: Option<Ready>,
    /// Bumped on every restart, so timers of an earlier life are ignored.
    incarnation: u64,
    paused: bool,
    /// Messages that arrived while paused, handled on resume.
    held: VecDeque<Message>,
    /// A persist finished while paused.
    persist_done_held: bool,
    track: NodeTrack,
    /// The simulated state machine (rebuilt from the snapshot and the log on restart).
    pub machine: SimStateMachine,
    /// Simulated milliseconds between two of its ticks (its clock's speed).
    tick_period_ms: u64,
    /// When it last resumed from a pause (its ticks stalled until then).
    resumed_ms: Option<u64>,
}

impl SimNode {
    /// Simulated milliseconds between two of its ticks: the config's `tick_ms`, or more for a
    /// clock the drifting-clocks fault slowed down (thesis §6.4.1).
    pub fn tick_period_ms(&self) -> u64 {
        self.tick_period_ms
    }

    /// Running, crashed or paused.
    pub fn liveness(&self) -> Liveness {
        match (&self.raft, self.paused) {
            (None, _) => Liveness::Down,
            (Some(_), true) => Liveness::Paused,
            (Some(_), false) => Liveness::Up,
        }
    }
}

/// A message on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// Unique per run, in send order.
    pub id: u64,
    /// When it was sent.
    pub sent_ms: u64,
    /// When it arrives.
    pub deliver_ms: u64,
    /// The message.
    pub message: Message,
}

#[derive(Clone, Debug)]
enum Event {
    Tick {
        node: NodeId,
        incarnation: u64,
    },
    Deliver(InFlight),
    PersistDone {
        node: NodeId,
        incarnation: u64,
    },
    /// Client traffic and client timers (only with a workload).
    Workload(WorkloadEvent),
}

impl Event {
    /// The one server handling this event can change, if only one can.
    fn server(&self) -> Option<NodeId> {
        match self {
            Event::Tick { node, .. } | Event::PersistDone { node, .. } => Some(*node),
            Event::Deliver(in_flight) => Some(in_flight.message.to),
            Event::Workload(event) => event.server(),
        }
    }
}

/// Which servers the last step of a [`Simulation`] may have changed, so that an observer
/// comparing servers before and after every step can look at one instead of all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    /// Only this server (the step was an event addressed to it).
    One(NodeId),
    /// Any of them (an input, or an event not tied to one server).
    All,
}

/// Counters of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Messages handed to the network.
    pub messages_sent: u64,
    /// Log entries carried by the AppendEntries sent.
    pub entries_sent: u64,
    /// Messages handled by their receiver.
    pub messages_delivered: u64,
    /// Messages lost: random loss, cut links, or a crashed receiver.
    pub messages_dropped: u64,
    /// Extra copies delivered.
    pub messages_duplicated: u64,
    /// Messages the receiver refused as invalid.
    pub messages_rejected: u64,
    /// Proposals accepted by a leader.
    pub proposals_accepted: u64,
    /// Proposals refused or with no leader to take them.
    pub proposals_refused: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Snapshots taken by servers (by policy or on demand).
    pub snapshots_taken: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Configuration changes appended.
    pub membership_changes: u64,
    /// Membership changes asked for but refused (for example while another was in progress).
    pub membership_changes_refused: u64,
    /// Leadership transfers that ended with the target leading.
    pub leader_transfers: u64,
    /// Elections started (terms raised), summed over servers.
    pub elections: u64,
    /// Batches made durable.
    pub persists: u64,
}

/// A simulated cluster.
#[derive(Clone, Debug)]
pub struct Simulation {
    config: SimConfig,
    script: Script,
    next_input: usize,
    now_ms: u64,
    rng: Rng,
    events: EventQueue<Event>,
    message_ids: u64,
    nodes: Vec<SimNode>,
    cut: BTreeSet<(NodeId, NodeId)>,
    links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    checker: Checker,
    trace_hash: u64,
    stats: SimStats,
    /// A transfer asked for: (target, term when asked).
    transfer_pending: Option<(NodeId, crate::types::Term)>,
    /// Clients of the key-value store, and the store on every server (see [`Workload`]).
    workload: Option<alloc::boxed::Box<Workload>>,
    /// Reads asked with [`Input::Read`], and their answers.
    client_reads: ClientReads,
    /// What the last step may have changed.
    changed: Changed,
    /// The per-step rule checks.
    rules: Rules,
    /// The followers' answers, counted to see commits their leader never learned.
    quorum_acks: QuorumAcks,
    /// The reactive faults' own random stream.
    adversary_rng: Rng,
    /// Leaders (and terms) already considered for a Figure 8 crash.
    figure8_armed: BTreeSet<(NodeId, crate::types::Term)>,
    /// Events and inputs handled so far.
    steps: u64,
    /// A budget was exceeded: the run stops.
    budget_exceeded: bool,
    /// The convergence allowance the liveness check reports (set by `run_and_converge`).
    pub(crate) converge_allowed_ms: u64,
    /// The kv clients' reads already given a floor for the read-index rule.
    workload_reads_seen: u64,
    /// What the corner faults remember (see [`corners`]).
    corners: corners::CornerState,
    /// The corner faults start nothing from this time on: the calm tail before the liveness
    /// check (set by the seeded runs; never by default).
    pub faults_end_ms: u64,
}

impl Simulation {
    /// Builds a freshly bootstrapped cluster that will follow `script`.
    ///
    /// # Errors
    /// A lowercase description if the configuration is invalid.
    pub fn new(config: SimConfig, script: Script) -> Result<Simulation, String> {
        config.validate()?;
        let membership = Membership::with_voters(config.node_ids().filter(|&id| config.is_initial_voter(id)));
        let mut simulation = Simulation {
            rng: Rng::new(config.seed),
            script,
            next_input: 0,
            now_ms: 0,
            events: EventQueue::default(),
            message_ids: 0,
            nodes: Vec::new(),
            cut: BTreeSet::new(),
            links: BTreeMap::new(),
            checker: Checker::new(),
            trace_hash: trace_combine(0, &config.seed),
            stats: SimStats::default(),
            transfer_pending: None,
            workload: None,
            client_reads: ClientReads::default(),
            changed: Changed::All,
            rules: Rules::default(),
            quorum_acks: QuorumAcks::default(),
            adversary_rng: Rng::new(config.seed ^ 0x6164_7665_7273_6172),
            figure8_armed: BTreeSet::new(),
            steps: 0,
            budget_exceeded: false,
            converge_allowed_ms: CONVERGENCE_MS_MAX,
            workload_reads_seen: 0,
            corners: corners::CornerState::default(),
            faults_end_ms: u64::MAX,
            config,
        };
        for id in simulation.config.node_ids() {
            let restored = bootstrap(membership.clone());
            let mut storage = Storage::default();
            if simulation.config.is_initial_voter(id) {
                storage.hard_state = restored.hard_state;
                storage.entries = restored.entries.clone();
            }
            simulation.nodes.push(SimNode {
                id,
                raft: None,
                storage,
                persisting: None,
                incarnation: 0,
                paused: false,
                held: VecDeque::new(),
                persist_done_held: false,
                track: NodeTrack::default(),
                machine: SimStateMachine::default(),
                tick_period_ms: simulation.config.tick_ms,
                resumed_ms: None,
            });
            simulation.start_node(id);
        }
        Ok(simulation)
    }

    /// Builds a cluster whose servers run the key-value store, with `workload`'s clients using
    /// it (see [`Workload`]). Plain [`Input::Propose`] inputs still reach the log, where the
    /// store answers them with a decode error.
    ///
    /// # Errors
    /// A lowercase description if either configuration is invalid.
    pub fn with_workload(
        config: SimConfig,
        script: Script,
        workload: WorkloadConfig,
    ) -> Result<Simulation, String> {
        let mut simulation = Simulation::new(config, script)?;
        let workload = Workload::new(workload, &simulation.config)?;
        simulation.workload = Some(alloc::boxed::Box::new(workload));
        simulation.flush_workload();
        Ok(simulation)
    }

    // ----- observers -------------------------------------------------------------------------

    /// The client workload, if the run has one.
    pub fn workload(&self) -> Option<&Workload> {
        self.workload.as_deref()
    }

    /// The run's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The run's script (including inputs added while it ran).
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// Simulated time now.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Every server, in id order.
    pub fn nodes(&self) -> &[SimNode] {
        &self.nodes
    }

    /// One server.
    pub fn node(&self, id: NodeId) -> Option<&SimNode> {
        self.nodes.get((id.0 as usize).wrapping_sub(1))
    }

    /// The running leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter(|n| !n.paused)
            .filter_map(|n| n.raft.as_ref())
            .filter(|r| r.role() == Role::Leader)
            .max_by_key(|r| r.term())
            .map(RaftNode::id)
    }

    /// Messages on the wire, in delivery order.
    pub fn in_flight(&self) -> impl Iterator<Item = &InFlight> {
        self.events.ordered().filter_map(|(_, event)| match event {
            Event::Deliver(message) => Some(message),
            _ => None,
        })
    }

    /// Events and inputs handled so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Whether the directed link `from → to` is cut.
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Safety violations seen so far.
    pub fn violations(&self) -> &[Violation] {
        self.checker.violations()
    }

    /// Stops recording violations of `checks` ([`Checker::ignore`]).
    pub fn ignore_checks(&mut self, checks: &'static [&'static str]) {
        self.checker.ignore(checks);
    }

    /// The highest index committed anywhere.
    pub fn committed_index(&self) -> LogIndex {
        self.checker.committed_index()
    }

    /// A hash of everything that happened so far.
    pub fn trace_hash(&self) -> u64 {
        self.trace_hash
    }

    /// Counters.
    pub fn stats(&self) -> SimStats {
        let mut stats = self.stats;
        stats.elections =
            self.nodes.iter().filter_map(|n| n.raft.as_ref()).map(|r| r.stats().elections_started).sum();
        stats
    }

    /// Client reads asked with [`Input::Read`], oldest first, with their answers (at most
    /// [`crate::sim::CLIENT_READS_MAX`] remembered).
    pub fn client_reads(&self) -> impl ExactSizeIterator<Item = &ClientRead> + '_ {
        self.client_reads.records().iter()
    }

    /// The client read with id `id`, if still remembered.
    pub fn client_read(&self, id: u64) -> Option<&ClientRead> {
        self.client_reads.get(id)
    }

    /// (Reads asked, reads answered) so far: cheap to poll for new answers.
    pub fn client_read_counts(&self) -> (u64, u64) {
        (self.client_reads.asked_total(), self.client_reads.answered_total())
    }

    /// Which servers the last [`Simulation::step_once`] that ran something may have changed.
    pub fn changed(&self) -> Changed {
        self.changed
    }

    /// The checker, for tests that need to adjust it.
    pub fn checker_mut(&mut self) -> &mut Checker {
        &mut self.checker
    }

    // ----- driving ---------------------------------------------------------------------------

    /// Adds an input to happen at `time_ms` (not before now). This is how the playground and
    /// tests act on a running cluster; the input becomes part of the script.
    pub fn schedule(&mut self, time_ms: u64, input: Input) {
        let time_ms = time_ms.max(self.now_ms);
        // Keep already-executed inputs where they are: insert after them.
        let position =
            self.next_input + self.script.inputs[self.next_input..].partition_point(|(t, _)| *t <= time_ms);
        self.script.inputs.insert(position, (time_ms, input));
    }

    /// Does `input` now.
    pub fn act(&mut self, input: Input) {
        self.schedule(self.now_ms, input);
        self.run_until(self.now_ms);
    }

    /// Runs every event and input up to and including `time_ms`.
    pub fn run_until(&mut self, time_ms: u64) {
        while self.step_once(time_ms) {}
        self.now_ms = self.now_ms.max(time_ms);
    }

    /// Runs until `predicate` holds or `time_ms` is reached; returns whether it held.
    pub fn run_until_condition(
        &mut self,
        time_ms: u64,
        mut predicate: impl FnMut(&Simulation) -> bool,
    ) -> bool {
        if predicate(self) {
            return true;
        }
        while self.step_once(time_ms) {
            if predicate(self) {
                return true;
            }
        }
        self.now_ms = self.now_ms.max(time_ms);
        predicate(self)
    }

    /// Handles the next input or event if it happens at or before `limit_ms`. Inputs go before
    /// events of the same time.
    pub fn step_once(&mut self, limit_ms: u64) -> bool {
        if self.budget_exceeded {
            return false;
        }
        self.steps += 1;
        let budget = self.config.budget;
        if self.steps > budget.steps_max {
            self.exceed_budget(format!("more than {} steps", budget.steps_max));
            return false;
        }
        if self.events.len() > budget.queued_max {
            self.exceed_budget(format!("more than {} events queued", budget.queued_max));
            return false;
        }
        let next_input = self.script.inputs.get(self.next_input).map(|(t, _)| *t);
        let next_event = self.events.next_time();
        match (next_input, next_event) {
            (Some(t), e) if t <= limit_ms && e.is_none_or(|e| t <= e) => {
                let input = self.script.inputs[self.next_input].1.clone();
                self.next_input += 1;
                self.changed = Changed::All;
                self.now_ms = self.now_ms.max(t);
                self.trace_hash = trace_combine(self.trace_hash, &(t, &input));
                self.handle_input(input);
                true
            }
            (_, Some(t)) if t <= limit_ms => {
                let Some((_, event)) = self.events.pop() else {
                    return false;
                };
                self.now_ms = self.now_ms.max(t);
                self.changed = event.server().map_or(Changed::All, Changed::One);
                self.handle_event(event);
                true
            }
            _ => false,
        }
    }

    fn push_event(&mut self, time_ms: u64, event: Event) {
        self.events.push(time_ms, event);
    }

    fn index(&self, id: NodeId) -> Option<usize> {
        let index = (id.0 as usize).checked_sub(1)?;
        (index < self.nodes.len()).then_some(index)
    }

    fn node_config(&self, id: NodeId, incarnation: u64) -> Config {
        let mut config = Config::new(id, combine(combine(self.config.seed, &id.0), &incarnation));
        config.election_timeout_ticks = self.config.election_timeout_ticks;
        config.heartbeat_interval_ticks = self.config.heartbeat_interval_ticks;
        config.pre_vote = self.config.pre_vote;
        config.check_quorum = self.config.check_quorum;
        config.campaigns = self.config.campaigns(id);
        config.snapshot_interval_entries = self.config.snapshot_interval_entries;
        config.snapshot_trailing_entries = self.config.snapshot_trailing_entries;
        if self.config.entries_per_message_max > 0 {
            config.entries_per_message_max = self.config.entries_per_message_max;
        }
        if self.config.inflight_messages_max > 0 {
            config.inflight_messages_max = self.config.inflight_messages_max;
        }
        config
    }

    fn start_node(&mut self, id: NodeId) {
        let Some(k) = self.index(id) else {
            return;
        };
        let incarnation = self.nodes[k].incarnation + 1;
        let config = self.node_config(id, incarnation);
        let storage = &mut self.nodes[k].storage;
        storage.staging.clear();
        let machine = match &storage.snapshot {
            Some((_, data)) => SimStateMachine::restore(data).unwrap_or_default(),
            None => SimStateMachine::default(),
        };
        let restored = Restored {
            hard_state: storage.hard_state,
            snapshot: storage.snapshot.as_ref().map(|(meta, _)| meta.clone()),
            entries: storage.entries.clone(),
            applied: machine.applied,
        };
        let mut raft = match RaftNode::new(config, restored) {
            Ok(raft) => raft,
            Err(error) => {
                self.checker.restore_failed(id, self.now_ms, format!("{error}"));
                return;
            }
        };
        campaigns::tell_who_campaigns(&self.config, &mut raft);
        let now = self.now_ms;
        let node = &mut self.nodes[k];
        node.incarnation = incarnation;
        node.paused = false;
        node.held.clear();
        node.persist_done_held = false;
        node.persisting = None;
        let snapshot = node.storage.snapshot.as_ref().map(|(meta, _)| (meta.index, meta.term, machine.chain));
        node.machine = machine;
        self.checker.node_started(&mut node.track, snapshot, &node.storage.entries, now);
        self.rules.started(id);
        node.raft = Some(raft);
        if let Some(workload) = self.workload.as_mut() {
            let data = self.nodes[k].storage.snapshot.as_ref().map(|(_, data)| data.clone());
            if let Err(why) = workload.started(k, data.as_deref()) {
                self.checker.restore_failed(id, now, why);
            }
        }
        if self.config.adversary.drifting_clocks {
            // A clock 20% slow (12 ms ticks for 10 ms) stays within a lease's drift bound.
            let slow = self.adversary_rng.chance(1, 2);
            let tick_ms = self.config.tick_ms;
            self.nodes[k].tick_period_ms = if slow { tick_ms + tick_ms / 5 } else { tick_ms };
        }
        // Nodes tick at their own phase so they do not act in lockstep.
        let phase = self.rng.range(0, self.config.tick_ms);
        self.push_event(now + phase + 1, Event::Tick { node: id, incarnation });
        self.after_node_changed(k);
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Tick { node, incarnation } => {
                let Some(k) = self.index(node) else {
                    return;
                };
                if self.nodes[k].incarnation != incarnation || self.nodes[k].raft.is_none() {
                    return;
                }
                let next = self.now_ms + self.nodes[k].tick_period_ms;
                self.push_event(next, Event::Tick { node, incarnation });
                if self.nodes[k].paused {
                    return;
                }
                self.trace_hash = trace_combine(self.trace_hash, &(self.now_ms, 't', node.0));
                if let Some(raft) = self.nodes[k].raft.as_mut() {
                    raft.tick();
                }
                self.after_node_changed(k);
            }
            Event::Deliver(in_flight) => {
                let Some(k) = self.index(in_flight.message.to) else {
                    self.stats.messages_dropped += 1;
                    return;
                };
                match self.nodes[k].liveness() {
                    Liveness::Down => self.stats.messages_dropped += 1,
                    Liveness::Paused => self.nodes[k].held.push_back(in_flight.message),
                    Liveness::Up => {
                        self.deliver(k, in_flight.message);
                        self.after_node_changed(k);
                    }
                }
            }
            Event::PersistDone { node, incarnation } => {
                let Some(k) = self.index(node) else {
                    return;
                };
                if self.nodes[k].incarnation != incarnation || self.nodes[k].persisting.is_none() {
                    return;
                }
                if self.nodes[k].paused {
                    self.nodes[k].persist_done_held = true;
                    return;
                }
                self.finish_persist(k);
                self.after_node_changed(k);
            }
            Event::Workload(event) => self.handle_workload(event),
        }
    }

    /// Client traffic: a request reaches a server (dropped if it is down, held if paused), or
    /// an answer or a timer reaches a client.
    fn handle_workload(&mut self, event: WorkloadEvent) {
        let now = self.now_ms;
        self.trace_hash = trace_combine(self.trace_hash, &(now, 'w', event.trace_key()));
        let server = event.server().and_then(|id| self.index(id));
        let Some(workload) = self.workload.as_mut() else {
            return;
        };
        let mut changed = None;
        match event {
            WorkloadEvent::Timer { client, timer } => workload.client_timer(client, timer, now),
            WorkloadEvent::ToClient(message) => workload.client_answer(message, now),
            WorkloadEvent::ToServer(message) => {
                let Some(k) = server else {
                    return;
                };
                let node = &mut self.nodes[k];
                match (node.paused, node.raft.as_mut()) {
                    (_, None) => {}
                    (true, Some(_)) => workload.hold(k, message),
                    (false, Some(raft)) => {
                        workload.serve(k, raft, message, now);
                        changed = Some(k);
                    }
                }
                self.note_workload_reads();
            }
        }
        self.flush_workload();
        if let Some(k) = changed {
            self.after_node_changed(k);
        }
    }

    /// Puts what the workload sent on the network; client i sits next to its home server, so
    /// its messages take that server's links (and are cut with them).
    fn flush_workload(&mut self) {
        let Some(workload) = self.workload.as_mut() else {
            return;
        };
        let (cut, links, default) = (&self.cut, &self.links, self.config.link);
        let events = workload.route(self.now_ms, |from, to| {
            if cut.contains(&(from, to)) {
                return None;
            }
            Some(links.get(&(from, to)).copied().unwrap_or(default))
        });
        for (time_ms, event) in events {
            self.push_event(time_ms, Event::Workload(event));
        }
    }

    fn deliver(&mut self, k: usize, message: Message) {
        self.trace_hash = trace_combine(self.trace_hash, &(self.now_ms, &message));
        self.stats.messages_delivered += 1;
        let rejection = self.rejection_arriving(k, &message);
        let Some(raft) = self.nodes[k].raft.as_mut() else {
            return;
        };
        if raft.step(message).is_err() {
            self.stats.messages_rejected += 1;
        }
        if let Some(rejection) = rejection {
            self.rejection_handled(k, rejection);
        }
    }

    /// After anything happened to node `k`: run the checks and hand out its next batch.
    fn after_node_changed(&mut self, k: usize) {
        self.observe(k);
        loop {
            let node = &mut self.nodes[k];
            if node.paused || node.persisting.is_some() {
                return;
            }
            let Some(raft) = node.raft.as_mut() else {
                return;
            };
            if !raft.has_ready() {
                return;
            }
            let mut ready = raft.ready();
            let now = self.now_ms;
            if let Some(meta) = &ready.snapshot_installed {
                // The checker follows the node's log from the snapshot on.
                let node = &mut self.nodes[k];
                let mut staging = node.storage.staging.clone();
                let data = stage_chunks(&mut staging, &ready.snapshot_chunks, Some(meta)).unwrap_or(staging);
                let chain = SimStateMachine::restore(&data).map_or(0, |m| m.chain);
                let applied = node.track.applied();
                self.rules.snapshot_installed(&mut self.checker, node.id, meta.index, applied, now);
                let node = &mut self.nodes[k];
                self.checker.snapshot_restored(node.id, &mut node.track, meta.index, meta.term, chain, now);
            }
            self.checker.entries_appended(&mut self.nodes[k].track, &ready.entries, now);
            self.leader_appended(k, &ready.entries);
            if !ready.read_states.is_empty() {
                self.read_indexes_given(k, &ready.read_states);
            }
            if let Some(workload) = self.workload.as_mut() {
                workload.read_states(k, &ready.read_states);
                self.flush_workload();
            }
            if !ready.read_states.is_empty() {
                let machine = &self.nodes[k].machine;
                let store = self.workload.as_deref().and_then(|w| w.store(self.nodes[k].id));
                self.client_reads.read_states(
                    k,
                    &ready.read_states,
                    machine,
                    store,
                    now,
                    &mut self.trace_hash,
                );
            }
            for message in core::mem::take(&mut ready.messages) {
                self.send(message);
            }
            self.serve_snapshot_chunks(k, &ready.snapshot_chunks_wanted);
            self.nodes[k].persisting = Some(ready);
            if self.config.disk_latency_ms > 0 {
                let node = &self.nodes[k];
                let event = Event::PersistDone { node: node.id, incarnation: node.incarnation };
                self.push_event(now + self.config.disk_latency_ms, event);
                return;
            }
            self.finish_persist(k);
            self.observe(k);
        }
    }

    /// The batch is durable: store it, send what waited for it, apply, advance.
    fn finish_persist(&mut self, k: usize) {
        let Some(mut ready) = self.nodes[k].persisting.take() else {
            return;
        };
        self.stats.persists += 1;
        let node = &mut self.nodes[k];
        let installed = stage_chunks(
            &mut node.storage.staging,
            &ready.snapshot_chunks,
            ready.snapshot_installed.as_ref(),
        );
        if let Some(meta) = ready.snapshot_installed.take() {
            // The staged snapshot becomes the current one; the stored log starts over.
            let data = match installed {
                Some(data) => Bytes::from(data),
                None => Bytes::from(core::mem::take(&mut node.storage.staging)),
            };
            node.machine = SimStateMachine::restore(&data).unwrap_or_default();
            if let Some(workload) = self.workload.as_mut() {
                if let Err(why) = workload.snapshot_installed(k, &data) {
                    self.checker.restore_failed(node.id, self.now_ms, why);
                }
            }
            node.storage.snapshot = Some((meta, data));
            node.storage.entries.clear();
            self.stats.snapshots_installed += 1;
        }
        let hard_state_changed = ready.hard_state.is_some();
        if let Some(hard_state) = ready.hard_state {
            node.storage.hard_state = hard_state;
        }
        let configuration_written = adversary::last_configuration(&ready.entries);
        // The batch is done with its entries: the disk takes them instead of copies.
        node.storage.store_entries(core::mem::take(&mut ready.entries));
        if let Some(written) = configuration_written {
            self.configuration_persisted(k, written);
        }
        if hard_state_changed {
            self.hard_state_persisted(k);
        }
        for message in core::mem::take(&mut ready.messages_after_persist) {
            self.leaving_after_persist(k, &message);
            self.send(message);
        }
        let now = self.now_ms;
        let node = &mut self.nodes[k];
        for entry in &ready.committed_entries {
            let hash = entry_hash(entry);
            self.checker.entry_applied_hashed(node.id, &mut node.track, entry, hash, now);
            node.machine.apply_hashed(entry, hash);
            if let Some(workload) = self.workload.as_mut() {
                workload.apply(k, entry);
            }
        }
        self.flush_workload();
        let store = self.workload.as_deref().and_then(|w| w.store(self.nodes[k].id));
        self.client_reads.applied(k, &self.nodes[k].machine, store, now, &mut self.trace_hash);
        let node = &mut self.nodes[k];
        if let Some(raft) = node.raft.as_mut() {
            raft.advance();
        }
        if self.nodes[k].raft.as_ref().and_then(RaftNode::snapshot_wanted).is_some() {
            self.take_snapshot(k);
        }
    }

    /// The node snapshots its state machine and compacts its log behind it.
    fn take_snapshot(&mut self, k: usize) {
        let node = &mut self.nodes[k];
        let Some(raft) = node.raft.as_mut() else {
            return;
        };
        let index = node.machine.applied;
        if index != raft.applied_index() {
            return; // A batch is still being applied; try again later.
        }
        let data = match self.workload.as_ref().map(|workload| workload.snapshot(k)) {
            None => node.machine.snapshot(),
            // The store's state follows the machine's, so one snapshot carries both.
            Some((kv_index, kv)) if kv_index == index => {
                let mut data = node.machine.snapshot().to_vec();
                data.extend_from_slice(&kv);
                Bytes::from(data)
            }
            Some(_) => return,
        };
        if let Ok(created) = raft.snapshot_created(index) {
            node.storage.snapshot = Some((created.meta, data));
            node.storage.compact(created.compact_through);
            self.stats.snapshots_taken += 1;
        }
    }

    /// Leader: read the chunks the core asked for from the stored snapshot and hand them back.
    fn serve_snapshot_chunks(&mut self, k: usize, wanted: &[crate::ready::SnapshotChunkRequest]) {
        let node = &mut self.nodes[k];
        let (Some(raft), Some((meta, data))) = (node.raft.as_mut(), node.storage.snapshot.as_ref()) else {
            return;
        };
        for request in wanted {
            if request.meta != *meta {
                continue;
            }
            let start = (request.offset as usize).min(data.len());
            let end = (start + SNAPSHOT_CHUNK_BYTES).min(data.len());
            let last = end == data.len();
            raft.send_snapshot_chunk(request.to, meta.index, request.offset, data.slice(start..end), last);
        }
    }

    fn observe(&mut self, k: usize) {
        self.observe_rules(k);
        let now = self.now_ms;
        let node = &mut self.nodes[k];
        let Some(raft) = node.raft.as_ref() else {
            return;
        };
        if let Some((target, term)) = self.transfer_pending {
            if raft.id() == target && raft.role() == Role::Leader && raft.term() > term {
                self.stats.leader_transfers += 1;
                self.transfer_pending = None;
            }
        }
        self.checker.observe_node(
            node.id,
            &mut node.track,
            raft.role() == Role::Leader,
            raft.term(),
            raft.commit_index(),
            |index| raft.term_at(index),
            raft.snapshot_index(),
            now,
        );
    }

    /// Puts a message on the wire: the link decides whether, when and how often it arrives.
    fn send(&mut self, message: Message) {
        self.stats.messages_sent += 1;
        if let crate::message::MessageBody::AppendEntries { entries, .. } = &message.body {
            self.stats.entries_sent += entries.len() as u64;
        }
        self.message_ids += 1;
        let id = self.message_ids;
        let key = (message.from, message.to);
        if self.cut.contains(&key) {
            self.stats.messages_dropped += 1;
            return;
        }
        let link = self.links.get(&key).copied().unwrap_or(self.config.link);
        if link.loss_per_mille > 0 && self.rng.chance(u64::from(link.loss_per_mille), 1000) {
            self.stats.messages_dropped += 1;
            return;
        }
        let copies =
            if link.duplicate_per_mille > 0 && self.rng.chance(u64::from(link.duplicate_per_mille), 1000) {
                self.stats.messages_duplicated += 1;
                2
            } else {
                1
            };
        // The last copy takes the message itself: a clone only for a duplicate.
        let mut message = Some(message);
        for copy in 1..=copies {
            let latency = self.rng.range(link.latency_ms_min, link.latency_ms_max + 1);
            let deliver_ms = self.now_ms + latency;
            let message = if copy == copies { message.take() } else { message.clone() };
            let Some(message) = message else {
                return;
            };
            let mut in_flight = InFlight { id, sent_ms: self.now_ms, deliver_ms, message };
            if copy == copies && self.config.adversary != Adversary::default() {
                self.adversary_on_send(&mut in_flight);
            }
            let deliver_ms = in_flight.deliver_ms;
            self.push_event(deliver_ms, Event::Deliver(in_flight));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ready::SnapshotChunk;
    use crate::types::Term;

    fn chunk(index: u64, offset: u64, data: &'static [u8], last: bool) -> SnapshotChunk {
        let meta = SnapshotMeta {
            index: LogIndex(index),
            term: Term(1),
            membership: Membership::default(),
            membership_index: LogIndex(0),
        };
        SnapshotChunk { meta, offset, data: Bytes::from_static(data), last }
    }

    /// Issue 19, item 5: a batch that finishes snapshot 10 and starts snapshot 20 installs
    /// snapshot 10's bytes and keeps snapshot 20's first chunk staged. Staging every chunk and
    /// then installing the staging (as before) installed "next" alone.
    #[test]
    fn the_installed_snapshot_is_the_one_whose_last_chunk_came() {
        let mut staging = b"left over".to_vec();
        let chunks =
            [chunk(10, 0, b"whole-", false), chunk(10, 6, b"snapshot", true), chunk(20, 0, b"next", false)];
        let installed = &chunks[1].meta;
        let data = stage_chunks(&mut staging, &chunks, Some(installed));
        assert_eq!(data.as_deref(), Some(&b"whole-snapshot"[..]));
        assert_eq!(staging, b"next");
        // Nothing installed: everything stays staged, in order.
        let mut staging = Vec::new();
        assert_eq!(stage_chunks(&mut staging, &chunks[..1], None), None);
        assert_eq!(staging, b"whole-");
    }
}

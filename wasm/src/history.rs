//! The playground's client history: every key-value operation with its invocation and
//! response times and what the client saw, and each node's crashes, pauses, partitions and
//! leader terms as bands, for the history panel and the linearizability checker (thesis §6).
//!
//! The simulator has clients for reads ([`raft_core::sim::ClientRead`]) but none for writes:
//! a `put` is a command proposed to the leader. So this recorder plays the writing client. It
//! sees each proposal as it is fed (the invocation, at the input's time), and completes it when
//! the node it was proposed to applies it (where a server would answer), with that node's
//! store's answer. A definite refusal (no leader, or the leader refused) is a failure; if the
//! node crashes first the client gives up and the outcome stays unknown: the entry may still
//! commit through a new leader.
//!
//! It is a pure observer, called after every simulator step like the event log, so a run
//! replayed from its script records the same history, and a checkpoint (a clone) carries it.

use alloc::vec::Vec;
use raft_core::kv::{Command, CommandBody, KvConfig, KvStore};
use raft_core::linearizability::{History, Observed, Op, OperationRecord};
use raft_core::sim::{split_command, Changed, Input, Liveness, Simulation};
use raft_core::state_machine::StateMachine;
use raft_core::{Bytes, Entry, EntryPayload, LogIndex, Role, Term};
use serde::Serialize;

/// One operation proposed through the log.
#[derive(Clone, Debug)]
struct LogOp {
    op: Op,
    /// The encoded command, to recognise it when applied.
    command: Bytes,
    /// Index of the node it was proposed to.
    node: usize,
    invoke_ms: u64,
    complete_ms: Option<u64>,
    observed: Observed,
}

/// A node's store as this recorder rebuilt it from the commands the node applied.
#[derive(Clone, Debug)]
struct Mirror {
    store: KvStore,
    commands: u64,
    /// Bytes of the node's encoded commands consumed so far.
    offset: usize,
}

impl Mirror {
    fn new() -> Mirror {
        Mirror {
            store: KvStore::new(KvConfig::default()).expect("the default config is valid"),
            commands: 0,
            offset: 0,
        }
    }
}

/// What a band on a node's row shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BandKind {
    /// Crashed.
    Down,
    /// Paused.
    Paused,
    /// Cut off from at least one other node.
    Cut,
    /// Leader of a term.
    Leader,
}

/// A stretch of time on a node's row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Band {
    /// The node (1-based).
    pub node: u64,
    /// What it was.
    pub kind: BandKind,
    /// The term, for a leader band.
    pub term: u64,
    /// When it began.
    pub start_ms: u64,
    /// When it ended; `None` if it still holds.
    pub end_ms: Option<u64>,
}

/// Per node: which bands are open (indices into `bands`).
#[derive(Clone, Copy, Debug, Default)]
struct Open {
    down: Option<usize>,
    paused: Option<usize>,
    cut: Option<usize>,
    leader: Option<(usize, Term)>,
}

/// Records the playground's client history (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct HistoryRecorder {
    ops: Vec<LogOp>,
    /// Operations still waiting for their node to apply them (indices into `ops`): few at a
    /// time, so matching an applied command against them is cheap.
    waiting: Vec<usize>,
    mirrors: Vec<Mirror>,
    open: Vec<Open>,
    bands: Vec<Band>,
    /// Operations fed but not yet run, with the refusal count before them.
    unsettled: Vec<(usize, u64)>,
    /// A link or liveness input was fed: recompute who is cut off once it ran.
    links_dirty: bool,
    /// Bumped on every change, so the panel re-checks only when something happened.
    revision: u64,
}

impl HistoryRecorder {
    /// Notes `input`, about to run at `time_ms`; call before the simulation gets it.
    pub fn fed(&mut self, simulation: &Simulation, time_ms: u64, input: &Input) {
        let (node, data) = match input {
            Input::Propose { data } => (simulation.leader(), data),
            Input::ProposeTo { node, data } => (Some(*node), data),
            Input::Partition { .. }
            | Input::CutLink { .. }
            | Input::RestoreLink { .. }
            | Input::Heal
            | Input::Crash(_)
            | Input::WipeDisk(_)
            | Input::Restart(_) => {
                self.links_dirty = true;
                return;
            }
            _ => return,
        };
        // Plain proposals (not key-value commands) are no client operation.
        let Ok(Command { body: CommandBody::Request { operation, .. }, .. }) = Command::decode(data) else {
            return;
        };
        let Some(op) = Op::from_kv(&operation) else { return };
        let index = node.and_then(|id| simulation.nodes().iter().position(|n| n.id == id));
        let mut record = LogOp {
            op,
            command: data.clone(),
            node: index.unwrap_or(0),
            invoke_ms: time_ms,
            complete_ms: None,
            observed: Observed::Unknown,
        };
        match index {
            // Nobody leads: the proposal is refused at once.
            None => (record.complete_ms, record.observed) = (Some(time_ms), Observed::Failed),
            Some(_) => {
                self.unsettled.push((self.ops.len(), simulation.stats().proposals_refused));
                self.waiting.push(self.ops.len());
            }
        }
        self.ops.push(record);
        self.revision += 1;
    }

    /// Looks at what the last simulator step changed.
    pub fn observe(&mut self, simulation: &Simulation) {
        let now = simulation.now_ms();
        let nodes = simulation.nodes().len();
        if self.mirrors.len() != nodes {
            self.mirrors.resize_with(nodes, Mirror::new);
            self.open.resize(nodes, Open::default());
        }
        self.settle(simulation, now);
        let range = match simulation.changed() {
            Changed::One(id) => {
                let k = (id.0 as usize).wrapping_sub(1).min(nodes);
                k..(k + 1).min(nodes)
            }
            Changed::All => 0..nodes,
        };
        for k in range {
            self.observe_node(simulation, k, now);
        }
        if self.links_dirty && self.unsettled.is_empty() {
            self.links_dirty = false;
            for k in 0..nodes {
                self.observe_links(simulation, k, now);
            }
        }
    }

    /// Proposals that ran since: were they refused?
    fn settle(&mut self, simulation: &Simulation, now: u64) {
        let refused = simulation.stats().proposals_refused;
        let Some(&(_, refused_before)) = self.unsettled.first() else { return };
        if self.unsettled.iter().any(|&(op, _)| self.ops[op].invoke_ms > now) {
            return;
        }
        // Refusals count up in the order the proposals ran: the last ones were refused.
        let refusals = refused.saturating_sub(refused_before) as usize;
        let settled = core::mem::take(&mut self.unsettled);
        for &(op, _) in settled.iter().rev().take(refusals) {
            self.waiting.retain(|&waiting| waiting != op);
            let record = &mut self.ops[op];
            (record.complete_ms, record.observed) = (Some(record.invoke_ms), Observed::Failed);
        }
        self.revision += 1;
    }

    fn observe_node(&mut self, simulation: &Simulation, k: usize, now: u64) {
        let node = &simulation.nodes()[k];
        let liveness = node.liveness();
        let open = self.open[k];
        let id = node.id.0;
        if (liveness == Liveness::Down) != open.down.is_some() {
            self.links_dirty = true;
            self.open[k].down = self.toggle(open.down, id, BandKind::Down, 0, now);
            if liveness == Liveness::Down {
                // Its clients lose the connection: they will never learn these outcomes.
                let ops = &mut self.ops;
                self.waiting.retain(|&op| {
                    let gave_up = ops[op].node == k;
                    if gave_up {
                        ops[op].complete_ms = Some(now);
                    }
                    !gave_up
                });
            }
        }
        if (liveness == Liveness::Paused) != open.paused.is_some() {
            self.open[k].paused = self.toggle(open.paused, id, BandKind::Paused, 0, now);
        }
        let leading = node.raft.as_ref().filter(|raft| raft.role() == Role::Leader).map(|raft| raft.term());
        if leading != open.leader.map(|(_, term)| term) {
            if let Some((band, _)) = open.leader {
                self.bands[band].end_ms = Some(now);
            }
            self.open[k].leader = leading.map(|term| {
                self.bands.push(Band {
                    node: id,
                    kind: BandKind::Leader,
                    term: term.0,
                    start_ms: now,
                    end_ms: None,
                });
                (self.bands.len() - 1, term)
            });
            self.revision += 1;
        }
        self.sync_mirror(simulation, k, now);
    }

    /// Opens a band if `open` is `None`, closes it otherwise.
    fn toggle(
        &mut self,
        open: Option<usize>,
        node: u64,
        kind: BandKind,
        term: u64,
        now: u64,
    ) -> Option<usize> {
        self.revision += 1;
        match open {
            Some(band) => {
                self.bands[band].end_ms = Some(now);
                None
            }
            None => {
                self.bands.push(Band { node, kind, term, start_ms: now, end_ms: None });
                Some(self.bands.len() - 1)
            }
        }
    }

    fn observe_links(&mut self, simulation: &Simulation, k: usize, now: u64) {
        let me = simulation.nodes()[k].id;
        let cut = simulation.nodes().iter().any(|other| {
            other.id != me && (simulation.is_cut(me, other.id) || simulation.is_cut(other.id, me))
        });
        let open = self.open[k].cut;
        if cut != open.is_some() {
            self.open[k].cut = self.toggle(open, me.0, BandKind::Cut, 0, now);
        }
    }

    /// Applies the commands node `k` applied since last time to its mirror store, and completes
    /// the operations proposed to `k` that they answer.
    fn sync_mirror(&mut self, simulation: &Simulation, k: usize, now: u64) {
        // Only a node some client waits on needs its store now; the others catch up from where
        // they stopped when one does.
        if !self.waiting.iter().any(|&op| self.ops[op].node == k) {
            return;
        }
        let machine = &simulation.nodes()[k].machine;
        let count = machine.command_count();
        if count == self.mirrors[k].commands {
            return;
        }
        if count < self.mirrors[k].commands {
            // Restarted from an older snapshot (or a wiped disk): rebuild from the start.
            self.mirrors[k] = Mirror::new();
        }
        let encoded = machine.encoded_commands();
        let mirror = &mut self.mirrors[k];
        let mut rest = encoded.get(mirror.offset..).unwrap_or_default();
        while let Some((command, after)) = split_command(rest) {
            mirror.commands += 1;
            let entry = Entry {
                term: Term(1),
                index: LogIndex(mirror.commands),
                payload: EntryPayload::Command(Bytes::copy_from_slice(command)),
            };
            let response = mirror.store.apply(&entry);
            rest = after;
            let ops = &self.ops;
            let answered =
                self.waiting.iter().position(|&op| ops[op].node == k && ops[op].command == command);
            if let Some(position) = answered {
                let record = &mut self.ops[self.waiting.remove(position)];
                record.complete_ms = Some(now);
                record.observed = Observed::from_kv(&response);
                self.revision += 1;
            }
        }
        mirror.offset = encoded.len() - rest.len();
    }

    /// A number that changes whenever the history or the bands do.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Node bands, oldest first.
    pub fn bands(&self) -> &[Band] {
        &self.bands
    }

    /// The history so far: the operations through the log and the simulator's client reads,
    /// by invocation, each on a client row of its own (see [`assign_clients`]).
    pub fn history(&self, simulation: &Simulation) -> History {
        let writes = self.ops.iter().map(|record| OperationRecord {
            client: 0,
            invoke_time: record.invoke_ms,
            complete_time: record.complete_ms,
            op: record.op.clone(),
            observed: record.observed.clone(),
        });
        let reads = simulation.client_reads().map(|read| OperationRecord {
            client: 0,
            invoke_time: read.asked_ms,
            complete_time: read.answered_ms,
            op: Op::Get { key: read.key.clone() },
            observed: match &read.answer {
                None => Observed::Unknown,
                Some(Ok(value)) => Observed::Value(value.clone()),
                // A refused read returned nothing: it constrains nothing.
                Some(Err(_)) => Observed::Failed,
            },
        });
        let mut records: Vec<OperationRecord> = writes.chain(reads).collect();
        records.sort_by_key(|record| record.invoke_time);
        assign_clients(&mut records);
        History::new(records).expect("the recorder completes each operation once, after its invocation")
    }
}

/// The playground has no client identities, so each operation goes to the first client row
/// free at its invocation: every row is then sequential, as a real client is.
pub fn assign_clients(records: &mut [OperationRecord]) {
    let mut busy_until: Vec<Option<u64>> = Vec::new();
    for record in records.iter_mut() {
        let free = busy_until.iter().position(|until| until.is_some_and(|until| until < record.invoke_time));
        let row = free.unwrap_or_else(|| {
            busy_until.push(None);
            busy_until.len() - 1
        });
        busy_until[row] = record.complete_time;
        record.client = row as u64 + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::SimCluster;
    use raft_core::linearizability::{check, Verdict};
    use raft_core::sim::{Script, SimConfig};
    use raft_core::NodeId;

    fn put(key: &str, value: &str, time_ms: u64) -> Input {
        let operation = raft_core::kv::Operation::Put {
            key: Bytes::from(String::from(key)),
            value: Bytes::from(String::from(value)),
        };
        Input::Propose {
            data: Command { timestamp_ms: time_ms, body: CommandBody::Request { session: None, operation } }
                .encode(),
        }
    }

    use alloc::string::String;

    #[test]
    fn a_put_completes_when_its_leader_applies_it() {
        let mut script = Script::new();
        script.push(600, put("x", "1", 600));
        script.push(
            650,
            Input::Read { node: NodeId(2), key: Bytes::from_static(b"x"), mode: raft_core::ReadMode::Stale },
        );
        let mut cluster = SimCluster::with_script(SimConfig::new(3, 7), script).unwrap();
        cluster.run_to(1_000);
        let history = cluster.history_recorder().history(cluster.simulation());
        let records = history.records();
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[0].observed, Observed::Done);
        let complete = records[0].complete_time.expect("applied within 400 ms");
        assert!(complete > 600 && complete < 1_000, "{complete}");
        assert_eq!(check(&history).verdict(), Verdict::Linearizable);
        // The leader band of the first term is there.
        assert!(cluster.history_recorder().bands().iter().any(|band| band.kind == BandKind::Leader));
    }

    #[test]
    fn a_crash_before_apply_leaves_the_outcome_unknown() {
        let mut cluster = SimCluster::with_script(SimConfig::new(3, 7), Script::new()).unwrap();
        cluster.run_to(600);
        let leader = cluster.simulation().leader().expect("a leader");
        cluster.act_input(put("x", "1", 601));
        cluster.act_input(Input::Crash(leader));
        cluster.run_to(2_000);
        let history = cluster.history_recorder().history(cluster.simulation());
        assert_eq!(history.records()[0].observed, Observed::Unknown, "{:?}", history.records());
        let down =
            cluster.history_recorder().bands().iter().find(|band| band.kind == BandKind::Down).copied();
        assert_eq!(down.map(|band| band.node), Some(leader.0));
    }

    #[test]
    fn rows_are_sequential() {
        let mut records: Vec<OperationRecord> = [(0, Some(10)), (5, Some(6)), (7, None), (11, Some(12))]
            .into_iter()
            .map(|(invoke_time, complete_time)| OperationRecord {
                client: 0,
                invoke_time,
                complete_time,
                op: Op::get("x"),
                observed: Observed::Unknown,
            })
            .collect();
        assign_clients(&mut records);
        let rows: Vec<u64> = records.iter().map(|record| record.client).collect();
        assert_eq!(rows, [1, 2, 2, 1]);
    }
}

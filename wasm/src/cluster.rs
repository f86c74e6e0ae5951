//! [`SimCluster`]: a [`Simulation`] behind an opaque handle, with the input script kept beside
//! it so the timeline can rewind, replay and fork.
//!
//! ## Why the script lives here and not in the simulation
//! The simulation runs inputs from its own script, but a copy taken as a checkpoint keeps the
//! script as it was when copied, and a simulation cannot forget inputs it was given. The
//! playground needs both: a checkpoint must replay inputs added after it was taken, and acting in
//! the past must drop the old future. So this handle keeps the *master* script and hands each
//! input to the simulation just before its time. That is exactly equivalent to a script given up
//! front: the simulation runs everything before the input's time, then the input goes ahead of
//! the events of its own millisecond, as [`Simulation::step_once`] orders them.
//!
//! ## Why live actions land one millisecond ahead
//! After `advance` the events of the current millisecond have run. An input stamped with that
//! millisecond would run *before* them on replay, and the replay would differ. Stamped `now + 1`,
//! it runs in the same place live and on replay.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use raft_core::sim::{Input, Script, Simulation};
use raft_core::NodeId;
use wasm_bindgen::prelude::*;

use crate::errors::{range_error, type_error};
use crate::events::EventLog;
use crate::frame::{
    message_frame, node_frame, MESSAGE_FIELDS, MESSAGE_KINDS, MESSAGE_STRIDE, NODE_FIELDS, NODE_STRIDE,
};
use crate::history::HistoryRecorder;
#[cfg(feature = "playground")]
use crate::input::{check_read_key, ReadModeName};
use crate::input::{describe_input, from_input, to_input, ScriptItem};
use crate::options::ClusterOptions;
use crate::reads::read_view;
use crate::run_text::{decode_run, encode_run};
#[cfg(feature = "playground")]
use crate::snapshot::message_view;
use crate::snapshot::{kv_view, log_view, node_view, stats_view, violation_view};
use crate::tagged::input_to_js;

/// Most messages one `messageFrame` call returns; a flood is drawn as its first part.
pub const MESSAGES_PER_FRAME_MAX: usize = 4096;

/// A simulated Raft cluster running the real core.
#[wasm_bindgen]
#[derive(Clone)]
pub struct SimCluster {
    simulation: Simulation,
    /// Every input of the run, in time order; `script.inputs[..fed]` were handed to the
    /// simulation. Invariant: every input not yet fed is later than `simulation.now_ms()`,
    /// except right after it is fed, when it runs before anything else.
    script: Script,
    fed: usize,
    events: EventLog,
    /// The clients' operations and the nodes' bands, for the history panel.
    history: HistoryRecorder,
    /// Reused buffer of the node rows.
    rows: Vec<f64>,
}

#[wasm_bindgen]
impl SimCluster {
    /// A freshly bootstrapped cluster. `options` is `{nodes, seed, tickMs,
    /// electionTimeoutTicks, heartbeatIntervalTicks, latencyMsMin, latencyMsMax, lossPerMille,
    /// duplicatePerMille, diskLatencyMs, preVote, checkQuorum}`, every field optional.
    ///
    /// # Errors
    /// `TypeError` for an unknown field or a value of the wrong type, `RangeError` for a value
    /// out of range.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<SimCluster, JsValue> {
        let options: ClusterOptions = if options.is_undefined() || options.is_null() {
            ClusterOptions::default()
        } else {
            check_option_names(&options)?;
            serde_wasm_bindgen::from_value(options).map_err(|e| type_error(&format!("options: {e}")))?
        };
        let config = options.to_config().map_err(|e| range_error(&e))?;
        SimCluster::build(config, Script::new())
    }

    /// The cluster a run text describes (see `run()`), at time 0.
    ///
    /// # Errors
    /// `RangeError` with what is wrong with the text.
    #[wasm_bindgen(js_name = fromRun)]
    pub fn from_run(text: &str) -> Result<SimCluster, JsValue> {
        let (config, script) = decode_run(text).map_err(|e| range_error(&e))?;
        SimCluster::build(config, script)
    }

    /// A cluster from an options object (as for the constructor) and a script text (as
    /// `script()` writes it), at time 0.
    ///
    /// # Errors
    /// `TypeError` or `RangeError` as for the constructor, `RangeError` for a bad script text.
    #[cfg(feature = "playground")]
    #[wasm_bindgen(js_name = fromScript)]
    pub fn from_script(options: JsValue, script: &str) -> Result<SimCluster, JsValue> {
        let mut cluster = SimCluster::new(options)?;
        let nodes = cluster.simulation.config().nodes;
        cluster.script = crate::run_text::decode_script(script, nodes).map_err(|e| range_error(&e))?;
        Ok(cluster)
    }

    /// The run as compact URL-safe text: config and every input, past and scheduled.
    pub fn run(&self) -> String {
        encode_run(self.simulation.config(), &self.script)
    }

    /// Only the input script, as the text `run()` ends with (see the run_text module).
    #[cfg(feature = "playground")]
    pub fn script(&self) -> String {
        crate::run_text::encode_script(&self.script)
    }

    /// The options that recreate this cluster (every field filled in).
    ///
    /// # Errors
    /// Never in practice; a serialisation failure becomes a `TypeError`.
    #[cfg(feature = "playground")]
    pub fn options(&self) -> Result<JsValue, JsValue> {
        to_js(&ClusterOptions::from_config(self.simulation.config()))
    }

    /// An independent copy at the same moment (a checkpoint, or a fork). Its event log starts
    /// empty.
    #[wasm_bindgen(js_name = clone)]
    pub fn copy(&self) -> SimCluster {
        let mut copy = self.clone();
        copy.events.clear();
        copy
    }

    /// Takes `other`'s script as this cluster's future. Both must agree on every input this
    /// cluster already ran (a checkpoint of `other`'s own timeline does).
    ///
    /// # Errors
    /// `RangeError` if the runs have diverged.
    #[wasm_bindgen(js_name = adoptScript)]
    pub fn adopt_script(&mut self, other: &SimCluster) -> Result<(), JsValue> {
        let fed = self.fed;
        if other.script.inputs.len() < fed || other.script.inputs[..fed] != self.script.inputs[..fed] {
            return Err(range_error("the two runs differ before this cluster's time"));
        }
        self.script = other.script.clone();
        Ok(())
    }

    /// Forgets every input scheduled after `time_ms` (never one already run): acting in the
    /// past forks the timeline.
    #[wasm_bindgen(js_name = truncateScriptAfter)]
    pub fn truncate_script_after(&mut self, time_ms: f64) {
        let keep_after = time_ms.max(0.0) as u64;
        let keep = self.fed + self.script.inputs[self.fed..].partition_point(|(t, _)| *t <= keep_after);
        self.script.inputs.truncate(keep);
    }

    /// Adds an input to happen at `time_ms`, which must be later than now. `input` is an object
    /// such as `{type: 'crash', node: 3}` (see `act`).
    ///
    /// # Errors
    /// `TypeError` for a malformed input, `RangeError` for a past time or a node out of range.
    pub fn schedule(&mut self, time_ms: f64, input: JsValue) -> Result<(), JsValue> {
        let time_ms = whole(time_ms, "time")?;
        // Nothing happens at time 0 (the first tick comes later), so an input may still go there.
        let now = self.simulation.now_ms();
        if time_ms <= now && now > 0 {
            return Err(range_error("cannot schedule an input at or before the current time"));
        }
        let input = self.input_from_js(input, time_ms)?;
        self.script.push(time_ms, input);
        Ok(())
    }

    /// Does `input` now (stamped one millisecond ahead, see the module docs) and returns the
    /// time it was stamped with. Inputs: `propose {data}`, `proposeTo {node, data}`,
    /// `put {key, value}`, `get {key}`, `delete {key}`, `crash|restart|pause|resume|campaign
    /// {node}`, `partition {side}`, `cutLink|restoreLink {from, to}`, `heal`, `setLink {from,
    /// to, latencyMsMin, latencyMsMax, lossPerMille, duplicatePerMille}`, `dropMessage|
    /// duplicateMessage {id}`, `read {node, key, mode}` (mode `linearizable`, `lease` or
    /// `stale`; the answer comes in `readResults()` and the event log).
    ///
    /// # Errors
    /// `TypeError` for a malformed input, `RangeError` for a node out of range.
    pub fn act(&mut self, input: JsValue) -> Result<f64, JsValue> {
        let time_ms = self.simulation.now_ms() + 1;
        let input = self.input_from_js(input, time_ms)?;
        Ok(self.act_input(input) as f64)
    }

    /// Crashes a node (it loses whatever it had not persisted).
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[cfg(feature = "playground")]
    pub fn crash(&mut self, node: u32) -> Result<f64, JsValue> {
        let id = self.node_id(node)?;
        Ok(self.act_input(Input::Crash(id)) as f64)
    }

    /// Restarts a crashed node from its disk.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[cfg(feature = "playground")]
    pub fn restart(&mut self, node: u32) -> Result<f64, JsValue> {
        let id = self.node_id(node)?;
        Ok(self.act_input(Input::Restart(id)) as f64)
    }

    /// Pauses a node (no ticks, no messages handled; they queue up).
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[cfg(feature = "playground")]
    pub fn pause(&mut self, node: u32) -> Result<f64, JsValue> {
        let id = self.node_id(node)?;
        Ok(self.act_input(Input::Pause(id)) as f64)
    }

    /// Resumes a paused node.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[cfg(feature = "playground")]
    pub fn resume(&mut self, node: u32) -> Result<f64, JsValue> {
        let id = self.node_id(node)?;
        Ok(self.act_input(Input::Resume(id)) as f64)
    }

    /// Fires a node's election timer now.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[cfg(feature = "playground")]
    pub fn campaign(&mut self, node: u32) -> Result<f64, JsValue> {
        let id = self.node_id(node)?;
        Ok(self.act_input(Input::Campaign(id)) as f64)
    }

    /// Cuts every link between `side` and the other nodes, both ways.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[cfg(feature = "playground")]
    pub fn partition(&mut self, side: Vec<u32>) -> Result<f64, JsValue> {
        let mut ids = side.into_iter().map(|n| self.node_id(n)).collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        ids.dedup();
        Ok(self.act_input(Input::Partition { side: ids }) as f64)
    }

    /// Cuts the link `from → to`.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[cfg(feature = "playground")]
    #[wasm_bindgen(js_name = cutLink)]
    pub fn cut_link(&mut self, from: u32, to: u32) -> Result<f64, JsValue> {
        let (from, to) = (self.node_id(from)?, self.node_id(to)?);
        Ok(self.act_input(Input::CutLink { from, to }) as f64)
    }

    /// Restores the link `from → to`.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[cfg(feature = "playground")]
    #[wasm_bindgen(js_name = restoreLink)]
    pub fn restore_link(&mut self, from: u32, to: u32) -> Result<f64, JsValue> {
        let (from, to) = (self.node_id(from)?, self.node_id(to)?);
        Ok(self.act_input(Input::RestoreLink { from, to }) as f64)
    }

    /// Restores every cut link.
    #[cfg(feature = "playground")]
    pub fn heal(&mut self) -> f64 {
        self.act_input(Input::Heal) as f64
    }

    /// A client proposes `data` (text) to whoever leads.
    #[cfg(feature = "playground")]
    pub fn propose(&mut self, data: &str) -> f64 {
        let data = raft_core::Bytes::from(String::from(data).into_bytes());
        self.act_input(Input::Propose { data }) as f64
    }

    /// A client reads `key` through node `node` with `mode` (`linearizable`, the default,
    /// `lease` or `stale`). Returns the read's id: its answer is `readResult(id)` once it came.
    ///
    /// # Errors
    /// `RangeError` for a node out of range, an unknown mode or a key over the store's limit.
    #[cfg(feature = "playground")]
    pub fn read(&mut self, node: u32, key: &str, mode: Option<String>) -> Result<f64, JsValue> {
        let id = self.node_id(node)?;
        let mode = match mode.as_deref() {
            None | Some("linearizable") => ReadModeName::Linearizable,
            Some("lease") => ReadModeName::Lease,
            Some("stale") => ReadModeName::Stale,
            Some(other) => return Err(range_error(&format!("unknown read mode {other:?}"))),
        };
        check_read_key(key).map_err(|crate::input::InputError::Range(message)| range_error(&message))?;
        let read_id = self.simulation.client_read_counts().0;
        let input = Input::Read {
            node: id,
            key: raft_core::Bytes::from(String::from(key).into_bytes()),
            mode: mode.mode(),
        };
        self.act_input(input);
        Ok(read_id as f64)
    }

    /// Every client read remembered, oldest first: `[{id, node, key, mode, askedMs,
    /// answeredMs, readIndex, status ('pending', 'ok' or 'failed'), value, error, text}]`.
    /// `value` is null for an absent key.
    ///
    /// # Errors
    /// Never in practice; a serialisation failure becomes a `TypeError`.
    #[cfg(feature = "playground")]
    #[wasm_bindgen(js_name = readResults)]
    pub fn read_results(&self) -> Result<JsValue, JsValue> {
        let views: Vec<_> = self.simulation.client_reads().map(read_view).collect();
        to_js_with_nulls(&views)
    }

    /// Reads asked so far: the id the next read will get.
    #[wasm_bindgen(getter, js_name = readsAsked)]
    pub fn reads_asked(&self) -> f64 {
        self.simulation.client_read_counts().0 as f64
    }

    /// Client read `id` (as `readResults()` lists it), or `undefined` if there is none.
    ///
    /// # Errors
    /// `RangeError` if `id` is not a whole number.
    #[wasm_bindgen(js_name = readResult)]
    pub fn read_result(&self, id: f64) -> Result<JsValue, JsValue> {
        let id = whole(id, "read id")?;
        match self.simulation.client_read(id) {
            Some(read) => to_js_with_nulls(&read_view(read)),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// Loses message `id` (from `messageFrame`) on the wire.
    ///
    /// # Errors
    /// `RangeError` if `id` is not a whole number.
    #[cfg(feature = "playground")]
    #[wasm_bindgen(js_name = dropMessage)]
    pub fn drop_message(&mut self, id: f64) -> Result<f64, JsValue> {
        let id = whole(id, "message id")?;
        Ok(self.act_input(Input::DropMessage { id }) as f64)
    }

    /// Delivers message `id` twice.
    ///
    /// # Errors
    /// `RangeError` if `id` is not a whole number.
    #[cfg(feature = "playground")]
    #[wasm_bindgen(js_name = duplicateMessage)]
    pub fn duplicate_message(&mut self, id: f64) -> Result<f64, JsValue> {
        let id = whole(id, "message id")?;
        Ok(self.act_input(Input::DuplicateMessage { id }) as f64)
    }

    /// Runs `ms` milliseconds of simulated time.
    ///
    /// # Errors
    /// `RangeError` if `ms` is negative or not finite.
    #[cfg(feature = "playground")]
    pub fn advance(&mut self, ms: f64) -> Result<(), JsValue> {
        let ms = whole(ms, "duration")?;
        self.run_to(self.simulation.now_ms().saturating_add(ms));
        Ok(())
    }

    /// Runs until simulated time `time_ms` (nothing happens if it is in the past).
    ///
    /// # Errors
    /// `RangeError` if `time_ms` is negative or not finite.
    #[wasm_bindgen(js_name = runUntil)]
    pub fn run_until(&mut self, time_ms: f64) -> Result<(), JsValue> {
        let time_ms = whole(time_ms, "time")?;
        self.run_to(time_ms);
        Ok(())
    }

    /// Handles the next single event or input, jumping the clock to its time. Returns false if
    /// nothing is left to happen (every node down and nothing scheduled).
    #[wasm_bindgen(js_name = stepEvent)]
    pub fn step_event(&mut self) -> bool {
        let stepped = match self.next_input_ms() {
            Some(input_ms) => {
                // An event before the input goes first; otherwise the input is due.
                if input_ms > 0 && self.simulation.step_once(input_ms - 1) {
                    true
                } else {
                    self.feed_next();
                    self.simulation.step_once(u64::MAX)
                }
            }
            None => self.simulation.step_once(u64::MAX),
        };
        self.observe();
        stepped
    }

    /// Simulated time now, in milliseconds.
    #[wasm_bindgen(getter, js_name = nowMs)]
    pub fn now_ms(&self) -> f64 {
        self.simulation.now_ms() as f64
    }

    /// Simulated milliseconds per tick.
    #[wasm_bindgen(getter, js_name = tickMs)]
    pub fn tick_ms(&self) -> f64 {
        self.simulation.config().tick_ms as f64
    }

    /// Number of nodes (ids 1..=nodeCount).
    #[wasm_bindgen(getter, js_name = nodeCount)]
    pub fn node_count(&self) -> usize {
        self.simulation.nodes().len()
    }

    /// Time of the last input in the script (0 if none).
    #[wasm_bindgen(getter, js_name = scriptEndMs)]
    pub fn script_end_ms(&self) -> f64 {
        self.script.inputs.last().map_or(0.0, |(t, _)| *t as f64)
    }

    /// Number of inputs in the script, run or not.
    #[wasm_bindgen(getter, js_name = scriptLength)]
    pub fn script_length(&self) -> usize {
        self.script.inputs.len()
    }

    /// The highest index committed anywhere.
    #[wasm_bindgen(getter, js_name = committedIndex)]
    pub fn committed_index(&self) -> f64 {
        self.simulation.committed_index().0 as f64
    }

    /// Safety violations seen so far (0 while every invariant holds).
    #[wasm_bindgen(getter, js_name = violationCount)]
    pub fn violation_count(&self) -> usize {
        self.simulation.violations().len()
    }

    /// The running leader with the highest term, if any.
    pub fn leader(&self) -> Option<f64> {
        self.simulation.leader().map(|id| id.0 as f64)
    }

    /// A hash of everything that happened so far, as 16 hex digits: equal hashes, equal runs.
    #[wasm_bindgen(js_name = traceHash)]
    pub fn trace_hash(&self) -> String {
        format!("{:016x}", self.simulation.trace_hash())
    }

    /// One row of `NODE_STRIDE` numbers per node, in id order; field names in `nodeFields()`.
    #[wasm_bindgen(js_name = nodeFrame)]
    pub fn node_frame(&mut self) -> Vec<f64> {
        node_frame(&self.simulation, &mut self.rows);
        self.rows.clone()
    }

    /// One row per message on the wire (at most `limit`, earliest delivery first); field names
    /// in `messageFields()`, kind codes in `messageKinds()`.
    #[wasm_bindgen(js_name = messageFrame)]
    pub fn message_frame(&self, limit: Option<usize>) -> Vec<f64> {
        let mut out = Vec::new();
        message_frame(&self.simulation, limit.unwrap_or(MESSAGES_PER_FRAME_MAX), &mut out);
        out
    }

    /// Role code per node: 0 follower, 1 pre-candidate, 2 candidate, 3 leader.
    #[cfg(feature = "playground")]
    pub fn roles(&mut self) -> Vec<u8> {
        self.column(0).map(|v| v as u8).collect()
    }

    /// Liveness code per node: 0 up, 1 down, 2 paused.
    #[cfg(feature = "playground")]
    pub fn liveness(&mut self) -> Vec<u8> {
        self.column(1).map(|v| v as u8).collect()
    }

    /// Term per node.
    #[cfg(feature = "playground")]
    pub fn terms(&mut self) -> Vec<f64> {
        self.column(2).collect()
    }

    /// The tail of node `id`'s log as numbers: `[firstIndex, term, term, ...]` for the last
    /// `count` entries (a crashed node's disk). Cheap enough to draw every frame.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[wasm_bindgen(js_name = logTerms)]
    pub fn log_terms(&self, id: u32, count: usize) -> Result<Vec<f64>, JsValue> {
        let id = self.node_id(id)?;
        let node = self.simulation.node(id).ok_or_else(|| range_error("no such node"))?;
        let entries = match node.raft.as_ref() {
            Some(raft) => raft.entries(),
            None => &node.storage.entries[..],
        };
        let tail = &entries[entries.len().saturating_sub(count)..];
        let mut out = Vec::with_capacity(tail.len() + 1);
        out.push(tail.first().map_or(0.0, |e| e.index.0 as f64));
        out.extend(tail.iter().map(|e| e.term.0 as f64));
        Ok(out)
    }

    /// A leader's view of its followers as rows of `[id, matchIndex, nextIndex, state
    /// (0 probe, 1 replicate, 2 snapshot), inflight]`; empty unless node `id` leads.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[wasm_bindgen(js_name = progressFrame)]
    pub fn progress_frame(&self, id: u32) -> Result<Vec<f64>, JsValue> {
        let id = self.node_id(id)?;
        let node = self.simulation.node(id).ok_or_else(|| range_error("no such node"))?;
        let mut out = Vec::new();
        if let Some(raft) = node.raft.as_ref() {
            for progress in raft.follower_progress() {
                out.extend_from_slice(&[
                    progress.id.0 as f64,
                    progress.match_index.0 as f64,
                    progress.next_index.0 as f64,
                    match progress.state {
                        raft_core::ProgressState::Probe => 0.0,
                        raft_core::ProgressState::Replicate => 1.0,
                        _ => 2.0,
                    },
                    progress.inflight as f64,
                ]);
            }
        }
        Ok(out)
    }

    /// Cut links as `[from, to, from, to, ...]`.
    #[wasm_bindgen(js_name = cutLinks)]
    pub fn cut_links(&self) -> Vec<u32> {
        let n = self.simulation.nodes().len() as u32;
        let mut out = Vec::new();
        for from in 1..=n {
            for to in 1..=n {
                if from != to && self.simulation.is_cut(NodeId(u64::from(from)), NodeId(u64::from(to))) {
                    out.extend_from_slice(&[from, to]);
                }
            }
        }
        out
    }

    /// Event rows since the last call, `[timeMs, kind, node, a, b]` each (see the events
    /// module for kinds; kind 7 is an answered read, `a` its id for `readResult`).
    #[wasm_bindgen(js_name = drainEvents)]
    pub fn drain_events(&mut self) -> Vec<f64> {
        self.events.drain()
    }

    /// Event rows lost because nobody drained them in time.
    #[wasm_bindgen(getter, js_name = eventsDropped)]
    pub fn events_dropped(&self) -> f64 {
        self.events.dropped() as f64
    }

    /// Node `id` in full: role, term, votes, leader's per-follower progress, counters.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    pub fn node(&self, id: u32) -> Result<JsValue, JsValue> {
        let id = self.node_id(id)?;
        let node = self.simulation.node(id).ok_or_else(|| range_error("no such node"))?;
        to_js(&node_view(node, self.simulation.config().tick_ms))
    }

    /// The last `limit` (default 64) entries of node `id`'s log, with committed flags.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    #[wasm_bindgen(js_name = nodeLog)]
    pub fn node_log(&self, id: u32, limit: Option<usize>) -> Result<JsValue, JsValue> {
        let id = self.node_id(id)?;
        let node = self.simulation.node(id).ok_or_else(|| range_error("no such node"))?;
        to_js(&log_view(node, limit.unwrap_or(64)))
    }

    /// Node `id`'s key-value state (its applied commands), at most `limit` (default 50) pairs.
    ///
    /// # Errors
    /// `RangeError` for a node out of range.
    pub fn kv(&self, id: u32, limit: Option<usize>) -> Result<JsValue, JsValue> {
        let id = self.node_id(id)?;
        let node = self.simulation.node(id).ok_or_else(|| range_error("no such node"))?;
        to_js(&kv_view(node, limit.unwrap_or(50)))
    }

    /// Message `id` in full, or `undefined` if it is no longer on the wire.
    ///
    /// # Errors
    /// `RangeError` if `id` is not a whole number.
    #[cfg(feature = "playground")]
    pub fn message(&self, id: f64) -> Result<JsValue, JsValue> {
        let id = whole(id, "message id")?;
        match self.simulation.in_flight().find(|m| m.id == id) {
            Some(message) => to_js(&message_view(message)),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// Counters of the whole run.
    ///
    /// # Errors
    /// Never in practice; a serialisation failure becomes a `TypeError`.
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        to_js(&stats_view(&self.simulation))
    }

    /// Every safety violation seen: `[{property, timeMs, detail}]`.
    ///
    /// # Errors
    /// Never in practice; a serialisation failure becomes a `TypeError`.
    pub fn violations(&self) -> Result<JsValue, JsValue> {
        let views: Vec<_> = self.simulation.violations().iter().map(violation_view).collect();
        to_js(&views)
    }

    /// The script as `[{timeMs, input, text}]`, run and scheduled.
    ///
    /// # Errors
    /// Never in practice; a serialisation failure becomes a `TypeError`.
    #[wasm_bindgen(js_name = scriptItems)]
    pub fn script_items(&self) -> Result<JsValue, JsValue> {
        let items = js_sys::Array::new();
        for (time_ms, input) in &self.script.inputs {
            let item =
                ScriptItem { time_ms: *time_ms, input: from_input(input), text: describe_input(input) };
            let object = to_js(&item)?;
            js_sys::Reflect::set(&object, &JsValue::from_str("input"), &input_to_js(&item.input)?)?;
            items.push(&object);
        }
        Ok(items.into())
    }

    /// Names of the fields of a node row.
    #[wasm_bindgen(js_name = nodeFields)]
    pub fn node_fields() -> Vec<String> {
        NODE_FIELDS.iter().map(|s| String::from(*s)).collect()
    }

    /// Names of the fields of a message row.
    #[wasm_bindgen(js_name = messageFields)]
    pub fn message_fields() -> Vec<String> {
        MESSAGE_FIELDS.iter().map(|s| String::from(*s)).collect()
    }

    /// Numbers per node row.
    #[wasm_bindgen(js_name = nodeStride)]
    pub fn node_stride() -> usize {
        NODE_STRIDE
    }

    /// Numbers per message row.
    #[wasm_bindgen(js_name = messageStride)]
    pub fn message_stride() -> usize {
        MESSAGE_STRIDE
    }

    /// Message kind names by code.
    #[wasm_bindgen(js_name = messageKinds)]
    pub fn message_kinds() -> Vec<String> {
        MESSAGE_KINDS.iter().map(|s| String::from(*s)).collect()
    }
}

// Rust-only helpers.
impl SimCluster {
    fn build(config: raft_core::sim::SimConfig, script: Script) -> Result<SimCluster, JsValue> {
        crate::options::check_config(&config).map_err(|e| range_error(&e))?;
        let simulation = Simulation::new(config, Script::new()).map_err(|e| range_error(&e))?;
        let events = EventLog::new(&simulation);
        Ok(SimCluster {
            simulation,
            script,
            fed: 0,
            events,
            history: HistoryRecorder::default(),
            rows: Vec::new(),
        })
    }

    fn node_id(&self, node: u32) -> Result<NodeId, JsValue> {
        let nodes = self.simulation.nodes().len();
        if node == 0 || node as usize > nodes {
            return Err(range_error(&format!("node {node} is not in 1..={nodes}")));
        }
        Ok(NodeId(u64::from(node)))
    }

    fn input_from_js(&self, input: JsValue, time_ms: u64) -> Result<Input, JsValue> {
        let object = crate::tagged::input_from_js(&input)?;
        to_input(&object, self.simulation.nodes().len(), time_ms).map_err(|e| match e {
            crate::input::InputError::Range(message) => range_error(&message),
        })
    }

    /// Adds `input` at `now + 1` and runs to then; returns the time.
    pub fn act_input(&mut self, input: Input) -> u64 {
        let time_ms = self.simulation.now_ms() + 1;
        self.script.push(time_ms, input);
        self.run_to(time_ms);
        time_ms
    }

    fn next_input_ms(&self) -> Option<u64> {
        self.script.inputs.get(self.fed).map(|(t, _)| *t)
    }

    /// Hands the next input to the simulation, after running everything before its time.
    fn feed_next(&mut self) {
        let Some((time_ms, input)) = self.script.inputs.get(self.fed).cloned() else {
            return;
        };
        if time_ms > self.simulation.now_ms() {
            self.run_events_to(time_ms - 1);
        }
        self.history.fed(&self.simulation, time_ms, &input);
        self.simulation.schedule(time_ms, input);
        self.fed += 1;
    }

    /// Runs inputs and events up to and including `time_ms`.
    pub fn run_to(&mut self, time_ms: u64) {
        while self.next_input_ms().is_some_and(|t| t <= time_ms) {
            self.feed_next();
        }
        self.run_events_to(time_ms);
    }

    fn run_events_to(&mut self, time_ms: u64) {
        while self.simulation.step_once(time_ms) {
            self.observe();
        }
        self.simulation.run_until(time_ms);
    }

    #[cfg(feature = "playground")]
    fn column(&mut self, field: usize) -> impl Iterator<Item = f64> + '_ {
        node_frame(&self.simulation, &mut self.rows);
        self.rows.iter().skip(field).step_by(NODE_STRIDE).copied()
    }

    /// A cluster for Rust callers (benchmarks, tests): `config` and a script of inputs.
    ///
    /// # Errors
    /// A lowercase description if the config is invalid.
    pub fn with_script(config: raft_core::sim::SimConfig, script: Script) -> Result<SimCluster, String> {
        crate::options::check_config(&config)?;
        let simulation = Simulation::new(config, Script::new())?;
        let events = EventLog::new(&simulation);
        Ok(SimCluster {
            simulation,
            script,
            fed: 0,
            events,
            history: HistoryRecorder::default(),
            rows: Vec::new(),
        })
    }

    /// After every step: the observers look at what changed.
    fn observe(&mut self) {
        self.events.observe(&self.simulation);
        self.history.observe(&self.simulation);
    }

    /// The client history recorded so far.
    pub fn history_recorder(&self) -> &HistoryRecorder {
        &self.history
    }

    /// The simulation, for Rust callers (benchmarks, tests).
    pub fn simulation(&self) -> &Simulation {
        &self.simulation
    }
}

/// serde-wasm-bindgen looks up the fields it knows and ignores the rest, so a misspelt option
/// would silently fall back to its default. Refuse it by name instead.
fn check_option_names(options: &JsValue) -> Result<(), JsValue> {
    if !options.is_object() {
        return Err(type_error("options must be an object"));
    }
    for key in js_sys::Object::keys(options.unchecked_ref::<js_sys::Object>()).iter() {
        let name = key.as_string().unwrap_or_default();
        if !crate::options::OPTION_NAMES.contains(&name.as_str()) {
            return Err(type_error(&format!("unknown option {name:?}")));
        }
    }
    Ok(())
}

fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    serde_wasm_bindgen::to_value(value).map_err(|e| type_error(&format!("{e}")))
}

/// As `to_js`, but a missing value (`None`) becomes `null`, not `undefined`: read results
/// say `value: null` for an absent key.
fn to_js_with_nulls<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true);
    value.serialize(&serializer).map_err(|e| type_error(&format!("{e}")))
}

/// A JavaScript number that must be a whole, non-negative, exactly representable count.
fn whole(value: f64, what: &str) -> Result<u64, JsValue> {
    if !value.is_finite() || value < 0.0 || value.fract() != 0.0 || value > crate::options::SEED_MAX as f64 {
        return Err(range_error(&format!("{what} must be a whole number of at least 0")));
    }
    Ok(value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::sim::{generate, FaultSet, NemesisPlan, SimConfig};

    fn nemesis(seed: u64) -> (SimConfig, Script) {
        let mut config = SimConfig::new(5, seed);
        config.link = raft_core::sim::link_for_faults(FaultSet::all());
        let script = generate(&config, &NemesisPlan::new(FaultSet::all(), 20_000));
        (config, script)
    }

    /// Feeding inputs just in time must be the very same run as giving the script up front.
    #[test]
    fn feeding_inputs_late_replays_the_script_exactly() {
        for seed in 1..4 {
            let (config, script) = nemesis(seed);
            let mut whole = Simulation::new(config.clone(), script.clone()).unwrap();
            whole.run_until(20_000);
            let mut cluster = SimCluster::build(config, script).unwrap();
            cluster.run_to(7_777);
            let mut stepped = cluster.copy();
            for _ in 0..500 {
                stepped.step_event();
            }
            stepped.run_to(20_000);
            cluster.run_to(20_000);
            assert_eq!(cluster.simulation().trace_hash(), whole.trace_hash(), "seed {seed}");
            assert_eq!(stepped.simulation().trace_hash(), whole.trace_hash(), "seed {seed} stepped");
        }
    }

    /// A live action, replayed from the recorded run text, gives the same hash.
    #[test]
    fn live_actions_replay_from_the_run_text() {
        let mut live = SimCluster::build(SimConfig::new(5, 9), Script::new()).unwrap();
        live.run_to(1_000);
        let leader = live.simulation().leader().expect("a leader after a second");
        live.act_input(Input::Crash(leader));
        live.run_to(1_500);
        live.act_input(Input::Propose { data: raft_core::Bytes::from_static(b"x") });
        live.run_to(2_000);
        let (config, script) = decode_run(&live.run()).unwrap();
        let mut replay = SimCluster::build(config, script).unwrap();
        replay.run_to(2_000);
        assert_eq!(replay.simulation().trace_hash(), live.simulation().trace_hash());
        assert_ne!(replay.simulation().leader(), Some(leader));
    }

    /// The event log reports the first election: the winner's role change, then a commit.
    #[test]
    fn events_report_the_election_and_the_commit() {
        let mut cluster = SimCluster::build(SimConfig::new(3, 1), Script::new()).unwrap();
        cluster.run_to(1_000);
        let leader = cluster.simulation().leader().expect("a leader").0 as f64;
        let rows = cluster.drain_events();
        let events: Vec<&[f64]> = rows.chunks(crate::events::EVENT_STRIDE).collect();
        let elected =
            events.iter().position(|e| e[1] == crate::events::kind::ROLE && e[2] == leader && e[3] == 3.0);
        let committed = events.iter().position(|e| e[1] == crate::events::kind::COMMIT);
        assert!(elected.is_some() && committed.is_some(), "{events:?}");
        assert!(cluster.drain_events().is_empty(), "drained rows are gone");
    }

    /// A read is an input like any other: answered, reported in the event log, and replayed from
    /// the run text with the same answer and hash.
    #[test]
    fn reads_are_answered_reported_and_replayed() {
        let mut live = SimCluster::build(SimConfig::new(3, 2), Script::new()).unwrap();
        live.run_to(1_000);
        let leader = live.simulation().leader().expect("a leader");
        let key = raft_core::Bytes::from_static(b"x");
        live.act_input(Input::Read { node: leader, key, mode: raft_core::ReadMode::Linearizable });
        live.run_to(1_200);
        let reads: Vec<_> = live.simulation().client_reads().map(read_view).collect();
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0].status, "ok", "{reads:?}");
        assert!(reads[0].read_index.is_some(), "{reads:?}");
        let rows = live.drain_events();
        let answered: Vec<&[f64]> =
            rows.chunks(crate::events::EVENT_STRIDE).filter(|e| e[1] == crate::events::kind::READ).collect();
        assert_eq!(answered, [[reads[0].answered_ms.unwrap() as f64, 7.0, leader.0 as f64, 0.0, 1.0]]);
        let (config, script) = decode_run(&live.run()).unwrap();
        let mut replay = SimCluster::build(config, script).unwrap();
        replay.run_to(1_200);
        assert_eq!(replay.simulation().trace_hash(), live.simulation().trace_hash());
        assert_eq!(replay.simulation().client_reads().map(read_view).collect::<Vec<_>>(), reads);
    }

    /// A checkpoint taken before a live action replays it once it adopts the live script.
    #[test]
    fn checkpoints_adopt_later_inputs() {
        let mut live = SimCluster::build(SimConfig::new(3, 4), Script::new()).unwrap();
        live.run_to(500);
        let checkpoint = live.copy();
        live.run_to(800);
        live.act_input(Input::Crash(NodeId(1)));
        live.run_to(1_200);
        let mut rewound = checkpoint.copy();
        assert!(rewound.adopt_script(&live).is_ok());
        rewound.run_to(1_200);
        assert_eq!(rewound.simulation().trace_hash(), live.simulation().trace_hash());
        // Forking: drop the future, act differently, and the runs part ways.
        let mut fork = checkpoint.copy();
        fork.adopt_script(&live).unwrap();
        fork.run_to(600);
        fork.truncate_script_after(600.0);
        fork.act_input(Input::Crash(NodeId(2)));
        fork.run_to(1_200);
        assert_ne!(fork.simulation().trace_hash(), live.simulation().trace_hash());
        assert_eq!(fork.script.inputs.len(), 1);
    }
}

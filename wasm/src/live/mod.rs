//! [`LiveNode`]: a browser tab's replica of a real cluster, as a Raft learner (thesis §4.2.1).
//!
//! The Worker (web/live/worker.js) owns the WebSockets, the 10 ms tick timer and the random
//! nonces; this binding owns everything else and only moves bytes: frames in per link
//! ([`LiveNode::on_frame`]), frames out per link ([`LiveNode::take_outgoing`]), ticks, reads,
//! and views of the state for the page. [`link`] is the handshake and session of one socket,
//! [`driver`] the Raft driver, both plain Rust tested without a browser.

pub mod driver;
pub mod link;
pub mod store;
pub mod targets;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use raft_core::state_machine::StateMachine;
use raft_core::wire::{InviteToken, StorageBackend, TabStatus};
use raft_core::NodeId;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::errors::{range_error, type_error};
use driver::Driver;
use link::{Credential, Link, Outcome};
use store::{Identity, TabLog};

/// Sockets one tab may hold at once (one per native member, plus redials in flight).
pub const LINKS_MAX: usize = 64;

/// A tab's live replica.
#[wasm_bindgen]
pub struct LiveNode {
    credential: Credential,
    seed: u64,
    driver: Option<Driver>,
    links: BTreeMap<u32, Link>,
    outgoing: Vec<(u32, Vec<u8>)>,
    /// Links whose frames were refused (bad tag, wrong sender, undecodable).
    frames_refused: u64,
    /// Messages dropped because no link to their receiver was open.
    messages_unroutable: u64,
    /// Where the node's state is kept, and whether `navigator.storage.persist()` was granted.
    status: TabStatus,
    /// The node was restarted from durable storage (not admitted afresh).
    restored: bool,
    /// The native members the admitting leader named (see [`targets`]).
    member_hints: BTreeMap<NodeId, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LinkEvent {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl LinkEvent {
    fn of(kind: &'static str) -> LinkEvent {
        LinkEvent { kind, peer: None, node_id: None, address: None, reason: None }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StateView {
    cluster_id: String,
    node_id: Option<u64>,
    role: String,
    term: u64,
    leader: Option<u64>,
    commit: u64,
    applied: u64,
    snapshot_index: u64,
    voters: Vec<u64>,
    learners: Vec<u64>,
    links: Vec<(u32, Option<u64>)>,
    applied_entries: u64,
    apply_violations: u64,
    snapshots_installed: u64,
    steps: u64,
    steps_refused: u64,
    frames_refused: u64,
    messages_unroutable: u64,
    keys: usize,
    backend: &'static str,
    persistent: bool,
    campaigns: bool,
    restored: bool,
    log_generation: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadView {
    id: u64,
    ok: bool,
    index: Option<u64>,
    error: Option<String>,
}

fn to_js<T: Serialize>(value: &T) -> JsValue {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true);
    value.serialize(&serializer).unwrap_or(JsValue::NULL)
}

#[wasm_bindgen]
impl LiveNode {
    /// A tab holding the invite `token` (the text after `#join=`); `seed` seeds the core's
    /// randomized timers (the Worker draws it from `crypto.getRandomValues`).
    #[wasm_bindgen(constructor)]
    pub fn new(token: &str, seed: f64) -> Result<LiveNode, JsValue> {
        let decoded = InviteToken::decode(token.trim())
            .map_err(|e| type_error(&format!("invite token: {}", e.as_str())))?;
        Ok(LiveNode {
            credential: Credential { token: decoded, token_text: token.trim().to_string(), admitted: None },
            seed: seed as u64,
            driver: None,
            links: BTreeMap::new(),
            outgoing: Vec::new(),
            frames_refused: 0,
            messages_unroutable: 0,
            status: TabStatus {
                backend: StorageBackend::Memory,
                persistent: false,
                campaigns: driver::tab_config(NodeId(0), 0).campaigns,
            },
            restored: false,
            member_hints: BTreeMap::new(),
        })
    }

    /// Opens durable storage (`backend`: "opfs" or "indexeddb") from the bytes of its files
    /// (`flotilla/<cluster_id>/identity`, `log-0`, `log-1`; empty when absent). Returns the
    /// stored node id once restored (the tab then dials as that id with an ordinary `Hello`),
    /// or `null` when nothing was stored (it joins, and its storage is created on admission).
    ///
    /// # Errors
    /// Corruption, naming the file and offset: the node must not start.
    #[wasm_bindgen(js_name = openStorage)]
    pub fn open_storage(
        &mut self,
        backend: &str,
        identity: &[u8],
        log0: &[u8],
        log1: &[u8],
    ) -> Result<Option<f64>, JsValue> {
        if self.driver.is_some() {
            return Err(range_error("storage must be opened before the node starts"));
        }
        self.status.backend = match backend {
            "opfs" => StorageBackend::Opfs,
            "indexeddb" => StorageBackend::IndexedDb,
            other => return Err(range_error(&format!("unknown storage backend {other:?}"))),
        };
        let prefix = format!("flotilla/{}/", self.cluster_id());
        let Some(opened) = TabLog::open(&prefix, identity, [log0, log1]).map_err(|e| range_error(&e))? else {
            return Ok(None);
        };
        if opened.identity.cluster_id != self.cluster_id() {
            return Err(range_error(&format!(
                "{prefix}identity belongs to cluster {:?}",
                opened.identity.cluster_id
            )));
        }
        let (id, key) = (opened.identity.node_id, opened.identity.tab_key.clone());
        let driver = Driver::restore(opened, self.seed).map_err(|e| range_error(&e))?;
        self.driver = Some(driver);
        self.credential.admitted = Some((id, key));
        self.restored = true;
        Ok(Some(id.0 as f64))
    }

    /// Whether `navigator.storage.persist()` was granted; sent to the members when it changes.
    #[wasm_bindgen(js_name = setPersistent)]
    pub fn set_persistent(&mut self, persistent: bool) {
        if self.status.persistent != persistent {
            self.status.persistent = persistent;
            let links: Vec<u32> = self.links.keys().copied().collect();
            for link in links {
                self.send_status(link);
            }
        }
    }

    /// File operations to carry out, in order, and flush, before sending the frames of
    /// [`LiveNode::take_outgoing`]: `[{op: "write", file, offset, bytes} | {op: "truncate",
    /// file, size} | {op: "flush", file}]`.
    #[wasm_bindgen(js_name = takeWrites)]
    pub fn take_writes(&mut self) -> JsValue {
        let ops = self.driver.as_mut().map_or_else(Vec::new, Driver::take_file_ops);
        to_js(&ops)
    }

    /// The cluster the invite is for.
    #[wasm_bindgen(js_name = clusterId)]
    pub fn cluster_id(&self) -> String {
        self.credential.token.fields.cluster_id.clone()
    }

    /// When the invite expires (Unix ms), as its fields say (the cluster checks the mac).
    #[wasm_bindgen(js_name = expiresUnixMs)]
    pub fn expires_unix_ms(&self) -> f64 {
        self.credential.token.fields.expires_unix_ms as f64
    }

    /// The Worker opened socket `link`; its first frame will be the acceptor's Challenge.
    #[wasm_bindgen(js_name = linkOpened)]
    pub fn link_opened(&mut self, link: u32) -> Result<(), JsValue> {
        if self.links.len() >= LINKS_MAX && !self.links.contains_key(&link) {
            return Err(range_error(&format!("at most {LINKS_MAX} links")));
        }
        self.links.insert(link, Link::default());
        Ok(())
    }

    /// Socket `link` closed: the core hears its peer is unreachable (etcd's ReportUnreachable).
    #[wasm_bindgen(js_name = linkClosed)]
    pub fn link_closed(&mut self, link: u32) {
        let peer = self.links.remove(&link).and_then(|l| l.peer());
        if let (Some(peer), Some(driver)) = (peer, self.driver.as_mut()) {
            if !self.links.values().any(|l| l.peer() == Some(peer)) {
                driver.report_unreachable(peer);
            }
        }
        self.flush();
    }

    /// One binary frame from socket `link`; `nonce` is 16 fresh random bytes. Returns what
    /// happened: `{kind: "send" | "admitted" | "welcomed" | "redirect" | "rejected" | "raft" |
    /// "fail", peer?, nodeId?, address?, reason?}`. After `redirect`, `rejected` and `fail` the
    /// Worker closes the socket; frames to send are in [`LiveNode::take_outgoing`].
    #[wasm_bindgen(js_name = onFrame)]
    pub fn on_frame(&mut self, link: u32, frame: &[u8], nonce: &[u8]) -> JsValue {
        let nonce: [u8; 16] = nonce.try_into().unwrap_or([0; 16]);
        let Some(state) = self.links.get_mut(&link) else {
            return to_js(&LinkEvent { reason: Some("unknown link".into()), ..LinkEvent::of("fail") });
        };
        let event = match state.on_frame(frame, &self.credential, nonce) {
            Outcome::Send(bytes) => {
                self.outgoing.push((link, bytes));
                LinkEvent::of("send")
            }
            Outcome::Admitted { node_id, key, nonce, leader, members } => {
                // Members whose proof failed are ignored; the page hears why.
                let refused = members.as_ref().err().map(|why| why.to_string());
                if self.driver.is_none() {
                    let members = members.unwrap_or_default().into_iter();
                    self.member_hints = members.map(|member| (member.node_id, member.address)).collect();
                    let mut driver = match Driver::new(node_id, self.seed) {
                        Ok(driver) => driver,
                        Err(why) => return to_js(&LinkEvent { reason: Some(why), ..LinkEvent::of("fail") }),
                    };
                    if self.status.backend.is_durable() {
                        // The log file first, then the identity: an identity never exists
                        // without a log (store.rs).
                        driver.attach_log(TabLog::create(&Identity {
                            cluster_id: self.cluster_id(),
                            node_id,
                            join_nonce: nonce,
                            tab_key: key.clone(),
                        }));
                    }
                    self.driver = Some(driver);
                    self.credential.admitted = Some((node_id, key));
                }
                self.send_status(link);
                LinkEvent {
                    peer: Some(leader.0),
                    node_id: Some(node_id.0),
                    reason: refused,
                    ..LinkEvent::of("admitted")
                }
            }
            Outcome::Welcomed { peer } => {
                self.send_status(link);
                LinkEvent { peer: Some(peer.0), ..LinkEvent::of("welcomed") }
            }
            Outcome::Redirect { leader, address } => {
                LinkEvent { peer: Some(leader.0), address: Some(address), ..LinkEvent::of("redirect") }
            }
            Outcome::Rejected { reason } => LinkEvent { reason: Some(reason), ..LinkEvent::of("rejected") },
            Outcome::Raft(message) => {
                if let Some(driver) = self.driver.as_mut() {
                    driver.step(message);
                }
                self.flush();
                LinkEvent::of("raft")
            }
            Outcome::Fail(why) => {
                self.frames_refused += 1;
                LinkEvent { reason: Some(why), ..LinkEvent::of("fail") }
            }
        };
        to_js(&event)
    }

    /// One tick of the core's logical clock (every 10 ms, as native-node's).
    pub fn tick(&mut self) {
        if let Some(driver) = self.driver.as_mut() {
            driver.tick();
        }
        self.flush();
    }

    /// Starts a linearizable read: ReadIndex through this tab's own node to the leader
    /// (thesis §6.4); the answer comes out of [`LiveNode::take_reads`] once applied.
    #[wasm_bindgen(js_name = readLinearizable)]
    pub fn read_linearizable(&mut self, id: f64) -> Result<(), JsValue> {
        let driver = self.driver.as_mut().ok_or_else(|| range_error("not admitted yet"))?;
        driver.read_linearizable(id as u64);
        self.flush();
        Ok(())
    }

    /// Reads answered since the last call: `[{id, ok, index, error}]`.
    #[wasm_bindgen(js_name = takeReads)]
    pub fn take_reads(&mut self) -> JsValue {
        let reads: Vec<ReadView> = self.driver.as_mut().map_or_else(Vec::new, |d| {
            d.take_reads()
                .into_iter()
                .map(|read| ReadView {
                    id: read.request_id,
                    ok: read.result.is_ok(),
                    index: read.result.ok().map(|i| i.0),
                    error: read.result.err().map(|e| e.to_string()),
                })
                .collect()
        });
        to_js(&reads)
    }

    /// Frames to send since the last call: `[[link, Uint8Array], ...]`.
    #[wasm_bindgen(js_name = takeOutgoing)]
    pub fn take_outgoing(&mut self) -> js_sys::Array {
        let out = js_sys::Array::new();
        for (link, bytes) in self.outgoing.drain(..) {
            let pair = js_sys::Array::new();
            pair.push(&JsValue::from(link));
            pair.push(&js_sys::Uint8Array::from(bytes.as_slice()));
            out.push(&pair);
        }
        out
    }

    /// The applied value of a user key (a stale read: whatever this replica has applied).
    pub fn get(&self, key: &str) -> Option<String> {
        let driver = self.driver.as_ref()?;
        if key.as_bytes().starts_with(raft_core::wire::records::RESERVED_KEY_PREFIX) {
            return None;
        }
        driver.store().get(key.as_bytes()).map(|value| String::from_utf8_lossy(value).into_owned())
    }

    /// The applied user key-value pairs, `[[key, value], ...]` in key order.
    pub fn kv(&self) -> JsValue {
        let pairs: Vec<(String, String)> = self.driver.as_ref().map_or_else(Vec::new, |d| {
            d.user_pairs()
                .map(|(k, v)| {
                    (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned())
                })
                .collect()
        });
        to_js(&pairs)
    }

    /// Member addresses from the replicated records: `[[id, address], ...]`.
    pub fn addresses(&self) -> JsValue {
        let pairs: Vec<(u64, String)> = self
            .driver
            .as_ref()
            .map_or_else(Vec::new, |d| d.addresses().into_iter().map(|(id, a)| (id.0, a)).collect());
        to_js(&pairs)
    }

    /// Native members to keep a socket to: `[[id, address], ...]`. The applied configuration
    /// and address records decide; before the tab has applied them, the members its admission
    /// named ([`targets::dial_targets`]).
    #[wasm_bindgen(js_name = dialTargets)]
    pub fn dial_targets(&self) -> JsValue {
        let Some((id, _)) = &self.credential.admitted else { return to_js(&Vec::<(u64, String)>::new()) };
        let (members, records) = self.driver.as_ref().map_or_else(Default::default, |driver| {
            (driver.node().membership().members(), driver.addresses())
        });
        let targets = targets::dial_targets(*id, &members, &records, &self.member_hints);
        to_js(&targets.into_iter().map(|(id, address)| (id.0, address)).collect::<Vec<_>>())
    }

    /// The tab's view: `{clusterId, nodeId, role, term, leader, commit, applied, snapshotIndex,
    /// voters, learners, links, appliedEntries, applyViolations, snapshotsInstalled, steps,
    /// stepsRefused, framesRefused, messagesUnroutable, keys, backend, persistent, campaigns,
    /// restored, logGeneration}`.
    pub fn state(&self) -> JsValue {
        let links = self.links.iter().map(|(link, l)| (*link, l.peer().map(|p| p.0))).collect();
        let mut view = StateView {
            cluster_id: self.cluster_id(),
            node_id: None,
            role: "joining".into(),
            term: 0,
            leader: None,
            commit: 0,
            applied: 0,
            snapshot_index: 0,
            voters: Vec::new(),
            learners: Vec::new(),
            links,
            applied_entries: 0,
            apply_violations: 0,
            snapshots_installed: 0,
            steps: 0,
            steps_refused: 0,
            frames_refused: self.frames_refused,
            messages_unroutable: self.messages_unroutable,
            keys: 0,
            backend: match self.status.backend {
                StorageBackend::Memory => "memory",
                StorageBackend::Opfs => "opfs",
                StorageBackend::IndexedDb => "indexeddb",
            },
            persistent: self.status.persistent,
            campaigns: self.status.campaigns,
            restored: self.restored,
            log_generation: None,
        };
        if let Some(driver) = &self.driver {
            let node = driver.node();
            let membership = node.membership();
            let members: BTreeSet<NodeId> = membership.members();
            let voters: Vec<u64> =
                members.iter().filter(|id| membership.is_voter(**id)).map(|id| id.0).collect();
            let learners = members.iter().filter(|id| !membership.is_voter(**id)).map(|id| id.0).collect();
            let (applied_entries, violations, snapshots, steps, refused) = driver.counters();
            let own_voter = membership.is_voter(node.id());
            view.node_id = Some(node.id().0);
            view.role = if own_voter || node.role() == raft_core::Role::Leader {
                format!("{:?}", node.role()).to_lowercase()
            } else {
                "learner".into()
            };
            view.term = node.term().0;
            view.leader = node.leader().map(|l| l.0);
            view.commit = node.commit_index().0;
            view.applied = driver.store().applied_index().0;
            view.snapshot_index = node.snapshot_index().0;
            view.voters = voters;
            view.learners = learners;
            view.applied_entries = applied_entries;
            view.apply_violations = violations;
            view.snapshots_installed = snapshots;
            view.steps = steps;
            view.steps_refused = refused;
            view.keys = driver.user_pairs().count();
            view.log_generation = driver.log_generation();
        }
        to_js(&view)
    }

    /// Sends the tab's storage status on `link` if it is open (after each handshake).
    fn send_status(&mut self, link: u32) {
        if let Some(frame) = self.links.get_mut(&link).and_then(|l| l.seal_status(&self.status)) {
            self.outgoing.push((link, frame));
        }
    }

    /// Seals the node's outgoing messages onto the links to their receivers.
    fn flush(&mut self) {
        let Some(driver) = self.driver.as_mut() else { return };
        let mut unreachable = BTreeSet::new();
        for message in driver.take_messages() {
            let link = self.links.iter_mut().rev().find(|(_, l)| l.peer() == Some(message.to));
            match link.and_then(|(id, l)| l.seal(&message).map(|bytes| (*id, bytes))) {
                Some(frame) => self.outgoing.push(frame),
                None => {
                    self.messages_unroutable += 1;
                    unreachable.insert(message.to);
                }
            }
        }
        for peer in unreachable {
            driver.report_unreachable(peer);
        }
    }
}

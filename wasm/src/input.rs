//! Inputs as JavaScript objects (`{type: 'crash', node: 3}`) and back, and how entries and
//! commands read for people.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use raft_core::kv::{ClientId, Command, CommandBody, Operation, SessionRequest};
use raft_core::sim::{Input, LinkConfig};
use raft_core::{Bytes, EntryPayload, MembershipChange, NodeId, ReadMode};
use serde::{Deserialize, Serialize};

/// One input as JavaScript writes it. `put`, `get` and `delete` are client requests encoded as
/// [`raft_core::kv::Command`]s (a `put` may name a session) and proposed to the leader;
/// `register` opens a session; `read` asks one server for a key's value with a read mode,
/// without writing to the log.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
// Externally tagged here; JavaScript sees `{type: kind, ...}` (crate::tagged says why).
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum InputObject {
    /// Propose `data` (text) to whoever leads.
    Propose {
        /// The command, as text.
        #[serde(default)]
        data: String,
    },
    /// Propose `data` to one server.
    ProposeTo {
        /// The server.
        node: u64,
        /// The command, as text.
        #[serde(default)]
        data: String,
    },
    /// A key-value put through the log; with `session` and `seq`, request `seq` of the client
    /// session `session` (thesis §6.3): a retry with the same pair is applied at most once.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The client session (the id its `register` command got), or none.
        #[serde(default)]
        session: Option<u64>,
        /// The request's sequence number in the session (required with `session`).
        #[serde(default)]
        seq: Option<u64>,
    },
    /// A client opens a session through the log (thesis §6.3 RegisterClient).
    Register {},
    /// A key-value get through the log.
    Get {
        /// The key.
        key: String,
    },
    /// A key-value delete through the log.
    Delete {
        /// The key.
        key: String,
    },
    /// Crash a server.
    Crash {
        /// The server.
        node: u64,
    },
    /// Crash a server and wipe its disk (Raft does not survive this: the checkers should
    /// notice).
    WipeDisk {
        /// The server.
        node: u64,
    },
    /// Restart a crashed server.
    Restart {
        /// The server.
        node: u64,
    },
    /// Pause a server.
    Pause {
        /// The server.
        node: u64,
    },
    /// Resume a paused server.
    Resume {
        /// The server.
        node: u64,
    },
    /// Fire a server's election timer now.
    Campaign {
        /// The server.
        node: u64,
    },
    /// Cut `side` off from everyone else.
    Partition {
        /// One side of the cut.
        side: Vec<u64>,
    },
    /// Cut one direction of a link.
    CutLink {
        /// Sender.
        from: u64,
        /// Receiver.
        to: u64,
    },
    /// Restore one direction of a link.
    RestoreLink {
        /// Sender.
        from: u64,
        /// Receiver.
        to: u64,
    },
    /// Restore every link.
    Heal {},
    /// Give one direction of a link its own latency and loss.
    SetLink {
        /// Sender.
        from: u64,
        /// Receiver.
        to: u64,
        /// Shortest delivery time.
        latency_ms_min: u64,
        /// Longest delivery time.
        latency_ms_max: u64,
        /// Chance in a thousand of loss.
        #[serde(default)]
        loss_per_mille: u32,
        /// Chance in a thousand of a duplicate.
        #[serde(default)]
        duplicate_per_mille: u32,
    },
    /// Make a server snapshot its state machine now and compact its log.
    Snapshot {
        /// The server.
        node: u64,
    },
    /// Ask the leader to add a voter (it joins as a learner and is promoted once caught up).
    AddVoter {
        /// The server.
        node: u64,
    },
    /// Ask the leader to add a learner (receives the log, never votes).
    AddLearner {
        /// The server.
        node: u64,
    },
    /// Ask the leader to turn a voter into a learner.
    DemoteVoter {
        /// The server.
        node: u64,
    },
    /// Ask the leader to remove a server.
    RemoveServer {
        /// The server.
        node: u64,
    },
    /// Ask the leader to replace the voters in one joint-consensus change.
    ReplaceVoters {
        /// The new voters.
        voters: Vec<u64>,
    },
    /// Ask the leader to hand over to `node` (or, without one, to the best other voter).
    TransferLeadership {
        /// The server to hand over to.
        #[serde(default)]
        node: Option<u64>,
    },
    /// Lose a message on the wire.
    DropMessage {
        /// The message's id.
        id: u64,
    },
    /// Deliver a message on the wire twice.
    DuplicateMessage {
        /// The message's id.
        id: u64,
    },
    /// A client reads `key` through server `node` (thesis §6.4); the answer appears in
    /// `readResults()` and the event log.
    Read {
        /// The server asked.
        node: u64,
        /// The key.
        key: String,
        /// `linearizable` (ReadIndex, the default), `lease` or `stale`.
        #[serde(default)]
        mode: ReadModeName,
    },
}

/// A read mode as JavaScript names it.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ReadModeName {
    /// ReadIndex: a heartbeat round confirms the leader (thesis §6.4).
    #[default]
    Linearizable,
    /// A leader lease (thesis §6.4.1).
    Lease,
    /// Whatever the server has applied.
    Stale,
}

impl ReadModeName {
    /// The core's mode.
    pub fn mode(self) -> ReadMode {
        match self {
            ReadModeName::Linearizable => ReadMode::Linearizable,
            ReadModeName::Lease => ReadMode::Lease,
            ReadModeName::Stale => ReadMode::Stale,
        }
    }

    /// The name of the core's mode.
    pub fn of(mode: ReadMode) -> ReadModeName {
        match mode {
            ReadMode::Linearizable => ReadModeName::Linearizable,
            ReadMode::Lease => ReadModeName::Lease,
            ReadMode::Stale => ReadModeName::Stale,
        }
    }

    /// The name as text: `linearizable`, `lease` or `stale`.
    pub fn name(self) -> &'static str {
        match self {
            ReadModeName::Linearizable => "linearizable",
            ReadModeName::Lease => "lease",
            ReadModeName::Stale => "stale",
        }
    }
}

/// Refuses a key longer than the store allows.
///
/// # Errors
/// [`InputError::Range`] for a key over the store's limit.
pub fn check_read_key(key: &str) -> Result<(), InputError> {
    let operation = Operation::Get { key: Bytes::from(String::from(key).into_bytes()) };
    operation.validate().map_err(|e| InputError::Range(format!("{e}")))
}

/// What went wrong with an input object: which JavaScript error class it maps to.
#[derive(Debug, PartialEq, Eq)]
pub enum InputError {
    /// A value out of range (a node that does not exist, latency min above max).
    Range(String),
}

/// Turns an input object into a simulator input; `time_ms` stamps client commands (the log's
/// clock), so the same script always encodes the same bytes.
///
/// # Errors
/// [`InputError::Range`] for node ids outside `1..=nodes` and impossible link settings.
pub fn to_input(object: &InputObject, nodes: usize, time_ms: u64) -> Result<Input, InputError> {
    let node = |id: u64| -> Result<NodeId, InputError> {
        if id == 0 || id > nodes as u64 {
            return Err(InputError::Range(format!("node {id} is not in 1..={nodes}")));
        }
        Ok(NodeId(id))
    };
    let sessioned = |session: Option<SessionRequest>, operation: Operation| -> Result<Input, InputError> {
        operation.validate().map_err(|e| InputError::Range(format!("{e}")))?;
        let command = Command { timestamp_ms: time_ms, body: CommandBody::Request { session, operation } };
        Ok(Input::Propose { data: command.encode() })
    };
    let client = |operation: Operation| sessioned(None, operation);
    Ok(match object {
        InputObject::Propose { data } => Input::Propose { data: Bytes::from(data.clone().into_bytes()) },
        InputObject::ProposeTo { node: id, data } => {
            Input::ProposeTo { node: node(*id)?, data: Bytes::from(data.clone().into_bytes()) }
        }
        InputObject::Put { key, value, session, seq } => {
            let session = match (session, seq) {
                (None, None) => None,
                (Some(client_id), Some(sequence)) => {
                    Some(SessionRequest { client_id: ClientId(*client_id), sequence: *sequence })
                }
                _ => {
                    return Err(InputError::Range(String::from(
                        "a put names both session and seq, or neither",
                    )))
                }
            };
            let operation = Operation::Put {
                key: Bytes::from(key.clone().into_bytes()),
                value: Bytes::from(value.clone().into_bytes()),
            };
            sessioned(session, operation)?
        }
        InputObject::Register {} => Input::Propose { data: Command::register(time_ms).encode() },
        InputObject::Get { key } => client(Operation::Get { key: Bytes::from(key.clone().into_bytes()) })?,
        InputObject::Delete { key } => {
            client(Operation::Delete { key: Bytes::from(key.clone().into_bytes()) })?
        }
        InputObject::Crash { node: id } => Input::Crash(node(*id)?),
        InputObject::Restart { node: id } => Input::Restart(node(*id)?),
        InputObject::WipeDisk { node: id } => Input::WipeDisk(node(*id)?),
        InputObject::Pause { node: id } => Input::Pause(node(*id)?),
        InputObject::Resume { node: id } => Input::Resume(node(*id)?),
        InputObject::Campaign { node: id } => Input::Campaign(node(*id)?),
        InputObject::Partition { side } => {
            let mut ids = side.iter().map(|&id| node(id)).collect::<Result<Vec<_>, _>>()?;
            ids.sort();
            ids.dedup();
            Input::Partition { side: ids }
        }
        InputObject::CutLink { from, to } => Input::CutLink { from: node(*from)?, to: node(*to)? },
        InputObject::RestoreLink { from, to } => Input::RestoreLink { from: node(*from)?, to: node(*to)? },
        InputObject::Heal {} => Input::Heal,
        InputObject::SetLink {
            from,
            to,
            latency_ms_min,
            latency_ms_max,
            loss_per_mille,
            duplicate_per_mille,
        } => {
            if latency_ms_min > latency_ms_max {
                return Err(InputError::Range(String::from("latency min above max")));
            }
            if *loss_per_mille > 1000 || *duplicate_per_mille > 1000 {
                return Err(InputError::Range(String::from("per-mille chances must be at most 1000")));
            }
            Input::SetLink {
                from: node(*from)?,
                to: node(*to)?,
                link: LinkConfig {
                    latency_ms_min: *latency_ms_min,
                    latency_ms_max: *latency_ms_max,
                    loss_per_mille: *loss_per_mille,
                    duplicate_per_mille: *duplicate_per_mille,
                },
            }
        }
        InputObject::Snapshot { node: id } => Input::Snapshot(node(*id)?),
        InputObject::AddVoter { node: id } => membership(MembershipChange::AddVoter(node(*id)?)),
        InputObject::AddLearner { node: id } => membership(MembershipChange::AddLearner(node(*id)?)),
        InputObject::DemoteVoter { node: id } => membership(MembershipChange::DemoteVoter(node(*id)?)),
        InputObject::RemoveServer { node: id } => membership(MembershipChange::RemoveServer(node(*id)?)),
        InputObject::ReplaceVoters { voters } => {
            let voters = voters.iter().map(|&id| node(id)).collect::<Result<_, _>>()?;
            membership(MembershipChange::ReplaceVoters(voters))
        }
        InputObject::TransferLeadership { node: id } => {
            Input::TransferLeadership { target: id.map(node).transpose()? }
        }
        InputObject::DropMessage { id } => Input::DropMessage { id: *id },
        InputObject::DuplicateMessage { id } => Input::DuplicateMessage { id: *id },
        InputObject::Read { node: id, key, mode } => {
            check_read_key(key)?;
            Input::Read { node: node(*id)?, key: Bytes::from(key.clone().into_bytes()), mode: mode.mode() }
        }
    })
}

fn membership(change: MembershipChange) -> Input {
    Input::ChangeMembership { change }
}

/// A scripted input for display: its time, its object form and a short description.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptItem {
    /// When it happens.
    pub time_ms: u64,
    /// The input as an object (client commands read back as `propose` with their text); added
    /// as `input: {type, ...}` by `crate::tagged::input_to_js`.
    #[serde(skip)]
    pub input: InputObject,
    /// A short description, such as `crash node 3` or `put x=1`.
    pub text: String,
}

/// The object form of an input, for display (commands come back as `propose` with readable
/// text, since the bytes may be anything).
pub fn from_input(input: &Input) -> InputObject {
    match input {
        Input::Propose { data } => InputObject::Propose { data: describe_command(data) },
        Input::ProposeTo { node, data } => {
            InputObject::ProposeTo { node: node.0, data: describe_command(data) }
        }
        Input::Crash(id) => InputObject::Crash { node: id.0 },
        Input::Restart(id) => InputObject::Restart { node: id.0 },
        Input::WipeDisk(id) => InputObject::WipeDisk { node: id.0 },
        Input::Pause(id) => InputObject::Pause { node: id.0 },
        Input::Resume(id) => InputObject::Resume { node: id.0 },
        Input::Campaign(id) => InputObject::Campaign { node: id.0 },
        Input::Partition { side } => InputObject::Partition { side: side.iter().map(|id| id.0).collect() },
        Input::CutLink { from, to } => InputObject::CutLink { from: from.0, to: to.0 },
        Input::RestoreLink { from, to } => InputObject::RestoreLink { from: from.0, to: to.0 },
        Input::Heal => InputObject::Heal {},
        Input::SetLink { from, to, link } => InputObject::SetLink {
            from: from.0,
            to: to.0,
            latency_ms_min: link.latency_ms_min,
            latency_ms_max: link.latency_ms_max,
            loss_per_mille: link.loss_per_mille,
            duplicate_per_mille: link.duplicate_per_mille,
        },
        Input::Snapshot(id) => InputObject::Snapshot { node: id.0 },
        Input::ChangeMembership { change } => match change {
            MembershipChange::AddVoter(id) => InputObject::AddVoter { node: id.0 },
            MembershipChange::AddLearner(id) => InputObject::AddLearner { node: id.0 },
            MembershipChange::DemoteVoter(id) => InputObject::DemoteVoter { node: id.0 },
            MembershipChange::RemoveServer(id) => InputObject::RemoveServer { node: id.0 },
            MembershipChange::ReplaceVoters(voters) => {
                InputObject::ReplaceVoters { voters: voters.iter().map(|id| id.0).collect() }
            }
            #[allow(unreachable_patterns)]
            other => InputObject::Propose { data: format!("{other:?}") },
        },
        Input::TransferLeadership { target } => {
            InputObject::TransferLeadership { node: target.map(|id| id.0) }
        }
        Input::DropMessage { id } => InputObject::DropMessage { id: *id },
        Input::DuplicateMessage { id } => InputObject::DuplicateMessage { id: *id },
        Input::Read { node, key, mode } => InputObject::Read {
            node: node.0,
            key: String::from_utf8_lossy(key).into_owned(),
            mode: ReadModeName::of(*mode),
        },
        // Inputs the core adds later: shown as a no-op proposal until this crate learns them.
        #[allow(unreachable_patterns)]
        other => InputObject::Propose { data: format!("{other:?}") },
    }
}

/// A one-line description of an input.
pub fn describe_input(input: &Input) -> String {
    match input {
        Input::Propose { data } => format!("propose {}", describe_command(data)),
        Input::ProposeTo { node, data } => format!("propose {} to node {node}", describe_command(data)),
        Input::Crash(id) => format!("crash node {id}"),
        Input::Restart(id) => format!("restart node {id}"),
        Input::WipeDisk(id) => format!("crash node {id} and wipe its disk"),
        Input::Pause(id) => format!("pause node {id}"),
        Input::Resume(id) => format!("resume node {id}"),
        Input::Campaign(id) => format!("time out node {id}"),
        Input::Partition { side } => {
            let ids: Vec<String> = side.iter().map(ToString::to_string).collect();
            format!("partition {{{}}} from the rest", ids.join(", "))
        }
        Input::CutLink { from, to } => format!("cut link {from} → {to}"),
        Input::RestoreLink { from, to } => format!("restore link {from} → {to}"),
        Input::Heal => String::from("heal every link"),
        Input::SetLink { from, to, link } => format!(
            "link {from} → {to}: {}–{} ms, loss {}‰",
            link.latency_ms_min, link.latency_ms_max, link.loss_per_mille
        ),
        Input::Snapshot(id) => format!("node {id} takes a snapshot"),
        Input::ChangeMembership { change } => match change {
            MembershipChange::AddVoter(id) => format!("add node {id} as a voter"),
            MembershipChange::AddLearner(id) => format!("add node {id} as a learner"),
            MembershipChange::DemoteVoter(id) => format!("demote node {id} to learner"),
            MembershipChange::RemoveServer(id) => format!("remove node {id}"),
            MembershipChange::ReplaceVoters(voters) => {
                let ids: Vec<String> = voters.iter().map(ToString::to_string).collect();
                format!("replace the voters with {{{}}}", ids.join(", "))
            }
            #[allow(unreachable_patterns)]
            other => format!("{other:?}"),
        },
        Input::TransferLeadership { target: Some(id) } => format!("transfer leadership to node {id}"),
        Input::TransferLeadership { target: None } => String::from("transfer leadership"),
        Input::DropMessage { id } => format!("drop message {id}"),
        Input::DuplicateMessage { id } => format!("duplicate message {id}"),
        Input::Read { node, key, mode } => {
            format!(
                "{} read of {} at node {node}",
                ReadModeName::of(*mode).name(),
                String::from_utf8_lossy(key)
            )
        }
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// Command bytes for people: a key-value command as `put k=v`, printable text as itself,
/// anything else as hex.
pub fn describe_command(data: &[u8]) -> String {
    if let Ok(command) = Command::decode(data) {
        return match command.body {
            CommandBody::RegisterClient => String::from("register"),
            CommandBody::CloseSession { client_id } => format!("close session {client_id}"),
            CommandBody::Request { operation, session: None } => describe_operation(&operation),
            CommandBody::Request { operation, session: Some(SessionRequest { client_id, sequence }) } => {
                format!("{} (session {client_id}, #{sequence})", describe_operation(&operation))
            }
            CommandBody::Restore { snapshot } => format!("restore a {}-byte snapshot", snapshot.len()),
            // Kinds the store adds later.
            #[allow(unreachable_patterns)]
            _ => String::from("command"),
        };
    }
    match core::str::from_utf8(data) {
        Ok(text) if text.chars().all(|c| !c.is_control()) => String::from(text),
        _ => data.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn describe_operation(operation: &Operation) -> String {
    let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
    match operation {
        Operation::Get { key } => format!("get {}", text(key)),
        Operation::List { prefix, .. } => format!("list {}*", text(prefix)),
        Operation::Put { key, value } => format!("put {}={}", text(key), text(value)),
        Operation::Delete { key } => format!("delete {}", text(key)),
        Operation::CompareAndSwap { key, new, .. } => format!("cas {}={}", text(key), text(new)),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// An entry's payload for people, and its kind: `noop`, `command` or `membership`.
pub fn describe_payload(payload: &EntryPayload) -> (&'static str, String) {
    match payload {
        EntryPayload::Noop => ("noop", String::from("no-op")),
        EntryPayload::Command(data) => ("command", describe_command(data)),
        EntryPayload::Membership(m) => {
            let voters: Vec<String> = m.voters.iter().map(ToString::to_string).collect();
            let mut text = format!("voters {{{}}}", voters.join(", "));
            if !m.voters_outgoing.is_empty() {
                // Joint consensus (thesis §4.3): decisions need a majority of both sets.
                let outgoing: Vec<String> = m.voters_outgoing.iter().map(ToString::to_string).collect();
                text.push_str(&format!(" joint with {{{}}}", outgoing.join(", ")));
            }
            if !m.learners.is_empty() {
                let learners: Vec<String> = m.learners.iter().map(ToString::to_string).collect();
                text.push_str(&format!(" learners {{{}}}", learners.join(", ")));
            }
            ("membership", text)
        }
        #[allow(unreachable_patterns)]
        _ => ("other", String::from("entry")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_commands_read_back() {
        let put =
            InputObject::Put { key: String::from("x"), value: String::from("1"), session: None, seq: None };
        let input = to_input(&put, 3, 40).unwrap();
        assert_eq!(describe_input(&input), "propose put x=1");
        let register = to_input(&InputObject::Register {}, 3, 40).unwrap();
        assert_eq!(describe_input(&register), "propose register");
        assert_eq!(describe_command(b"hello"), "hello");
        assert_eq!(describe_command(&[0, 1, 255]), "0001ff");
    }

    #[test]
    fn a_put_in_a_session_carries_its_client_and_sequence() {
        let put = |session, seq| InputObject::Put {
            key: String::from("x"),
            value: String::from("1"),
            session,
            seq,
        };
        let Input::Propose { data } = to_input(&put(Some(3), Some(7)), 3, 40).unwrap() else {
            panic!("a put is a proposal");
        };
        let request = SessionRequest { client_id: ClientId(3), sequence: 7 };
        assert_eq!(
            Command::decode(&data).unwrap(),
            Command::request(
                40,
                ClientId(3),
                7,
                Operation::Put { key: Bytes::from_static(b"x"), value: Bytes::from_static(b"1") }
            )
        );
        assert!(
            matches!(Command::decode(&data).unwrap().body, CommandBody::Request { session: Some(r), .. } if r == request)
        );
        assert_eq!(describe_command(&data), "put x=1 (session 3, #7)");
        assert!(to_input(&put(Some(3), None), 3, 0).is_err());
        assert!(to_input(&put(None, Some(7)), 3, 0).is_err());
    }

    #[test]
    fn reads_name_their_mode() {
        let read = InputObject::Read { node: 2, key: String::from("x"), mode: ReadModeName::Lease };
        let input = to_input(&read, 3, 0).unwrap();
        assert_eq!(
            input,
            Input::Read { node: NodeId(2), key: Bytes::from_static(b"x"), mode: ReadMode::Lease }
        );
        assert_eq!(describe_input(&input), "lease read of x at node 2");
        assert_eq!(from_input(&input), read);
        assert!(to_input(
            &InputObject::Read { node: 4, key: String::new(), mode: ReadModeName::Stale },
            3,
            0
        )
        .is_err());
    }

    #[test]
    fn nodes_out_of_range_are_refused() {
        assert!(to_input(&InputObject::Crash { node: 4 }, 3, 0).is_err());
        assert!(to_input(&InputObject::Crash { node: 0 }, 3, 0).is_err());
        assert_eq!(to_input(&InputObject::Crash { node: 3 }, 3, 0), Ok(Input::Crash(NodeId(3))));
    }
}

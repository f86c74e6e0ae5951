//! The compact text form of a run (config + input script) that the playground keeps in the URL
//! fragment, so that a link reproduces a run exactly.
//!
//! ```text
//! 1~n5.s42.tk10.et10.hb2.lt1-5.ls0.dp0.dk1.pv1.cq1~120c3,380r3,0h,25p.eDE
//! ```
//!
//! - `1` is the format version; a later format refuses rather than misreads an older link.
//! - The config is `.`-separated `key value` pairs; keys missing from the text keep the
//!   defaults of [`SimConfig::new`], so links stay short and old links survive new keys.
//!   `dc1` (drifting clocks, thesis §6.4.1) is written only when on, so links made before it
//!   existed read the same.
//! - Inputs are `,`-separated `<delta ms><op><args>`, where the delta is the time since the
//!   previous input (scripts are sorted by time, so deltas are never negative). Ops:
//!   `p<b64>` propose, `q<node>.<b64>` propose to, `c` crash, `r` restart, `w` wipe disk, `z` pause,
//!   `u` resume, `t` campaign (force a timeout), `x<n>.<n>..` partition, `k<a>.<b>` cut link,
//!   `o<a>.<b>` restore link, `h` heal, `l<a>.<b>.<min>.<max>.<loss>.<dup>` set link,
//!   `d<id>` drop a message, `y<id>` duplicate a message, `n<node>` snapshot now,
//!   `ma|ml|md|mr<node>` add voter / add learner / demote / remove, `mx<n>.<n>..` replace the
//!   voters, `g[<node>]` transfer leadership, `v<node>.<mode>.<b64 key>` a client read through
//!   `node` with mode `i` (linearizable, ReadIndex), `l` (lease) or `s` (stale); for example
//!   `v3.l.eA` is a lease read of `x` at node 3. Data is base64url without padding.
//!
//! Every character used is allowed unescaped in a URL fragment.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;
use raft_core::sim::{Input, LinkConfig, Script, SimConfig, NODES_MAX};
use raft_core::{Bytes, MembershipChange, NodeId, ReadMode};

/// The version written at the front of every run text.
pub const RUN_TEXT_VERSION: &str = "1";

/// Longest run text accepted; bounds the work a crafted link can cause.
pub const RUN_TEXT_BYTES_MAX: usize = 1 << 20;

/// Writes `config` and `script` as one run text.
pub fn encode_run(config: &SimConfig, script: &Script) -> String {
    let mut text = String::from(RUN_TEXT_VERSION);
    text.push('~');
    text.push_str(&encode_config(config));
    text.push('~');
    text.push_str(&encode_script(script));
    text
}

/// Reads a run text back.
///
/// # Errors
/// A lowercase description of the first thing that is wrong with the text.
pub fn decode_run(text: &str) -> Result<(SimConfig, Script), String> {
    if text.len() > RUN_TEXT_BYTES_MAX {
        return Err(format!("run text longer than {RUN_TEXT_BYTES_MAX} bytes"));
    }
    let mut parts = text.splitn(3, '~');
    let version = parts.next().unwrap_or("");
    if version != RUN_TEXT_VERSION {
        return Err(format!("unsupported run text version {version:?}"));
    }
    let config = decode_config(parts.next().ok_or("run text has no config")?)?;
    let script = decode_script(parts.next().unwrap_or(""), config.nodes)?;
    Ok((config, script))
}

/// The config as `.`-separated key-value pairs (every key, so the text does not depend on
/// today's defaults; `nc`, non-campaigning voters, only when there are any, and drifting clocks
/// only when on, so that links made before either existed read the same).
pub fn encode_config(config: &SimConfig) -> String {
    let link = &config.link;
    let mut text = format!(
        "n{}.s{}.tk{}.et{}.hb{}.lt{}-{}.ls{}.dp{}.dk{}.pv{}.cq{}.vi{}.si{}.st{}",
        config.nodes,
        config.seed,
        config.tick_ms,
        config.election_timeout_ticks,
        config.heartbeat_interval_ticks,
        link.latency_ms_min,
        link.latency_ms_max,
        link.loss_per_mille,
        link.duplicate_per_mille,
        config.disk_latency_ms,
        u8::from(config.pre_vote),
        u8::from(config.check_quorum),
        config.voters_initial,
        config.snapshot_interval_entries,
        config.snapshot_trailing_entries,
    );
    if config.non_campaigning > 0 {
        text.push_str(&format!(".nc{}", config.non_campaigning));
    }
    if config.adversary.drifting_clocks {
        text.push_str(".dc1");
    }
    text
}

/// Reads a config; keys it does not mention keep the defaults of [`SimConfig::new`].
///
/// # Errors
/// A lowercase description of the first unknown key or bad value.
pub fn decode_config(text: &str) -> Result<SimConfig, String> {
    let mut config = SimConfig::new(5, 1);
    for pair in text.split('.').filter(|p| !p.is_empty()) {
        let split = pair.find(|c: char| c.is_ascii_digit()).ok_or_else(|| format!("bad config {pair:?}"))?;
        let (key, value) = pair.split_at(split);
        match key {
            "n" => config.nodes = number(value)? as usize,
            "s" => config.seed = number(value)?,
            "tk" => config.tick_ms = number(value)?,
            "et" => config.election_timeout_ticks = number(value)?,
            "hb" => config.heartbeat_interval_ticks = number(value)?,
            "lt" => {
                let (min, max) = value.split_once('-').ok_or("latency needs min-max")?;
                config.link.latency_ms_min = number(min)?;
                config.link.latency_ms_max = number(max)?;
            }
            "ls" => config.link.loss_per_mille = small(value)?,
            "dp" => config.link.duplicate_per_mille = small(value)?,
            "dk" => config.disk_latency_ms = number(value)?,
            "pv" => config.pre_vote = flag(value)?,
            "cq" => config.check_quorum = flag(value)?,
            "vi" => config.voters_initial = number(value)? as usize,
            "si" => config.snapshot_interval_entries = number(value)?,
            "st" => config.snapshot_trailing_entries = number(value)?,
            "nc" => config.non_campaigning = number(value)? as usize,
            "dc" => config.adversary.drifting_clocks = flag(value)?,
            other => return Err(format!("unknown config key {other:?}")),
        }
    }
    config.validate()?;
    Ok(config)
}

/// The inputs, each as `<delta ms><op><args>`, joined by `,`.
pub fn encode_script(script: &Script) -> String {
    let mut text = String::new();
    let mut previous_ms = 0;
    for (k, (time_ms, input)) in script.inputs.iter().enumerate() {
        if k > 0 {
            text.push(',');
        }
        // Scripts are sorted, but saturate anyway: a text must never hold a negative delta.
        let _ = write!(text, "{}", time_ms.saturating_sub(previous_ms));
        previous_ms = previous_ms.max(*time_ms);
        encode_input(&mut text, input);
    }
    text
}

fn encode_input(text: &mut String, input: &Input) {
    let _ = match input {
        Input::Propose { data } => write!(text, "p{}", base64url_encode(data)),
        Input::ProposeTo { node, data } => write!(text, "q{}.{}", node.0, base64url_encode(data)),
        Input::Crash(id) => write!(text, "c{}", id.0),
        Input::Restart(id) => write!(text, "r{}", id.0),
        Input::WipeDisk(id) => write!(text, "w{}", id.0),
        Input::Pause(id) => write!(text, "z{}", id.0),
        Input::Resume(id) => write!(text, "u{}", id.0),
        Input::Campaign(id) => write!(text, "t{}", id.0),
        Input::Partition { side } => {
            let ids: Vec<String> = side.iter().map(|id| id.0.to_string()).collect();
            write!(text, "x{}", ids.join("."))
        }
        Input::CutLink { from, to } => write!(text, "k{}.{}", from.0, to.0),
        Input::RestoreLink { from, to } => write!(text, "o{}.{}", from.0, to.0),
        Input::Heal => write!(text, "h"),
        Input::SetLink { from, to, link } => write!(
            text,
            "l{}.{}.{}.{}.{}.{}",
            from.0,
            to.0,
            link.latency_ms_min,
            link.latency_ms_max,
            link.loss_per_mille,
            link.duplicate_per_mille
        ),
        Input::Snapshot(id) => write!(text, "n{}", id.0),
        Input::ChangeMembership { change } => match change {
            MembershipChange::AddVoter(id) => write!(text, "ma{}", id.0),
            MembershipChange::AddLearner(id) => write!(text, "ml{}", id.0),
            MembershipChange::DemoteVoter(id) => write!(text, "md{}", id.0),
            MembershipChange::RemoveServer(id) => write!(text, "mr{}", id.0),
            MembershipChange::ReplaceVoters(voters) => {
                let ids: Vec<String> = voters.iter().map(|id| id.0.to_string()).collect();
                write!(text, "mx{}", ids.join("."))
            }
            #[allow(unreachable_patterns)]
            _ => write!(text, "!"),
        },
        Input::TransferLeadership { target } => match target {
            Some(id) => write!(text, "g{}", id.0),
            None => write!(text, "g"),
        },
        Input::DropMessage { id } => write!(text, "d{id}"),
        Input::DuplicateMessage { id } => write!(text, "y{id}"),
        Input::Read { node, key, mode } => {
            let mode = match mode {
                ReadMode::Linearizable => 'i',
                ReadMode::Lease => 'l',
                ReadMode::Stale => 's',
            };
            write!(text, "v{}.{mode}.{}", node.0, base64url_encode(key))
        }
        // An input kind the core added after this format: written so that decoding refuses it
        // by name instead of silently replaying a different run.
        #[allow(unreachable_patterns)]
        _ => write!(text, "!"),
    };
}

/// Reads inputs back; node ids must lie in `1..=nodes`.
///
/// # Errors
/// A lowercase description of the first bad input, with its position.
pub fn decode_script(text: &str, nodes: usize) -> Result<Script, String> {
    let mut script = Script::new();
    let mut time_ms: u64 = 0;
    for (k, item) in text.split(',').filter(|i| !i.is_empty()).enumerate() {
        let op_at = item.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| format!("input {k} has no op"))?;
        let (delta, rest) = item.split_at(op_at);
        time_ms = time_ms.checked_add(number(delta)?).ok_or("time overflows")?;
        let input = decode_input(rest, nodes).map_err(|e| format!("input {k} ({item:?}): {e}"))?;
        script.inputs.push((time_ms, input));
    }
    Ok(script)
}

fn decode_input(text: &str, nodes: usize) -> Result<Input, String> {
    let mut chars = text.chars();
    let op = chars.next().ok_or("empty input")?;
    let args = chars.as_str();
    let node = |value: &str| -> Result<NodeId, String> {
        let id = number(value)?;
        if id == 0 || id > nodes as u64 {
            return Err(format!("node {id} is not in 1..={nodes}"));
        }
        Ok(NodeId(id))
    };
    let pair = |value: &str| -> Result<(NodeId, NodeId), String> {
        let (a, b) = value.split_once('.').ok_or("needs two nodes")?;
        Ok((node(a)?, node(b)?))
    };
    Ok(match op {
        'p' => Input::Propose { data: Bytes::from(base64url_decode(args)?) },
        'q' => {
            let (id, data) = args.split_once('.').ok_or("needs node.data")?;
            Input::ProposeTo { node: node(id)?, data: Bytes::from(base64url_decode(data)?) }
        }
        'c' => Input::Crash(node(args)?),
        'r' => Input::Restart(node(args)?),
        'w' => Input::WipeDisk(node(args)?),
        'z' => Input::Pause(node(args)?),
        'u' => Input::Resume(node(args)?),
        't' => Input::Campaign(node(args)?),
        'x' => {
            let side = args.split('.').filter(|s| !s.is_empty()).map(node).collect::<Result<Vec<_>, _>>()?;
            Input::Partition { side }
        }
        'k' => {
            let (from, to) = pair(args)?;
            Input::CutLink { from, to }
        }
        'o' => {
            let (from, to) = pair(args)?;
            Input::RestoreLink { from, to }
        }
        'h' if args.is_empty() => Input::Heal,
        'l' => {
            let fields: Vec<&str> = args.split('.').collect();
            let [from, to, min, max, loss, duplicate] = fields[..] else {
                return Err(String::from("set link needs from.to.min.max.loss.dup"));
            };
            let link = LinkConfig {
                latency_ms_min: number(min)?,
                latency_ms_max: number(max)?,
                loss_per_mille: small(loss)?,
                duplicate_per_mille: small(duplicate)?,
            };
            if link.latency_ms_min > link.latency_ms_max {
                return Err(String::from("latency min above max"));
            }
            Input::SetLink { from: node(from)?, to: node(to)?, link }
        }
        'n' => Input::Snapshot(node(args)?),
        'm' => {
            let mut chars = args.chars();
            let kind = chars.next().ok_or("membership change needs a kind")?;
            let rest = chars.as_str();
            let change = match kind {
                'a' => MembershipChange::AddVoter(node(rest)?),
                'l' => MembershipChange::AddLearner(node(rest)?),
                'd' => MembershipChange::DemoteVoter(node(rest)?),
                'r' => MembershipChange::RemoveServer(node(rest)?),
                'x' => MembershipChange::ReplaceVoters(
                    rest.split('.').filter(|s| !s.is_empty()).map(node).collect::<Result<_, _>>()?,
                ),
                other => return Err(format!("unknown membership change {other:?}")),
            };
            Input::ChangeMembership { change }
        }
        'g' if args.is_empty() => Input::TransferLeadership { target: None },
        'g' => Input::TransferLeadership { target: Some(node(args)?) },
        'd' => Input::DropMessage { id: number(args)? },
        'y' => Input::DuplicateMessage { id: number(args)? },
        'v' => {
            let mut fields = args.splitn(3, '.');
            let (Some(id), Some(mode), Some(key)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(String::from("read needs node.mode.key"));
            };
            let mode = match mode {
                "i" => ReadMode::Linearizable,
                "l" => ReadMode::Lease,
                "s" => ReadMode::Stale,
                other => return Err(format!("unknown read mode {other:?}")),
            };
            let key = base64url_decode(key)?;
            if key.len() > raft_core::kv::KEY_BYTES_MAX {
                return Err(format!("read key longer than {} bytes", raft_core::kv::KEY_BYTES_MAX));
            }
            Input::Read { node: node(id)?, key: Bytes::from(key), mode }
        }
        '!' => return Err(String::from("input kind not supported by this run text version")),
        other => return Err(format!("unknown op {other:?}")),
    })
}

fn number(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a number"));
    }
    text.parse().map_err(|_| format!("{text:?} is too large"))
}

/// A per-mille chance: 0..=1000.
fn small(text: &str) -> Result<u32, String> {
    let value = number(text)?;
    if value > 1000 {
        return Err(format!("{value} is above 1000"));
    }
    Ok(value as u32)
}

fn flag(text: &str) -> Result<bool, String> {
    match text {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(format!("{other:?} is not 0 or 1")),
    }
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5): URL-safe and about a third longer than the data.
pub fn base64url_encode(data: &[u8]) -> String {
    let mut text = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |acc, (k, &b)| acc | (u32::from(b) << (16 - 8 * k)));
        for k in 0..=chunk.len() {
            text.push(BASE64URL[((bits >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    text
}

/// Reads base64url without padding.
///
/// # Errors
/// A lowercase description if a character is outside the alphabet or the length is impossible.
pub fn base64url_decode(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 4 == 1 {
        return Err(String::from("base64 text has an impossible length"));
    }
    let mut data = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut bits = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            let value = BASE64URL.iter().position(|&a| a == c).ok_or("bad base64 character")?;
            bits |= (value as u32) << (18 - 6 * k);
        }
        for k in 0..chunk.len() - 1 {
            data.push((bits >> (16 - 8 * k)) as u8);
        }
    }
    Ok(data)
}

/// Checks a node count for a text or an options object.
///
/// # Errors
/// A lowercase description if the count is out of range.
pub fn check_nodes(nodes: usize) -> Result<(), String> {
    if nodes == 0 || nodes > NODES_MAX {
        return Err(format!("nodes must be between 1 and {NODES_MAX}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        for length in 0..10u8 {
            let data: Vec<u8> = (0..length).map(|k| k.wrapping_mul(97).wrapping_add(250)).collect();
            assert_eq!(base64url_decode(&base64url_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64url_encode(b"hi!"), "aGkh");
    }

    #[test]
    fn run_text_round_trips() {
        let mut config = SimConfig::new(7, 99);
        config.link.latency_ms_max = 30;
        config.pre_vote = false;
        let mut script = Script::new();
        script.push(120, Input::Crash(NodeId(3)));
        script.push(500, Input::Propose { data: Bytes::from_static(b"x=1") });
        script.push(500, Input::Partition { side: alloc::vec![NodeId(1), NodeId(2)] });
        script.push(900, Input::SetLink { from: NodeId(1), to: NodeId(2), link: LinkConfig::default() });
        script.push(901, Input::ProposeTo { node: NodeId(2), data: Bytes::new() });
        script.push(950, Input::DuplicateMessage { id: 12 });
        script.push(1000, Input::Heal);
        script.push(1001, Input::Snapshot(NodeId(2)));
        script.push(1002, Input::ChangeMembership { change: MembershipChange::AddLearner(NodeId(6)) });
        let voters = [NodeId(1), NodeId(2), NodeId(6)].into_iter().collect();
        script.push(1003, Input::ChangeMembership { change: MembershipChange::ReplaceVoters(voters) });
        script.push(1004, Input::TransferLeadership { target: Some(NodeId(2)) });
        script.push(1005, Input::TransferLeadership { target: None });
        script.push(
            1006,
            Input::Read { node: NodeId(3), key: Bytes::from_static(b"x"), mode: ReadMode::Lease },
        );
        script.push(1006, Input::Read { node: NodeId(1), key: Bytes::new(), mode: ReadMode::Stale });
        script.push(
            1007,
            Input::Read { node: NodeId(7), key: Bytes::from_static(b"k.~"), mode: ReadMode::Linearizable },
        );
        let text = encode_run(&config, &script);
        assert!(text.starts_with("1~n7.s99."), "{text}");
        assert!(text.ends_with(",1v3.l.eA,0v1.s.,1v7.i.ay5-"), "{text}");
        assert_eq!(decode_run(&text).unwrap(), (config.clone(), script.clone()));
        assert!(!text.contains(".nc"), "no key for a setting links made before it never had");
        config.non_campaigning = 2;
        let text = encode_run(&config, &script);
        assert!(text.contains(".st16.nc2~"), "{text}");
        assert_eq!(decode_run(&text).unwrap(), (config, script));
    }

    #[test]
    fn drifting_clocks_travel_in_the_text_only_when_on() {
        let mut config = SimConfig::new(5, 18);
        assert!(!encode_config(&config).contains("dc"));
        config.adversary.drifting_clocks = true;
        let text = encode_run(&config, &Script::new());
        assert!(text.contains(".dc1~"), "{text}");
        assert_eq!(decode_run(&text).unwrap().0, config);
    }

    #[test]
    fn missing_keys_keep_defaults_and_bad_text_is_refused() {
        let (config, script) = decode_run("1~n3.s8~").unwrap();
        assert_eq!(config, SimConfig::new(3, 8));
        assert!(script.inputs.is_empty());
        assert!(decode_run("2~n3~").unwrap_err().contains("version"));
        assert!(decode_run("1~n3~5c4").unwrap_err().contains("node 4"));
        assert!(decode_run("1~n3~5f1").unwrap_err().contains("unknown op"));
        assert!(decode_run("1~n3~5v1").unwrap_err().contains("node.mode.key"));
        assert!(decode_run("1~n3~5v1.q.eA").unwrap_err().contains("read mode"));
        assert!(decode_run("1~n3~5v4.i.eA").unwrap_err().contains("node 4"));
        assert!(decode_run("1~n0~").unwrap_err().contains("nodes"));
    }
}

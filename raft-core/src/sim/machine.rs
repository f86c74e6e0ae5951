//! The simulated servers' state machine: the list of applied commands, with a chain hash over
//! every applied entry so the checker can compare states (and snapshots) in O(1).
//!
//! The commands are kept already encoded, in the snapshot's own format, so that taking a
//! snapshot copies one buffer instead of serialising every command applied so far: the
//! playground snapshots every 200 entries, and re-encoding the whole history each time made
//! a long run quadratic.

use crate::sim::checker::entry_hash;
use crate::sim::hash::combine;
use crate::types::{Entry, EntryPayload, LogIndex};
use alloc::vec::Vec;
use bytes::Bytes;

/// Bytes per snapshot chunk in the simulator: small, so snapshots travel in many chunks.
pub const SNAPSHOT_CHUNK_BYTES: usize = 512;

/// What a simulated server has applied.
///
/// Its snapshot is the postcard encoding of (`applied`, `chain`, the commands as a sequence of
/// byte strings): varints for the numbers and the count, each command as a varint length and
/// its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStateMachine {
    /// Last index applied.
    pub applied: LogIndex,
    /// Chain hash over every entry applied so far.
    pub chain: u64,
    /// Commands applied.
    count: u64,
    /// Every command applied, in order, each as a varint length and its bytes.
    encoded: Vec<u8>,
}

impl SimStateMachine {
    /// Applies one committed entry.
    pub fn apply(&mut self, entry: &Entry) {
        self.apply_hashed(entry, entry_hash(entry));
    }

    /// Applies one committed entry whose [`entry_hash`] the caller already has.
    pub fn apply_hashed(&mut self, entry: &Entry, hash: u64) {
        self.applied = entry.index;
        self.chain = combine(self.chain, &hash);
        if let EntryPayload::Command(data) = &entry.payload {
            push_varint(&mut self.encoded, data.len() as u64);
            self.encoded.extend_from_slice(data);
            self.count += 1;
        }
    }

    /// The payload of every command applied, in order.
    pub fn commands(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.encoded[..];
        core::iter::from_fn(move || {
            let (command, after) = split_command(rest)?;
            rest = after;
            Some(command)
        })
    }

    /// Every command applied, encoded as in the snapshot (each a varint length and its bytes):
    /// for readers that resume where they stopped ([`split_command`] takes one off the front).
    pub fn encoded_commands(&self) -> &[u8] {
        &self.encoded
    }

    /// How many commands were applied.
    pub fn command_count(&self) -> u64 {
        self.count
    }

    /// The whole state as snapshot bytes.
    pub fn snapshot(&self) -> Bytes {
        let mut data = Vec::with_capacity(30 + self.encoded.len());
        push_varint(&mut data, self.applied.0);
        push_varint(&mut data, self.chain);
        push_varint(&mut data, self.count);
        data.extend_from_slice(&self.encoded);
        Bytes::from(data)
    }

    /// The state a snapshot holds, or `None` if the bytes are not a snapshot. Bytes after the
    /// state are ignored.
    pub fn restore(data: &[u8]) -> Option<SimStateMachine> {
        SimStateMachine::split(data).map(|(machine, _)| machine)
    }

    /// The state at the start of `data` and the bytes after it.
    pub fn split(data: &[u8]) -> Option<(SimStateMachine, &[u8])> {
        let (applied, rest) = take_varint(data)?;
        let (chain, rest) = take_varint(rest)?;
        let (count, commands) = take_varint(rest)?;
        let mut rest = commands;
        for _ in 0..count {
            rest = split_command(rest)?.1;
        }
        let encoded = commands[..commands.len() - rest.len()].to_vec();
        Some((SimStateMachine { applied: LogIndex(applied), chain, count, encoded }, rest))
    }
}

/// One length-prefixed command off the front of `data`, and what follows it.
pub fn split_command(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take_varint(data)?;
    let len = usize::try_from(len).ok()?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// Appends `value` as postcard writes integers and lengths: LEB128, low 7 bits first.
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint written by [`push_varint`]; `None` if it is cut short or too long for a u64.
fn take_varint(data: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (k, &byte) in data.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7F);
        if k == 9 && bits > 1 {
            return None;
        }
        value |= bits << (7 * k);
        if byte & 0x80 == 0 {
            return Some((value, &data[k + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Term;
    use alloc::vec;

    fn command(index: u64, data: Vec<u8>) -> Entry {
        Entry { term: Term(2), index: LogIndex(index), payload: EntryPayload::Command(Bytes::from(data)) }
    }

    /// The snapshot format is postcard's, byte for byte, so snapshots (and the chunks they
    /// travel in) are the same as when the machine was serialised with serde.
    #[test]
    fn snapshot_is_the_postcard_encoding() {
        let mut machine = SimStateMachine::default();
        let mut commands: Vec<Bytes> = Vec::new();
        let sizes = [0usize, 1, 127, 128, 300, 16_400];
        for (k, &size) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..size).map(|b| (b * 7 + k) as u8).collect();
            commands.push(Bytes::from(data.clone()));
            machine.apply(&command(2 * k as u64 + 1, data));
            let noop =
                Entry { term: Term(2), index: LogIndex(2 * k as u64 + 2), payload: EntryPayload::Noop };
            machine.apply(&noop);
            let expected = postcard::to_allocvec(&(machine.applied, machine.chain, &commands)).unwrap();
            assert_eq!(machine.snapshot().to_vec(), expected);
        }
        let decoded: Vec<&[u8]> = machine.commands().collect();
        let expected: Vec<&[u8]> = commands.iter().map(|c| &c[..]).collect();
        assert_eq!(decoded, expected);
        assert_eq!(machine.command_count(), sizes.len() as u64);
    }

    #[test]
    fn restore_reads_back_and_leaves_the_tail() {
        let mut machine = SimStateMachine::default();
        machine.apply(&command(1, vec![1, 2, 3]));
        machine.apply(&command(2, vec![9; 200]));
        let mut data = machine.snapshot().to_vec();
        data.extend_from_slice(b"tail");
        let (restored, rest) = SimStateMachine::split(&data).unwrap();
        assert_eq!(restored, machine);
        assert_eq!(rest, b"tail");
        assert_eq!(SimStateMachine::restore(&data[..data.len() - 6]), None, "cut short");
        assert_eq!(SimStateMachine::restore(&[0xFF; 11]), None, "varint too long");
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            push_varint(&mut out, value);
            assert_eq!(out, postcard::to_allocvec(&value).unwrap());
            assert_eq!(take_varint(&out), Some((value, &[][..])));
        }
    }
}

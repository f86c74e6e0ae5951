//! Random histories that are linearizable by construction, to test and time the checker (and
//! anything that consumes histories) without a cluster.
//!
//! Clients issue operations one after another with random think and service times, so their
//! intervals overlap. Each operation that takes effect gets a linearization point inside its
//! interval (or, for an unknown outcome, anywhere after its invocation); executing the
//! operations against a sequential store in linearization-point order yields the outputs the
//! clients observe. The result is linearizable: the points themselves are a witness.

use crate::linearizability::history::{History, Observed, Op, OperationRecord};
use crate::rng::Rng;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

/// The shape of a generated history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// How many operations.
    pub operations: usize,
    /// How many distinct keys (at least 1).
    pub keys: usize,
    /// How many concurrent clients (at least 1).
    pub clients: usize,
    /// The longest time from invocation to completion (at least 1).
    pub operation_time_max: u64,
    /// The longest pause a client takes between operations.
    pub think_time_max: u64,
    /// Per thousand operations, how many have an unknown outcome (half of them take effect).
    pub unknown_per_mille: u64,
    /// Per thousand operations, how many definitely fail (and do not take effect).
    pub failed_per_mille: u64,
}

impl Default for GeneratorConfig {
    fn default() -> GeneratorConfig {
        GeneratorConfig {
            operations: 1_000,
            keys: 5,
            clients: 4,
            operation_time_max: 20,
            think_time_max: 10,
            unknown_per_mille: 10,
            failed_per_mille: 10,
        }
    }
}

/// How an operation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Takes effect at this time and the client sees the output.
    Known { at: u64 },
    /// Takes effect at this time, or never (`None`), and the client never learns which.
    Unknown { at: Option<u64> },
    /// Never takes effect; the client is told so.
    Failed,
}

/// A random history that is linearizable by construction, fixed by `seed`.
pub fn linearizable_history(config: &GeneratorConfig, seed: u64) -> History {
    let mut rng = Rng::new(seed);
    let keys = config.keys.max(1);
    let operation_time_max = config.operation_time_max.max(1);
    let mut free_at = vec![0u64; config.clients.max(1)];
    // The last value generated for each key: compare-and-swaps mostly expect it, so many
    // succeed and many fail.
    let mut recent: BTreeMap<usize, Bytes> = BTreeMap::new();
    let mut records = Vec::with_capacity(config.operations);
    let mut fates = Vec::with_capacity(config.operations);

    for index in 0..config.operations {
        // The client that is free first goes next (ties by id), so intervals interleave.
        let (client, &start) =
            free_at.iter().enumerate().min_by_key(|&(client, &at)| (at, client)).unwrap_or((0, &0));
        let invoke_time = start + rng.range(0, config.think_time_max + 1);
        let complete_time = invoke_time + rng.range(1, operation_time_max + 1);
        free_at[client] = complete_time;

        let key_number = rng.range(0, keys as u64) as usize;
        let key = Bytes::from(format!("k{key_number}"));
        let value = Bytes::from(format!("v{index}"));
        let op = match rng.range(0, 10) {
            0..=3 => Op::Get { key },
            4..=6 => {
                recent.insert(key_number, value.clone());
                Op::Put { key, value }
            }
            7..=8 => {
                let expected = if rng.chance(4, 5) { recent.get(&key_number).cloned() } else { None };
                recent.insert(key_number, value.clone());
                Op::CompareAndSwap { key, expected, new: value }
            }
            _ => Op::Delete { key },
        };

        let roll = rng.range(0, 1_000);
        let (fate, complete_time) = if roll < config.unknown_per_mille {
            let late = invoke_time + rng.range(0, 4 * operation_time_max + 1);
            let at = rng.chance(1, 2).then_some(late);
            // Some clients give up at a timeout, some never hear back at all.
            (Fate::Unknown { at }, rng.chance(1, 2).then_some(complete_time))
        } else if roll < config.unknown_per_mille + config.failed_per_mille {
            (Fate::Failed, Some(complete_time))
        } else {
            (Fate::Known { at: rng.range(invoke_time, complete_time + 1) }, Some(complete_time))
        };
        let observed = match fate {
            Fate::Failed => Observed::Failed,
            // Filled in below for known outcomes.
            Fate::Known { .. } | Fate::Unknown { .. } => Observed::Unknown,
        };
        records.push(OperationRecord { client: client as u64, invoke_time, complete_time, op, observed });
        fates.push(fate);
    }

    // Execute in linearization-point order; ties by generation order.
    let mut order: Vec<(u64, usize)> = fates
        .iter()
        .enumerate()
        .filter_map(|(index, fate)| match fate {
            Fate::Known { at } | Fate::Unknown { at: Some(at) } => Some((*at, index)),
            Fate::Unknown { at: None } | Fate::Failed => None,
        })
        .collect();
    order.sort_unstable();
    let mut store: BTreeMap<Bytes, Bytes> = BTreeMap::new();
    for (_, index) in order {
        let record = &mut records[index];
        let observed = match &record.op {
            Op::Get { key } => Observed::Value(store.get(key).cloned()),
            Op::Put { key, value } => {
                store.insert(key.clone(), value.clone());
                Observed::Done
            }
            Op::Delete { key } => {
                store.remove(key);
                Observed::Done
            }
            Op::CompareAndSwap { key, expected, new } => {
                let swapped = store.get(key) == expected.as_ref();
                if swapped {
                    store.insert(key.clone(), new.clone());
                }
                Observed::Swapped(swapped)
            }
        };
        if matches!(fates[index], Fate::Known { .. }) {
            record.observed = observed;
        }
    }
    History::from_valid(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let config = GeneratorConfig { operations: 200, ..GeneratorConfig::default() };
        assert_eq!(linearizable_history(&config, 3), linearizable_history(&config, 3));
        assert_ne!(linearizable_history(&config, 3), linearizable_history(&config, 4));
    }

    #[test]
    fn generated_records_are_valid_and_overlap() {
        let config = GeneratorConfig { operations: 500, ..GeneratorConfig::default() };
        let history = linearizable_history(&config, 9);
        assert!(History::new(history.records().to_vec()).is_ok());
        let records = history.records();
        let overlapping =
            records.windows(2).filter(|pair| pair[0].complete_time > Some(pair[1].invoke_time)).count();
        assert!(overlapping > 50, "only {overlapping} overlaps");
    }
}

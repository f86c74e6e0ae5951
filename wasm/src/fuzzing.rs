//! Fuzz harnesses for the playground's inputs, built natively (this is plain Rust): the
//! `run_text` target of `fuzz/` is a one-line shim over [`run_text`], and the stable test
//! `tests/fuzz_regressions.rs` replays the inputs that once failed through the same function.
//! Not part of the module's API.

use crate::cluster::SimCluster;
use crate::options::ClusterOptions;
use crate::run_text::{decode_run, encode_run};

/// Simulated time a decoded run is played for, at most: enough to elect, replicate and feed
/// the first inputs; bounded so that one input stays fast.
pub const RUN_MS_MAX: u64 = 300;
/// Servers a decoded run may have to be played (larger ones are only decoded).
pub const RUN_NODES_MAX: usize = 7;

/// `run_text`: first byte even: the rest is a run text (the URL fragment), decoded as
/// `SimCluster.fromRun` does; odd: the rest sets `SimCluster` options field by field.
///
/// Oracles: nothing panics; a run text that decodes encodes back to a text that decodes to the
/// same run; a valid run or option set builds a cluster that runs.
pub fn run_text(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let Ok(text) = core::str::from_utf8(rest) else { return };
        let Ok((config, script)) = decode_run(text) else { return };
        let again = encode_run(&config, &script);
        let decoded = decode_run(&again).unwrap_or_else(|e| panic!("re-encoded run {again:?} refused: {e}"));
        assert_eq!(decoded, (config.clone(), script.clone()), "run text changed in a round trip");
        if config.nodes <= RUN_NODES_MAX {
            if let Ok(mut cluster) = SimCluster::with_script(config, script) {
                cluster.run_to(RUN_MS_MAX);
            }
        }
    } else {
        let options = options_from_bytes(rest);
        let Ok(config) = options.to_config() else { return };
        assert_eq!(ClusterOptions::from_config(&config).to_config(), Ok(config.clone()));
        if config.nodes <= RUN_NODES_MAX {
            if let Ok(mut cluster) = SimCluster::with_script(config, raft_core::sim::Script::new()) {
                cluster.run_to(RUN_MS_MAX);
            }
        }
    }
}

/// Options from bytes: per field a presence byte, then its value (little-endian).
fn options_from_bytes(data: &[u8]) -> ClusterOptions {
    let mut reader = Reader { data };
    ClusterOptions {
        nodes: reader.option(|r| r.u64() as usize),
        seed: reader.option(Reader::u64),
        tick_ms: reader.option(Reader::u64),
        election_timeout_ticks: reader.option(Reader::u64),
        heartbeat_interval_ticks: reader.option(Reader::u64),
        latency_ms_min: reader.option(Reader::u64),
        latency_ms_max: reader.option(Reader::u64),
        loss_per_mille: reader.option(|r| r.u64() as u32),
        duplicate_per_mille: reader.option(|r| r.u64() as u32),
        disk_latency_ms: reader.option(Reader::u64),
        pre_vote: reader.option(|r| r.u64() % 2 == 1),
        check_quorum: reader.option(|r| r.u64() % 2 == 1),
        voters_initial: reader.option(|r| r.u64() as usize),
        snapshot_interval_entries: reader.option(Reader::u64),
        snapshot_trailing_entries: reader.option(Reader::u64),
        non_campaigning: reader.option(|r| r.u64() as usize),
        drifting_clocks: reader.option(|r| r.u64() % 2 == 1),
    }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.data.split_first() else { return 0 };
        self.data = rest;
        first
    }

    /// A value of 1, 2, 4 or 8 bytes, the width chosen by the next byte (small values are
    /// the interesting ones, and easier to find this way).
    fn u64(&mut self) -> u64 {
        let width = 1usize << (self.byte() % 4);
        let mut value = 0u64;
        for k in 0..width {
            value |= u64::from(self.byte()) << (8 * k);
        }
        value
    }

    fn option<T>(&mut self, read: impl FnOnce(&mut Self) -> T) -> Option<T> {
        (self.byte() % 2 == 1).then(|| read(self))
    }
}

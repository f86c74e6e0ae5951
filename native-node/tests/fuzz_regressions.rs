//! Replays, on stable, every input that once broke a fuzz target (`fuzz/regressions/<target>/`)
//! and the committed seed corpora (`fuzz/corpus/<target>/`) through the very harness functions
//! the `cargo fuzz` targets call (`native_node::fuzzing`). A harness panics when an oracle is
//! broken, so each file passing is the regression test.

use std::path::Path;

fn replay(target: &str, harness: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz");
    let mut replayed = 0;
    for folder in ["regressions", "corpus"] {
        let Ok(items) = std::fs::read_dir(fuzz.join(folder).join(target)) else { continue };
        let mut paths: Vec<_> = items.filter_map(|item| item.ok().map(|item| item.path())).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.is_file()) {
            let bytes = std::fs::read(&path).expect("readable input");
            let outcome = std::panic::catch_unwind(|| harness(&bytes));
            assert!(outcome.is_ok(), "{target}: {} fails; reproduce with `scripts/fuzz.sh`", path.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "{target}: no inputs found under {}", fuzz.display());
}

#[test]
fn peer_frame_inputs_replay() {
    replay("peer_frame", native_node::fuzzing::peer_frame);
}

#[test]
fn client_request_inputs_replay() {
    replay("client_request", native_node::fuzzing::client_request);
}

#[test]
fn wal_replay_inputs_replay() {
    replay("wal_replay", native_node::fuzzing::wal_replay);
}

#[test]
fn protocol_inputs_replay() {
    replay("protocol", native_node::fuzzing::protocol);
}

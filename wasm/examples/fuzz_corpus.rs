//! Writes the seed corpus of the `run_text` fuzz target (`fuzz/corpus/run_text/`): run texts
//! as the playground writes them into shared links (generated fault scripts of a few seeds,
//! the documented example) and a few option sets.
//!
//! `cargo run -p flotilla-wasm --example fuzz_corpus [-- <fuzz dir>]`; deterministic.

use flotilla_wasm::run_text::encode_run;
use raft_core::sim::{generate, FaultSet, NemesisPlan, SimConfig};
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let fuzz_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz"));
    let dir = fuzz_dir.join("corpus").join("run_text");
    fs::create_dir_all(&dir).expect("corpus folder");
    let write = |name: &str, bytes: &[u8]| fs::write(dir.join(name), bytes).expect("corpus file");
    for (k, (nodes, seed, faults)) in
        [(3, 1, FaultSet::none()), (5, 2, FaultSet::all()), (5, 42, FaultSet::all()), (7, 9, FaultSet::all())]
            .into_iter()
            .enumerate()
    {
        let config = SimConfig::new(nodes, seed);
        let script = generate(&config, &NemesisPlan::new(faults, 2_000));
        let mut script = script;
        script.inputs.truncate(40);
        write(&format!("run-{k:02}"), &[b"\x00", encode_run(&config, &script).as_bytes()].concat());
    }
    let examples = [
        "1~n5.s42.tk10.et10.hb2.lt1-5.ls0.dp0.dk1.pv1.cq1~120c3,380r3,0h,25p.eDE",
        "1~n3~0t1,10v1.i.eA,10v2.l.eA,10v3.s.eA,5ma4,5ml5,5md2,5mr3,5mx1.2.3,5g2,5g,5n1",
        "1~n3~0x1.2,5k1.2,5o1.2,5l1.2.1.5.10.10,5d1,5y1,5z2,5u2,5w3,5q1.eQ",
        "1~n1~",
        "2~n5~",
    ];
    for (k, text) in examples.iter().enumerate() {
        write(&format!("example-{k:02}"), &[b"\x00", text.as_bytes()].concat());
    }
    // Options, field by field: [present][width][value bytes]...
    write("options-default", &[1u8]);
    write("options-3-nodes", &[1u8, 1, 0, 3]);
    write("options-timing", &[1u8, 1, 0, 5, 1, 0, 7, 0, 1, 0, 20, 1, 0, 2]);
    write("options-all", &[&[1u8][..], &[1, 0, 9].repeat(15)].concat());
    println!("wrote the corpus in {}", dir.display());
}

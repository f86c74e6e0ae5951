//! Checks a key-value history for linearizability and says how long it took.
//!
//! ```text
//! cargo run -p raft-core --release --example check_history
//!     generate and check a 10,000-operation history (10 keys, 8 clients), then harder shapes
//! cargo run -p raft-core --release --example check_history -- --operations 50000 --keys 4 --seed 7
//!     one generated history of your shape
//! cargo run -p raft-core --release --example check_history -- --stale-read
//!     the same, with a stale read injected at the end, to see a counterexample
//! cargo run -p raft-core --release --example check_history -- history.json
//!     a recorded history: a JSON array of `OperationRecord`s
//! ```

use raft_core::linearizability::{
    check, linearizable_history, GeneratorConfig, History, Observed, Op, OperationRecord,
};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match run(&arguments) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("check_history: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(arguments: &[String]) -> Result<ExitCode, String> {
    let mut config =
        GeneratorConfig { operations: 10_000, keys: 10, clients: 8, ..GeneratorConfig::default() };
    let mut seed = 1;
    let mut stale_read = false;
    let mut custom = false;
    let mut file = None;
    let mut rest = arguments.iter();
    while let Some(argument) = rest.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            custom = true;
            let value = rest.next().ok_or_else(|| format!("{name} needs a value"))?;
            value.parse().map_err(|_| format!("{name}: not a number: {value}"))
        };
        match argument.as_str() {
            "--operations" => config.operations = number("--operations")? as usize,
            "--keys" => config.keys = number("--keys")? as usize,
            "--clients" => config.clients = number("--clients")? as usize,
            "--operation-time-max" => config.operation_time_max = number("--operation-time-max")?,
            "--think-time-max" => config.think_time_max = number("--think-time-max")?,
            "--unknown-per-mille" => config.unknown_per_mille = number("--unknown-per-mille")?,
            "--failed-per-mille" => config.failed_per_mille = number("--failed-per-mille")?,
            "--seed" => seed = number("--seed")?,
            "--stale-read" => {
                stale_read = true;
                custom = true;
            }
            path if !path.starts_with("--") => file = Some(path.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }

    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
        let history: History = serde_json::from_str(&text).map_err(|error| format!("{path}: {error}"))?;
        return Ok(report(&path, &history));
    }
    let shapes = if custom {
        vec![config]
    } else {
        vec![
            config,
            GeneratorConfig { operation_time_max: 100, think_time_max: 0, unknown_per_mille: 50, ..config },
            GeneratorConfig {
                keys: 1,
                operation_time_max: 50,
                think_time_max: 5,
                unknown_per_mille: 100,
                ..config
            },
        ]
    };
    let mut code = ExitCode::SUCCESS;
    for shape in shapes {
        let mut history = linearizable_history(&shape, seed);
        if stale_read {
            history = with_stale_read(&history);
        }
        let label = format!(
            "operations {}, keys {}, clients {}, operation time <= {}, unknown per mille {}, seed {seed}",
            shape.operations, shape.keys, shape.clients, shape.operation_time_max, shape.unknown_per_mille
        );
        if report(&label, &history) != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn report(label: &str, history: &History) -> ExitCode {
    let started = Instant::now();
    let result = check(history);
    let elapsed = started.elapsed();
    println!("{label}");
    println!("  checked in {:.3} s", elapsed.as_secs_f64());
    for line in result.to_string().lines() {
        println!("  {line}");
    }
    if result.is_linearizable() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Appends, after everything else, a write and then a read that misses it. On a key of its
/// own: on a busy key, some pending operation with an unknown outcome (a delete, say) could
/// legitimately explain the miss.
fn with_stale_read(history: &History) -> History {
    let end = history.records().iter().filter_map(|record| record.complete_time).max().unwrap_or(0);
    let mut records = history.records().to_vec();
    let key: raft_core::Bytes = "stale-read".into();
    records.push(OperationRecord {
        client: 1_000,
        invoke_time: end + 10,
        complete_time: Some(end + 20),
        op: Op::Put { key: key.clone(), value: "fresh".into() },
        observed: Observed::Done,
    });
    records.push(OperationRecord {
        client: 1_001,
        invoke_time: end + 30,
        complete_time: Some(end + 40),
        op: Op::Get { key },
        observed: Observed::Value(None),
    });
    History::new(records).expect("appended records are well formed")
}

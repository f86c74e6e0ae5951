//! The history commands of `raft-node`: `kv --record`, `check` and the check that `bench
//! --record` prints (see [`crate::history`]).

use crate::client::{Client, ClientError};
use crate::history::{check_history, html_report, read_history, verdict_text, Recorder};
use raft_core::linearizability::{Op, Verdict};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Most bytes `raft-node check` reads from a history file.
pub const HISTORY_FILE_BYTES_MAX: u64 = 1 << 30;

/// `raft-node kv --record PATH ...`: runs `op` (a get with read mode `read`), appends it to the
/// history and prints the answer as `kv` does.
pub async fn record_kv(path: &Path, mut client: Client, op: &Op, read: &str) -> ExitCode {
    let recorder = match Recorder::append_to(path) {
        Ok(recorder) => recorder,
        Err(error) => {
            eprintln!("error: cannot open the history file {}: {error}", path.display());
            return ExitCode::from(2);
        }
    };
    let answer = recorder.run(&mut client, 0, op, read).await;
    if let Err(error) = recorder.flush() {
        eprintln!("error: cannot write the history file {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    match answer {
        Ok(response) => {
            println!("{response}");
            ExitCode::SUCCESS
        }
        Err(ClientError::Refused { response, .. }) => {
            eprintln!("{response}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `raft-node check PATH [--html REPORT]`: prints the verdict; exits 0 if linearizable, 1 if
/// not, 2 if undecided or the file is unreadable.
pub fn check(path: &Path, html: Option<&Path>) -> ExitCode {
    let history = match read_file(path) {
        Ok(text) => match read_history(&text) {
            Ok(history) => history,
            Err(error) => {
                eprintln!("error: {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
        Err(error) => {
            eprintln!("error: cannot read {}: {error}", path.display());
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let (result, report) = check_history(&history);
    let elapsed = started.elapsed();
    print!("{}", verdict_text(&report));
    println!(
        "checked {} operations on {} keys in {:.3} s ({} search steps)",
        history.len(),
        result.keys.len(),
        elapsed.as_secs_f64(),
        result.steps()
    );
    if let Some(html) = html {
        let title = format!("History of {}: {}", path.display(), report.summary);
        if let Err(error) = std::fs::write(html, html_report(&report, &title)) {
            eprintln!("error: cannot write {}: {error}", html.display());
            return ExitCode::from(2);
        }
        println!("wrote {}", html.display());
    }
    match result.verdict() {
        Verdict::Linearizable => ExitCode::SUCCESS,
        Verdict::NotLinearizable => ExitCode::FAILURE,
        Verdict::Unknown => ExitCode::from(2),
    }
}

/// After `bench --record`: checks the file and prints the verdict and the checker's time on
/// stderr (stdout keeps the bench's JSON line last).
pub fn print_bench_check(path: &Path, bench_time: Duration) {
    let history = match read_file(path).map_err(|e| e.to_string()).and_then(|text| read_history(&text)) {
        Ok(history) => history,
        Err(error) => {
            eprintln!("history: cannot check {}: {error}", path.display());
            return;
        }
    };
    let started = Instant::now();
    let (result, report) = check_history(&history);
    eprintln!(
        "history: {} operations recorded in {:.1} s, checked in {:.3} s ({} search steps): {}",
        history.len(),
        bench_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        result.steps(),
        report.summary
    );
}

fn read_file(path: &Path) -> std::io::Result<String> {
    let length = std::fs::metadata(path)?.len();
    if length > HISTORY_FILE_BYTES_MAX {
        return Err(std::io::Error::other(format!("larger than {HISTORY_FILE_BYTES_MAX} bytes")));
    }
    std::fs::read_to_string(path)
}

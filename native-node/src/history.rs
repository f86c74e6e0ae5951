//! Client histories of native runs: `raft-node bench --record` and `raft-node kv --record`
//! write one JSON line per operation (invocation and response times, outcome, what the client
//! saw); `raft-node check` runs raft-core's linearizability checker on such a file (thesis §6:
//! each operation must appear to take effect at one instant between invocation and response)
//! and `--html` writes a self-contained page with the playground's own history panel.
//!
//! Times are microseconds since the Unix epoch, so lines from several processes (a bench and
//! a few `kv` commands) can go into one file; the checker only compares them.

use crate::client::{Client, ClientError};
use raft_core::linearizability::{
    check, CheckResult, History, HistoryReport, Observed, Op, OperationRecord, TimeUnit,
};
use raft_core::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Keys the recorded bench workload shares among its clients: few, so clients read each
/// other's writes and the history has something to check.
pub const RECORDED_KEYS: usize = 8;

/// Most lines `raft-node check` reads: a bound on what one file can make it allocate.
pub const HISTORY_LINES_MAX: usize = 1_000_000;

/// One operation, as a line of a history file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLine {
    /// Who issued it (a bench client's number, or 0 for the kv CLI).
    pub client: u64,
    /// `put`, `get`, `del` or `cas`.
    pub op: String,
    /// The key.
    pub key: String,
    /// The value written (put), or the new value (cas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For cas: the value expected; `null` or missing expects the key absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// When the client sent it, µs since the Unix epoch.
    pub invoke_us: u64,
    /// When the client got the answer or gave up; missing if it never did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_us: Option<u64>,
    /// `ok` (answered), `failed` (refused: did not take effect) or `unknown`.
    pub outcome: String,
    /// For a get that answered: the value, `null` if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Option<String>>,
    /// For a cas that answered: whether it swapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swapped: Option<bool>,
}

/// Microseconds since the Unix epoch now.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros() as u64)
}

impl HistoryLine {
    /// The line for `op` by `client`, invoked at `invoke_us`, answered (or not) with `answer`
    /// at `complete_us`.
    pub fn new(
        client: u64,
        op: &Op,
        invoke_us: u64,
        complete_us: u64,
        answer: &Result<Value, ClientError>,
    ) -> HistoryLine {
        let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
        let (kind, key, value, expected) = match op {
            Op::Get { key } => ("get", text(key), None, None),
            Op::Put { key, value } => ("put", text(key), Some(text(value)), None),
            Op::Delete { key } => ("del", text(key), None, None),
            Op::CompareAndSwap { key, expected, new } => {
                ("cas", text(key), Some(text(new)), expected.as_ref().map(text))
            }
        };
        let is_cas = matches!(op, Op::CompareAndSwap { .. });
        let (outcome, result, swapped) = match answer {
            Ok(response) => {
                let result = matches!(op, Op::Get { .. })
                    .then(|| response.get("value").and_then(Value::as_str).map(String::from));
                ("ok", result, is_cas.then_some(true))
            }
            // A compare-and-swap that found another value answered: it did not swap.
            Err(ClientError::Refused { code, .. }) if is_cas && code == "cas_failed" => {
                ("ok", None, Some(false))
            }
            // The store refused it: it did not take effect.
            Err(ClientError::Refused { .. }) => ("failed", None, None),
            // No answer in time: it may take effect, now or later.
            Err(ClientError::Unavailable(_)) => ("unknown", None, None),
        };
        HistoryLine {
            client,
            op: kind.into(),
            key,
            value,
            expected,
            invoke_us,
            complete_us: Some(complete_us),
            outcome: outcome.into(),
            result,
            swapped,
        }
    }

    /// The checker's record of this line, with times shifted back by `origin_us`.
    ///
    /// # Errors
    /// What is wrong with the line, in words.
    pub fn to_record(&self, origin_us: u64) -> Result<OperationRecord, String> {
        let key = Bytes::from(self.key.clone().into_bytes());
        let bytes = |value: &Option<String>, what: &str| {
            value
                .clone()
                .map(|v| Bytes::from(v.into_bytes()))
                .ok_or_else(|| format!("a {} needs a {what}", self.op))
        };
        let op = match self.op.as_str() {
            "get" => Op::Get { key },
            "put" => Op::Put { key, value: bytes(&self.value, "value")? },
            "del" => Op::Delete { key },
            "cas" => Op::CompareAndSwap {
                key,
                expected: self.expected.clone().map(|v| Bytes::from(v.into_bytes())),
                new: bytes(&self.value, "value")?,
            },
            other => return Err(format!("unknown op {other:?}")),
        };
        let observed = match (self.outcome.as_str(), &op) {
            ("failed", _) => Observed::Failed,
            ("unknown", _) => Observed::Unknown,
            ("ok", Op::Get { .. }) => {
                let value = self.result.clone().ok_or("an ok get needs a result (null if absent)")?;
                Observed::Value(value.map(|v| Bytes::from(v.into_bytes())))
            }
            ("ok", Op::CompareAndSwap { .. }) => {
                Observed::Swapped(self.swapped.ok_or("an ok cas needs swapped")?)
            }
            ("ok", _) => Observed::Done,
            (other, _) => return Err(format!("unknown outcome {other:?}")),
        };
        Ok(OperationRecord {
            client: self.client,
            invoke_time: self.invoke_us.saturating_sub(origin_us),
            complete_time: self.complete_us.map(|t| t.saturating_sub(origin_us)),
            op,
            observed,
        })
    }
}

/// Appends history lines to a file; shared by a run's clients.
#[derive(Clone)]
pub struct Recorder {
    file: Arc<Mutex<std::io::BufWriter<std::fs::File>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    /// Appends to `path`, creating it if needed.
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn append_to(path: &Path) -> std::io::Result<Recorder> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Recorder { file: Arc::new(Mutex::new(std::io::BufWriter::new(file))) })
    }

    /// Writes one line.
    pub fn record(&self, line: &HistoryLine) {
        let Ok(text) = serde_json::to_string(line) else { return };
        if let Ok(mut file) = self.file.lock() {
            if let Err(error) = writeln!(file, "{text}") {
                tracing::warn!(%error, "cannot record a history line");
            }
        }
    }

    /// Writes out everything recorded.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn flush(&self) -> std::io::Result<()> {
        match self.file.lock() {
            Ok(mut file) => file.flush(),
            Err(_) => Ok(()),
        }
    }

    /// Runs `op` with `client` (a get with read mode `read`) and records it as
    /// `client_number`'s; returns the answer.
    pub async fn run(
        &self,
        client: &mut Client,
        client_number: u64,
        op: &Op,
        read: &str,
    ) -> Result<Value, ClientError> {
        let invoke_us = now_us();
        let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
        let answer = match op {
            Op::Get { key } => client.get(&text(key), read).await,
            Op::Put { key, value } => client.put(&text(key), &text(value)).await,
            Op::Delete { key } => client.del(&text(key)).await,
            Op::CompareAndSwap { key, expected, new } => {
                client.cas(&text(key), expected.as_ref().map(text).as_deref(), &text(new)).await
            }
        };
        self.record(&HistoryLine::new(client_number, op, invoke_us, now_us(), &answer));
        answer
    }
}

/// The recorded bench workload's `op`th operation of client `client`: a put of a value unique
/// to it, then a get, alternating, on keys shared by every client.
pub fn recorded_bench_op(client: usize, op: usize, value: &str) -> Op {
    let key = format!("h{}", (client + op / 2) % RECORDED_KEYS);
    if op.is_multiple_of(2) {
        Op::put(key, format!("{client}.{op}.{value}"))
    } else {
        Op::get(key)
    }
}

/// Reads a history file: one [`HistoryLine`] per line, blank lines skipped. Times are shifted
/// so the earliest invocation is 0.
///
/// # Errors
/// The first line that does not parse or make sense, with its number.
pub fn read_history(text: &str) -> Result<History, String> {
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if lines.len() == HISTORY_LINES_MAX {
            return Err(format!("more than {HISTORY_LINES_MAX} operations"));
        }
        let parsed: HistoryLine =
            serde_json::from_str(line).map_err(|error| format!("line {}: {error}", number + 1))?;
        lines.push((number + 1, parsed));
    }
    let origin_us = lines.iter().map(|(_, line)| line.invoke_us).min().unwrap_or(0);
    let records = lines
        .iter()
        .map(|(number, line)| line.to_record(origin_us).map_err(|error| format!("line {number}: {error}")))
        .collect::<Result<Vec<_>, _>>()?;
    History::new(records).map_err(|error| format!("{error} (operations count from 0, blank lines skipped)"))
}

/// Checks `history` and makes the report the panel draws.
pub fn check_history(history: &History) -> (CheckResult, HistoryReport) {
    let result = check(history);
    let report = HistoryReport::new(history, &result, TimeUnit::Us);
    (result, report)
}

/// The verdict in words, for the terminal: the summary, then each violation's sentence and its
/// operations, the one that cannot be placed marked with `!`.
pub fn verdict_text(report: &HistoryReport) -> String {
    let mut text = format!("{}\n", report.summary);
    for violation in &report.violations {
        text.push_str(&format!(
            "key {}: {} ({} of its {} operations, {}):\n",
            violation.key,
            violation.sentence,
            violation.operations.len(),
            violation.key_operations,
            violation.shrink
        ));
        for &id in &violation.operations {
            let op = &report.operations[id];
            let mark = if id == violation.blocked { "!" } else { " " };
            let complete = op.complete.map_or_else(|| "-".into(), |t| t.to_string());
            text.push_str(&format!(
                "  {mark} #{id} client {} [{} µs, {complete} µs] {} -> {}\n",
                op.client, op.invoke, op.label, op.result
            ));
        }
    }
    for undecided in &report.undecided {
        text.push_str(&format!("undecided: {undecided}\n"));
    }
    text
}

/// A self-contained HTML page showing `report` with the playground's history panel: its
/// modules (web/render.js, web/canvas.js, web/history.js) are inlined, so the page needs no
/// server and no network.
pub fn html_report(report: &HistoryReport, title: &str) -> String {
    const RENDER_JS: &str = include_str!("../../web/render.js");
    const CANVAS_JS: &str = include_str!("../../web/canvas.js");
    const HISTORY_JS: &str = include_str!("../../web/history.js");
    // One module: each file's imports are the others, so drop them and their `export`s.
    let module: String = [RENDER_JS, CANVAS_JS, HISTORY_JS]
        .iter()
        .flat_map(|source| source.lines())
        .filter(|line| !line.starts_with("import "))
        .map(|line| line.strip_prefix("export ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let data = serde_json::json!({ "report": report, "bands": [], "nodes": [], "now": report
        .operations
        .iter()
        .filter_map(|op| op.complete.or(Some(op.invoke)))
        .max()
        .unwrap_or(0) });
    // Inside a script element, `</` must not appear: escape it in both the data and the code.
    let data = data.to_string().replace("</", "<\\/");
    let module = module.replace("</script", "<\\/script");
    let title = escape_html(title);
    let verdict_text = escape_html(&verdict_text(report));
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem; color: #0f172a; background: #fff; }}
@media (prefers-color-scheme: dark) {{ body {{ color: #e2e8f0; background: #0b1220; }} }}
.history-summary {{ font-weight: 600; }}
.history-scroll {{ max-height: 70vh; overflow-y: auto; border: 1px solid #94a3b8; border-radius: 6px; }}
.history-canvas {{ display: block; width: 100%; height: 60px; }}
.history-ops button.blocked {{ font-weight: 600; border: 2px solid #b91c1c; }}
.history-tools {{ display: flex; gap: 0.3rem; margin: 0.3rem 0; }}
button {{ font: inherit; }}
pre {{ white-space: pre-wrap; font-size: 0.85rem; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
<section id="history" aria-label="client history"></section>
<h2>Checker output</h2>
<pre>{verdict_text}</pre>
</main>
<script type="application/json" id="history-data">{data}</script>
<script type="module">
{module}
const data = JSON.parse(document.getElementById('history-data').textContent);
const theme = matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
mountHistoryPanel(document.getElementById('history'), {{ theme }}).update(data);
</script>
</body>
</html>
"#
    )
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        client: u64,
        op: &str,
        value: Option<&str>,
        times: (u64, u64),
        result: Option<Option<&str>>,
    ) -> String {
        let line = HistoryLine {
            client,
            op: op.into(),
            key: "x".into(),
            value: value.map(String::from),
            expected: None,
            invoke_us: times.0,
            complete_us: Some(times.1),
            outcome: "ok".into(),
            result: result.map(|r| r.map(String::from)),
            swapped: None,
        };
        serde_json::to_string(&line).unwrap()
    }

    #[test]
    fn a_file_round_trips_and_checks() {
        let good = [
            line(1, "put", Some("1"), (1_000, 1_010), None),
            line(2, "get", None, (1_020, 1_030), Some(Some("1"))),
            line(1, "put", Some("2"), (1_040, 1_050), None),
            line(2, "get", None, (1_060, 1_070), Some(Some("2"))),
        ]
        .join("\n");
        let history = read_history(&good).unwrap();
        assert_eq!(history.records()[0].invoke_time, 0, "times start at the first invocation");
        let (result, report) = check_history(&history);
        assert!(result.is_linearizable(), "{result}");
        assert_eq!(report.summary, "no violation in 4 operations");

        // The same run with the last read made stale.
        let bad = good.replace(r#""result":"2""#, r#""result":"1""#);
        let (result, report) = check_history(&read_history(&bad).unwrap());
        assert!(!result.is_linearizable());
        assert_eq!(report.violations[0].sentence, "get x returned 1 after put x=2 completed");
        let page = html_report(&report, "bad run");
        assert!(page.contains("get x returned 1 after put x=2 completed"));
        assert!(page.contains("function mountHistoryPanel"), "the panel is inlined");
        assert!(!page.contains("\nimport "), "no module imports left");
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        let error = read_history("\n{\"client\":1}\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        let ok_get_without_result = line(1, "get", None, (0, 1), None);
        assert!(read_history(&ok_get_without_result).unwrap_err().contains("needs a result"));
    }
}

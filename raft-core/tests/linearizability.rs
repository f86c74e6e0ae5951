//! The linearizability checker, proven by the failures it catches and the tricky histories it
//! accepts (Herlihy & Wing 1990; Raft thesis §6).

use proptest::prelude::*;
use raft_core::linearizability::{
    check, check_with, linearizable_history, CheckOptions, GeneratorConfig, History, HistoryBuilder,
    HistoryError, Inconclusive, KeyVerdict, Observed, Op, OpId, OperationRecord, ShrinkStatus, Verdict,
};
use raft_core::Bytes;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn value(text: &str) -> Observed {
    Observed::Value(Some(b(text)))
}

/// One operation: `client` runs `op` over `[invoke_time, complete_time]` and sees `observed`.
fn record(
    client: u64,
    invoke_time: u64,
    complete_time: Option<u64>,
    op: Op,
    observed: Observed,
) -> OperationRecord {
    OperationRecord { client, invoke_time, complete_time, op, observed }
}

fn history(records: Vec<OperationRecord>) -> History {
    History::new(records).unwrap()
}

fn verdict(records: Vec<OperationRecord>) -> Verdict {
    check(&history(records)).verdict()
}

// ---- known violations: each must be flagged ----

#[test]
fn a_stale_read_after_a_completed_write_is_flagged() {
    let result = check(&history(vec![
        record(1, 0, Some(10), Op::put("x", "1"), Observed::Done),
        record(2, 20, Some(30), Op::get("x"), Observed::Value(None)),
    ]));
    assert_eq!(result.verdict(), Verdict::NotLinearizable);
    let counterexample = result.counterexamples().next().unwrap();
    assert_eq!(counterexample.key, b("x"));
    assert_eq!(counterexample.shrink, ShrinkStatus::Minimal);
    assert_eq!(counterexample.history_positions, [0, 1]);
    let text = result.to_string();
    assert!(text.starts_with("not linearizable: 2 operations on 1 key,"), "{text}");
    assert!(text.contains("put \"1\" -> ok") && text.contains("get -> absent"), "{text}");
}

#[test]
fn two_reads_that_go_back_in_time_are_flagged() {
    // The write of 2 is slow and overlaps both reads, so either read alone is fine; but once a
    // read has seen 2, a later read must not see 1 again.
    let records = vec![
        record(1, 0, Some(5), Op::put("x", "1"), Observed::Done),
        record(1, 10, Some(100), Op::put("x", "2"), Observed::Done),
        record(2, 20, Some(30), Op::get("x"), value("2")),
        record(3, 40, Some(50), Op::get("x"), value("1")),
    ];
    assert_eq!(verdict(records.clone()), Verdict::NotLinearizable);
    // Swap the reads' order in time and it is fine: 1 then 2.
    let mut fine = records;
    fine[2].observed = value("1");
    fine[3].observed = value("2");
    assert_eq!(verdict(fine), Verdict::Linearizable);
}

#[test]
fn a_lost_write_is_flagged() {
    // Both writes were acknowledged, one after the other, yet later reads show the first.
    assert_eq!(
        verdict(vec![
            record(1, 0, Some(10), Op::put("x", "1"), Observed::Done),
            record(2, 20, Some(30), Op::put("x", "2"), Observed::Done),
            record(3, 40, Some(50), Op::get("x"), value("1")),
            record(3, 60, Some(70), Op::get("x"), value("1")),
        ]),
        Verdict::NotLinearizable
    );
}

#[test]
fn a_compare_and_swap_that_succeeds_twice_from_the_same_value_is_flagged() {
    let zero = Some(b("0"));
    // Even concurrent, two swaps from "0" cannot both succeed: the first leaves "1" or "2".
    let result = check(&history(vec![
        record(1, 0, Some(10), Op::put("x", "0"), Observed::Done),
        record(2, 20, Some(50), Op::cas("x", zero.clone(), "1"), Observed::Swapped(true)),
        record(3, 25, Some(45), Op::cas("x", zero, "2"), Observed::Swapped(true)),
    ]));
    assert_eq!(result.verdict(), Verdict::NotLinearizable);
    assert_eq!(result.counterexamples().next().unwrap().operations.len(), 3);
}

#[test]
fn a_failed_write_that_is_seen_is_flagged() {
    // A definite failure did not take effect, so nobody can read its value.
    assert_eq!(
        verdict(vec![
            record(1, 0, Some(10), Op::put("x", "1"), Observed::Failed),
            record(2, 20, Some(30), Op::get("x"), value("1")),
        ]),
        Verdict::NotLinearizable
    );
}

#[test]
fn an_unknown_write_that_appears_then_vanishes_is_flagged() {
    assert_eq!(
        verdict(vec![
            record(1, 0, None, Op::put("x", "1"), Observed::Unknown),
            record(2, 20, Some(30), Op::get("x"), value("1")),
            record(2, 40, Some(50), Op::get("x"), Observed::Value(None)),
        ]),
        Verdict::NotLinearizable
    );
}

#[test]
fn a_read_of_a_value_from_the_future_is_flagged() {
    assert_eq!(
        verdict(vec![
            record(1, 0, Some(10), Op::get("x"), value("1")),
            record(2, 20, Some(30), Op::put("x", "1"), Observed::Done),
        ]),
        Verdict::NotLinearizable
    );
}

#[test]
fn a_failing_key_does_not_hide_behind_healthy_ones() {
    let mut records = Vec::new();
    for key in ["a", "b", "c"] {
        records.push(record(1, 0, Some(10), Op::put(key, "1"), Observed::Done));
        records.push(record(2, 20, Some(30), Op::get(key), value("1")));
    }
    records.push(record(3, 40, Some(50), Op::get("b"), Observed::Value(None)));
    let result = check(&history(records));
    assert_eq!(result.verdict(), Verdict::NotLinearizable);
    let verdicts: Vec<_> = result.keys.iter().map(|key| (key.key.clone(), key.operations)).collect();
    assert_eq!(verdicts, [(b("a"), 2), (b("b"), 3), (b("c"), 2)]);
    assert!(matches!(result.keys[0].verdict, KeyVerdict::Linearizable));
    assert!(matches!(result.keys[1].verdict, KeyVerdict::NotLinearizable(_)));
}

// ---- tricky but linearizable: each must be accepted ----

#[test]
fn concurrent_writes_may_be_seen_in_either_order() {
    let writes = || {
        vec![
            record(1, 0, Some(50), Op::put("x", "1"), Observed::Done),
            record(2, 10, Some(40), Op::put("x", "2"), Observed::Done),
        ]
    };
    for last in ["1", "2"] {
        let mut records = writes();
        records.push(record(3, 60, Some(70), Op::get("x"), value(last)));
        records.push(record(4, 80, Some(90), Op::get("x"), value(last)));
        assert_eq!(verdict(records), Verdict::Linearizable, "last write {last}");
    }
    // Reads during the writes may even see 2 and then 1: put 2, read, put 1, read.
    let mut records = writes();
    records.push(record(3, 15, Some(20), Op::get("x"), value("2")));
    records.push(record(3, 25, Some(30), Op::get("x"), value("1")));
    assert_eq!(verdict(records), Verdict::Linearizable);
}

#[test]
fn an_unknown_write_may_take_effect_much_later() {
    // The client timed out at 10 and never learned the outcome; the write lands after 100.
    assert_eq!(
        verdict(vec![
            record(1, 0, Some(10), Op::put("x", "1"), Observed::Unknown),
            record(2, 100, Some(110), Op::get("x"), Observed::Value(None)),
            record(2, 200, Some(210), Op::get("x"), value("1")),
        ]),
        Verdict::Linearizable
    );
    // Or never.
    assert_eq!(
        verdict(vec![
            record(1, 0, None, Op::put("x", "1"), Observed::Unknown),
            record(2, 100, Some(110), Op::get("x"), Observed::Value(None)),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn a_failed_write_is_never_seen_and_that_is_fine() {
    assert_eq!(
        verdict(vec![
            record(1, 0, Some(10), Op::put("x", "1"), Observed::Failed),
            record(2, 20, Some(30), Op::get("x"), Observed::Value(None)),
            record(1, 40, Some(50), Op::cas("x", None, "2"), Observed::Swapped(true)),
            record(2, 60, Some(70), Op::get("x"), value("2")),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn an_unknown_compare_and_swap_may_explain_a_later_state() {
    assert_eq!(
        verdict(vec![
            record(1, 0, Some(10), Op::put("x", "0"), Observed::Done),
            record(2, 20, None, Op::cas("x", Some(b("0")), "1"), Observed::Unknown),
            record(3, 30, Some(40), Op::cas("x", Some(b("0")), "2"), Observed::Swapped(false)),
            record(3, 50, Some(60), Op::get("x"), value("1")),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn deletes_and_failed_swaps_follow_the_register() {
    assert_eq!(
        verdict(vec![
            record(1, 0, Some(10), Op::put("x", "1"), Observed::Done),
            record(1, 20, Some(30), Op::delete("x"), Observed::Done),
            record(2, 40, Some(50), Op::cas("x", Some(b("1")), "2"), Observed::Swapped(false)),
            record(2, 60, Some(70), Op::get("x"), Observed::Value(None)),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn operations_that_touch_at_one_instant_count_as_concurrent() {
    assert_eq!(
        verdict(vec![
            record(1, 0, Some(10), Op::put("x", "1"), Observed::Done),
            record(2, 10, Some(20), Op::get("x"), Observed::Value(None)),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn errors_are_thread_safe_and_histories_round_trip_through_json() {
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    error::<HistoryError>();
    let original = history(vec![record(1, 0, None, Op::cas("x", None, "1"), Observed::Unknown)]);
    let json = serde_json::to_string(&original).unwrap();
    assert_eq!(serde_json::from_str::<History>(&json).unwrap(), original);
    let backwards =
        r#"[{"client":1,"invoke_time":5,"complete_time":1,"op":{"Get":{"key":[120]}},"observed":"Failed"}]"#;
    assert!(serde_json::from_str::<History>(backwards).is_err(), "deserializing validates");
}

#[test]
fn an_empty_history_is_linearizable() {
    let result = check(&History::default());
    assert_eq!(result.verdict(), Verdict::Linearizable);
    assert!(result.keys.is_empty());
}

// ---- the builder ----

#[test]
fn the_builder_records_invocations_and_completions() {
    let mut builder = HistoryBuilder::new();
    let write = builder.invoke(1, 0, Op::put("x", "1"));
    let read = builder.invoke(2, 5, Op::get("x"));
    let lost = builder.invoke(3, 6, Op::put("x", "2"));
    builder.complete(write, 10, Observed::Done).unwrap();
    assert_eq!(
        builder.complete(write, 11, Observed::Done),
        Err(HistoryError::AlreadyCompleted { id: write })
    );
    assert_eq!(builder.complete(read, 4, value("1")), Err(HistoryError::CompletesBeforeInvoke { id: read }));
    assert_eq!(
        builder.complete(read, 12, Observed::Done),
        Err(HistoryError::ObservedDoesNotFit { id: read })
    );
    assert_eq!(
        builder.complete(OpId(9), 12, Observed::Done),
        Err(HistoryError::UnknownOperation { id: OpId(9) })
    );
    builder.complete(read, 12, value("2")).unwrap();
    let history = builder.build();
    // Never completed: unknown outcome, which is what lets the read of 2 be linearizable.
    assert_eq!(history.records()[lost.0].complete_time, None);
    assert_eq!(history.records()[lost.0].observed, Observed::Unknown);
    assert!(check(&history).is_linearizable());
    assert_eq!(
        HistoryError::ObservedWithoutCompletion { id: OpId(3) }.to_string(),
        "operation 3 has an output but no completion time"
    );
    let no_completion = record(1, 0, None, Op::get("x"), Observed::Value(None));
    assert_eq!(
        History::new(vec![no_completion]),
        Err(HistoryError::ObservedWithoutCompletion { id: OpId(0) })
    );
}

// ---- bounds ----

#[test]
fn a_pathological_history_is_reported_too_complex_instead_of_hanging() {
    // Forty concurrent writes and a read of a value nobody wrote: refuting it means trying
    // every subset of the writes.
    let mut records: Vec<OperationRecord> =
        (0..40).map(|i| record(i, 0, Some(100), Op::put("x", format!("{i}")), Observed::Done)).collect();
    records.push(record(99, 50, Some(60), Op::get("x"), value("nobody")));
    records.push(record(98, 50, Some(60), Op::get("x"), value("0")));
    let options = CheckOptions { search_steps_max: 100_000, ..CheckOptions::default() };
    let result = check_with(&history(records), &options);
    assert_eq!(result.verdict(), Verdict::Unknown);
    assert!(matches!(
        result.keys[0].verdict,
        KeyVerdict::Unknown(Inconclusive::StepsExhausted { steps: 100_000 })
    ));
    assert!(result.to_string().contains("too complex"), "{result}");
}

// ---- generated histories ----

/// Appends two sequential reads of `key`, after everything else completed, that disagree. With
/// no unknown outcomes the state is fixed by then, so the history cannot be linearizable.
fn with_contradiction(history: &History, key: &str, first: Observed, second: Observed) -> History {
    assert_ne!(first, second);
    let end = history.records().iter().filter_map(|record| record.complete_time).max().unwrap_or(0);
    let mut records = history.records().to_vec();
    records.push(record(100, end + 10, Some(end + 11), Op::get(b(key)), first));
    records.push(record(101, end + 20, Some(end + 21), Op::get(b(key)), second));
    History::new(records).unwrap()
}

/// The values written to `key` by acknowledged puts, in invocation order.
fn acknowledged_puts(history: &History, key: &str) -> Vec<Bytes> {
    let mut puts: Vec<_> = history
        .records()
        .iter()
        .filter_map(|record| match (&record.op, &record.observed) {
            (Op::Put { key: k, value }, Observed::Done) if k == key.as_bytes() => {
                Some((record.invoke_time, value))
            }
            _ => None,
        })
        .collect();
    puts.sort();
    puts.into_iter().map(|(_, value)| value.clone()).collect()
}

fn ten_thousand_operations() -> GeneratorConfig {
    GeneratorConfig { operations: 10_000, keys: 10, clients: 8, ..GeneratorConfig::default() }
}

#[test]
fn a_ten_thousand_operation_history_is_checked_quickly() {
    let history = linearizable_history(&ten_thousand_operations(), 2024);
    let started = std::time::Instant::now();
    let result = check(&history);
    let elapsed = started.elapsed();
    println!(
        "checked {} operations on {} keys in {:.3} s ({} search steps)",
        history.len(),
        result.keys.len(),
        elapsed.as_secs_f64(),
        result.steps()
    );
    assert_eq!(result.verdict(), Verdict::Linearizable, "{result}");
}

#[test]
fn a_contradiction_in_a_large_history_is_found_and_shrunk() {
    let config = GeneratorConfig { unknown_per_mille: 0, ..ten_thousand_operations() };
    let generated = linearizable_history(&config, 77);
    // Two real values: the checker must work out that both cannot be current at the end.
    let puts = acknowledged_puts(&generated, "k3");
    let (first, second) = (puts[puts.len() / 3].clone(), puts[puts.len() / 2].clone());
    let history =
        with_contradiction(&generated, "k3", Observed::Value(Some(first)), Observed::Value(Some(second)));
    let result = check(&history);
    println!("{result}");
    assert_eq!(result.verdict(), Verdict::NotLinearizable);
    let counterexample = result.counterexamples().next().unwrap();
    assert_eq!(counterexample.key, b("k3"));
    assert!(counterexample.key_operations > 500);
    assert!(counterexample.operations.len() <= 4, "{counterexample}");
    assert_eq!(counterexample.shrink, ShrinkStatus::Minimal);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn histories_from_a_sequential_execution_are_always_accepted(
        seed in any::<u64>(),
        operations in 0usize..400,
        keys in 1usize..4,
        clients in 1usize..8,
        operation_time_max in 1u64..40,
        think_time_max in 0u64..20,
        unknown_per_mille in 0u64..100,
        failed_per_mille in 0u64..100,
    ) {
        let config = GeneratorConfig {
            operations, keys, clients, operation_time_max, think_time_max, unknown_per_mille, failed_per_mille,
        };
        let history = linearizable_history(&config, seed);
        let result = check(&history);
        prop_assert_eq!(result.verdict(), Verdict::Linearizable, "{}", result);
    }

    #[test]
    fn an_injected_contradiction_is_always_flagged(seed in any::<u64>(), operations in 0usize..300) {
        let config = GeneratorConfig { operations, keys: 2, unknown_per_mille: 0, ..GeneratorConfig::default() };
        let generated = linearizable_history(&config, seed);
        let history = with_contradiction(&generated, "k0", value("first"), Observed::Value(None));
        let result = check(&history);
        prop_assert_eq!(result.verdict(), Verdict::NotLinearizable);
        // A read of a value nobody wrote is the whole story: it shrinks to that one read.
        let counterexample = result.counterexamples().next().unwrap();
        prop_assert_eq!(&counterexample.history_positions, &[history.len() - 2]);
        prop_assert_eq!(counterexample.shrink, ShrinkStatus::Minimal);
    }
}

// ---- the witness: the linearization the checker reports is a real one ----

/// Replays each key's reported linearization on a register: every point lies inside its
/// operation, points never go back in time, and each operation's output fits the value there
/// (thesis §6.3: each operation takes effect at one instant between invocation and response).
#[test]
fn reported_linearizations_are_valid_witnesses() {
    use raft_core::linearizability::linearization_points;
    for seed in 0..20 {
        let config = GeneratorConfig { operations: 400, keys: 3, clients: 6, ..GeneratorConfig::default() };
        let history = linearizable_history(&config, seed);
        let result = check(&history);
        assert!(result.is_linearizable(), "seed {seed}: {result}");
        let mut placed = 0;
        for key in &result.keys {
            let points = linearization_points(history.records(), &key.linearization);
            let mut last_time = 0;
            for point in &points {
                let record = &history.records()[point.position];
                assert!(
                    point.time >= record.invoke_time && point.time >= last_time,
                    "seed {seed}: {point:?}"
                );
                // An operation whose client gave up may take effect later (see the module docs).
                let known = record.complete_time.filter(|_| record.is_known());
                assert!(known.is_none_or(|t| point.time <= t), "seed {seed}: {point:?}");
                last_time = point.time;
                let fits = match (&record.op, &record.observed) {
                    (Op::Get { .. }, Observed::Value(seen)) => *seen == point.before,
                    (Op::CompareAndSwap { expected, .. }, Observed::Swapped(swapped)) => {
                        (*expected == point.before) == *swapped
                    }
                    _ => true,
                };
                assert!(fits, "seed {seed}: {record:?} does not fit {point:?}");
            }
            placed += points.len();
        }
        // Everything with a known outcome that was not a definite failure is placed.
        let known =
            history.records().iter().filter(|r| r.is_known() && r.observed != Observed::Failed).count();
        assert!(placed >= known, "seed {seed}: placed {placed} of {known}");
    }
}

//! Exactly once (contract 2.6), as properties: whatever the batch boundaries, redeliveries,
//! store failures at any request (refused, or applied with the reply lost), cold starts (a crash
//! loses the processor's memory), checkpoints, and batches Lambda gives up on and that are
//! replayed later, and publisher rounds in between (failing at any write, losing replies,
//! racing each other, cut short by their budget), the datasets end up holding every valid event
//! once (the first copy of an `event_id` within 10 minutes), every rejected record once, and
//! aggregates equal to the detail rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use processor::kinesis::InputRecord;
use processor::ledger::Settings;
use processor::{Processor, ProcessorConfig};
use proptest::prelude::*;
use sink::store::ObjectStore;
use sink::{RecordMeta, Table};
use testkit::faulty::{Fault, Faulty};
use testkit::{i, read_table, s};

const T0: i64 = 1_795_435_200_000; // 2026-11-23T12:00:00Z

/// Checkpoints every few commits (so that cold starts read them), and a retention long enough
/// that nothing in these tests is folded.
fn config() -> ProcessorConfig {
    ProcessorConfig {
        ledger: Settings { retention: Duration::from_secs(8760 * 3600), checkpoint_every: 3, checkpoint_min_ids: 4 },
        ..ProcessorConfig::default()
    }
}

fn processor(store: &Arc<Faulty>) -> Processor<Arc<Faulty>> {
    Processor::with_config(store.clone(), "pre/", config())
}

#[derive(Debug, Clone)]
enum Kind {
    PageView,
    Cart,
    Order(Vec<(usize, i64, i64)>),
    BadJson,
    BadSchema,
    BadTotal,
}

#[derive(Debug, Clone)]
struct Spec {
    kind: Kind,
    id: usize,
    gap_ms: i64,
    age_ms: i64,
    country: usize,
    device: usize,
}

fn spec() -> impl Strategy<Value = Spec> {
    let line = (0usize..3, 1i64..5, 0i64..5000);
    let kind = prop_oneof![
        3 => Just(Kind::PageView),
        2 => Just(Kind::Cart),
        3 => prop::collection::vec(line, 1..4).prop_map(Kind::Order),
        1 => Just(Kind::BadJson),
        1 => Just(Kind::BadSchema),
        1 => Just(Kind::BadTotal),
    ];
    let gap = prop_oneof![4 => Just(0i64), 4 => Just(1_000), 2 => Just(45_000), 1 => Just(240_000), 1 => Just(601_000)];
    (kind, 0usize..10, gap, 0i64..7_200_000, 0usize..3, 0usize..2)
        .prop_map(|(kind, id, gap_ms, age_ms, country, device)| Spec { kind, id, gap_ms, age_ms, country, device })
}

fn render(specs: &[Spec]) -> Vec<InputRecord> {
    let mut arrival = T0;
    specs
        .iter()
        .enumerate()
        .map(|(n, sp)| {
            arrival += sp.gap_ms;
            let time = model::format_millis(arrival - sp.age_ms);
            let common = format!(
                r#""event_id":"id-{}","event_time":"{time}","session_id":"s","country":"{}","device":"{}""#,
                sp.id,
                ["US", "DE", "JP"][sp.country],
                ["app", "web"][sp.device]
            );
            let data = match &sp.kind {
                Kind::PageView => format!(r#"{{{common},"event_type":"page_view","page":"/p"}}"#),
                Kind::Cart => format!(
                    r#"{{{common},"event_type":"add_to_cart","product_id":"p","category":"c","unit_price_minor":5,"currency":"USD","quantity":2}}"#
                ),
                Kind::Order(lines) => {
                    let items: Vec<String> = lines
                        .iter()
                        .map(|(c, q, p)| format!(r#"{{"product_id":"p{c}","category":"cat{c}","quantity":{q},"unit_price_minor":{p}}}"#))
                        .collect();
                    let total: i64 = lines.iter().map(|(_, q, p)| q * p).sum();
                    format!(
                        r#"{{{common},"event_type":"order_placed","order_id":"o-{n}","currency":"EUR","items":[{}],"total_minor":{total}}}"#,
                        items.join(",")
                    )
                }
                Kind::BadTotal => format!(
                    r#"{{{common},"event_type":"order_placed","order_id":"o","currency":"EUR","items":[{{"product_id":"p","category":"c","quantity":1,"unit_price_minor":1}}],"total_minor":2}}"#
                ),
                Kind::BadJson => format!(r#"{{{common},"event_type":"#),
                Kind::BadSchema => format!(r#"{{{common},"event_type":"page_view"}}"#),
            };
            InputRecord {
                stream: "orders".into(),
                meta: RecordMeta {
                    shard_id: "shardId-000000000001".into(),
                    sequence_number: (1000 + n).to_string(),
                    sub_sequence_number: 0,
                    partition_key: "s".into(),
                    arrival_ms: arrival,
                },
                data: data.into_bytes(),
                undecodable: false,
            }
        })
        .collect()
}

/// (event_id, sequence_number) of events; (sequence_number, reason_code) of quarantined records;
/// the number of order lines.
type Expected = (Vec<(String, String)>, Vec<(String, String)>, usize);

/// What the datasets must hold: a plain re-statement of the rules, independent of the
/// processor's hashing, batching and state.
fn expected(records: &[InputRecord]) -> Expected {
    let mut kept: HashMap<String, i64> = HashMap::new();
    let (mut events, mut quarantine, mut lines) = (Vec::new(), Vec::new(), 0);
    for r in records {
        match model::validate(&r.data, r.meta.arrival_ms) {
            Ok(e) => {
                let dup =
                    kept.get(&*e.event_id).is_some_and(|k| (r.meta.arrival_ms - k).abs() <= model::DEDUP_WINDOW_MS);
                if !dup {
                    kept.insert(e.event_id.to_string(), r.meta.arrival_ms);
                    lines += e.order.as_ref().map_or(0, |o| o.items.len());
                    events.push((e.event_id.into_owned(), r.meta.sequence_number.clone()));
                }
            }
            Err(rej) => quarantine.push((r.meta.sequence_number.clone(), rej.code.as_str().to_string())),
        }
    }
    events.sort();
    quarantine.sort();
    (events, quarantine, lines)
}

#[derive(Debug, Clone)]
struct Delivery {
    size: usize,
    replay_back: usize,
    fault: Option<(usize, usize, Fault)>,
    /// Count and fail only writes (so that a fault lands on a write of the commit, not a read).
    writes_only: bool,
    cold_start: bool,
    /// When the invocation fails, the event source mapping gives up on the rest of the batch
    /// (retries exhausted): it goes to the on-failure destination and is replayed at the end.
    give_up: bool,
    /// A publisher round after the invocation.
    publish: Option<Round>,
}

/// A publisher round between invocations.
#[derive(Debug, Clone)]
struct Round {
    /// Its writes fail from the nth on (`Refuse`, then a burst: a crash) or lose replies.
    fault: Option<(usize, usize, Fault)>,
    /// A second publisher of the same group runs a round at the same time.
    racing: bool,
    /// Staged bytes a round takes (1: one commit a round).
    round_bytes: u64,
}

fn round() -> impl Strategy<Value = Option<Round>> {
    let fault = prop_oneof![1 => Just(None), 2 => (0usize..30, 1usize..4, fault()).prop_map(Some)];
    let some = (fault, any::<bool>(), prop_oneof![Just(1u64), Just(u64::MAX)])
        .prop_map(|(fault, racing, round_bytes)| Some(Round { fault, racing, round_bytes }));
    prop_oneof![2 => Just(None), 1 => some]
}

async fn publish_round(store: &Arc<Faulty>, r: &Round) {
    let settings = publisher::Settings { round_bytes: r.round_bytes, ..publisher::Settings::default() };
    let one = publisher::Publisher::new(store.clone(), "pre/", settings.clone());
    store.arm(r.fault, true);
    if r.racing {
        let two = publisher::Publisher::new(store.clone(), "pre/", settings);
        let _ = tokio::join!(one.round(), two.round());
    } else {
        let _ = one.round().await;
    }
    store.arm(None, false);
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![Just(Fault::Refuse), Just(Fault::LostReply), Just(Fault::RetryRefused)]
}

fn delivery(give_ups: bool) -> impl Strategy<Value = Delivery> {
    let fault = prop_oneof![2 => Just(None), 3 => (0usize..45, 1usize..4, fault()).prop_map(Some)];
    let back = prop_oneof![3 => Just(0usize), 1 => 1usize..8];
    let give_up = if give_ups { prop::bool::weighted(0.3).boxed() } else { Just(false).boxed() };
    (1usize..14, back, fault, any::<bool>(), prop::bool::weighted(0.25), give_up, round()).prop_map(
        |(size, replay_back, fault, writes_only, cold_start, give_up, publish)| Delivery {
            size,
            replay_back,
            fault,
            writes_only,
            cold_start,
            give_up,
            publish,
        },
    )
}

/// Delivers the records as Lambda's event source mapping would (retrying from the lowest failed
/// record, or giving up on the rest of a failed batch), following the scripted deliveries, then
/// without faults until all succeed; then replays each batch given up on, as `orderstream
/// replay` does, until it succeeds. Returns the store and whether anything was given up.
async fn deliver(records: &[InputRecord], script: &[Delivery]) -> (Arc<Faulty>, bool) {
    let store = Arc::new(Faulty::default());
    let mut p = processor(&store);
    let mut pos = 0;
    let mut given_up: Vec<(usize, usize)> = Vec::new();
    let clean = Delivery {
        size: 10,
        replay_back: 0,
        fault: None,
        writes_only: false,
        cold_start: false,
        give_up: false,
        publish: None,
    };
    for (step, d) in script.iter().chain(std::iter::repeat(&clean)).enumerate() {
        if pos >= records.len() && step >= script.len() {
            break;
        }
        assert!(step < script.len() + 1000, "delivery did not finish");
        if d.cold_start {
            p = processor(&store);
        }
        let start = pos.saturating_sub(d.replay_back).min(records.len().saturating_sub(1));
        let end = (start + d.size).min(records.len());
        store.arm(d.fault, d.writes_only);
        let report = p.process(records[start..end].to_vec()).await;
        store.arm(None, false);
        if let Some(r) = &d.publish {
            publish_round(&store, r).await;
        }
        let lowest =
            report.failed.iter().map(|seq| records.iter().position(|r| &r.meta.sequence_number == seq).unwrap()).min();
        match lowest {
            None => pos = pos.max(end),
            Some(lowest) => {
                assert!(report.error.is_some());
                assert!(lowest >= start && lowest < end);
                if d.give_up {
                    given_up.push((lowest, end));
                    pos = pos.max(end);
                } else {
                    pos = lowest;
                }
            }
        }
    }
    for &(from, to) in &given_up {
        let mut from = from;
        for attempt in 0.. {
            assert!(attempt < 20, "the replay of {from}..{to} did not finish");
            let report = p.process(records[from..to].to_vec()).await;
            match report
                .failed
                .iter()
                .map(|seq| records.iter().position(|r| &r.meta.sequence_number == seq).unwrap())
                .min()
            {
                None => break,
                Some(lowest) => from = lowest,
            }
            p = processor(&store);
        }
        // A second replay of the same range changes nothing.
        let again = p.process(records[from..to].to_vec()).await;
        assert_eq!((again.error, again.files, again.already_committed), (None, 0, to - from), "replayed twice");
    }
    (store, !given_up.is_empty())
}

/// (event_id, sequence number) of the events; (sequence number, reason) of the quarantine;
/// once publisher rounds have published everything committed.
async fn read_back(store: &Faulty) -> (Vec<(String, String)>, Vec<(String, String)>, Vec<testkit::Row>) {
    testkit::publish(store, "pre/").await;
    let audit = publisher::audit::audit(store, "pre/").await.unwrap();
    assert!(audit.holds(), "{audit:?}");
    let mut events: Vec<_> = read_table(store, "pre/", Table::Events)
        .await
        .into_iter()
        .map(|(_, r)| (s(&r, "event_id"), s(&r, "sequence_number")))
        .collect();
    events.sort();
    let mut q: Vec<_> = read_table(store, "pre/", Table::Quarantine)
        .await
        .into_iter()
        .map(|(_, r)| (s(&r, "sequence_number"), s(&r, "reason_code")))
        .collect();
    q.sort();
    let items = read_table(store, "pre/", Table::OrderItems).await.into_iter().map(|(_, r)| r).collect();
    (events, q, items)
}

/// The datasets hold exactly the first copies of each `event_id` (in sequence order) and every
/// rejected record, once.
async fn check_datasets(store: &Faulty, records: &[InputRecord]) {
    let (events, quarantine, lines) = expected(records);
    let (got_events, got_q, items) = read_back(store).await;
    assert_eq!(got_events, events, "events");
    assert_eq!(got_q, quarantine, "quarantine");
    assert_eq!(items.len(), lines, "order_items");
    for r in &items {
        assert!(events.iter().any(|(id, _)| *id == s(r, "event_id")));
        assert_eq!(i(r, "line_total_minor"), i(r, "quantity") * i(r, "unit_price_minor"));
    }
    testkit::aggregates_match_details(store, "pre/").await;
}

/// With replays, records are processed out of sequence order, so the copy of an `event_id` that
/// is kept may be a later one; still every valid record counts once: it is an event, or a kept
/// copy arrived within 10 minutes of it, and no two events share an id within 10 minutes.
async fn check_counts_once(store: &Faulty, records: &[InputRecord]) {
    let (_, quarantine, _) = expected(records);
    let (got_events, got_q, items) = read_back(store).await;
    assert_eq!(got_q, quarantine, "quarantine");
    let arrival: HashMap<&str, i64> =
        records.iter().map(|r| (r.meta.sequence_number.as_str(), r.meta.arrival_ms)).collect();
    let mut present: HashMap<String, Vec<i64>> = HashMap::new();
    for w in got_events.windows(2) {
        assert_ne!(w[0].1, w[1].1, "a record is an event twice");
    }
    for (id, seq) in &got_events {
        present.entry(id.clone()).or_default().push(arrival[seq.as_str()]);
    }
    for (id, times) in &present {
        for a in times {
            for b in times {
                assert!(a == b || (a - b).abs() > model::DEDUP_WINDOW_MS, "{id} counted twice within the window");
            }
        }
    }
    for r in records {
        if let Ok(e) = model::validate(&r.data, r.meta.arrival_ms) {
            let kept = present
                .get(&*e.event_id)
                .is_some_and(|ts| ts.iter().any(|t| (t - r.meta.arrival_ms).abs() <= model::DEDUP_WINDOW_MS));
            assert!(kept, "{} ({}) is neither an event nor a duplicate of one", e.event_id, r.meta.sequence_number);
        }
    }
    for r in &items {
        assert!(got_events.iter().any(|(id, _)| *id == s(r, "event_id")));
    }
    testkit::aggregates_match_details(store, "pre/").await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    // 64 cases in the suite; PROPTEST_CASES=1000 for a longer search.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_batching_redelivery_failure_lost_reply_and_crash_gives_the_same_datasets(
        specs in prop::collection::vec(spec(), 1..40),
        script in prop::collection::vec(delivery(false), 0..30),
    ) {
        let records = render(&specs);
        runtime().block_on(async {
            let (store, _) = deliver(&records, &script).await;
            check_datasets(&store, &records).await;
        });
    }

    #[test]
    fn batches_given_up_and_replayed_later_count_once(
        specs in prop::collection::vec(spec(), 1..40),
        script in prop::collection::vec(delivery(true), 0..30),
    ) {
        let records = render(&specs);
        runtime().block_on(async {
            let (store, gave_up) = deliver(&records, &script).await;
            if gave_up {
                check_counts_once(&store, &records).await;
            } else {
                check_datasets(&store, &records).await;
            }
        });
    }
}

#[test]
fn a_whole_batch_redelivered_and_a_retry_from_the_middle_change_nothing() {
    let specs: Vec<Spec> = (0..30)
        .map(|n| Spec {
            kind: if n % 3 == 0 { Kind::Order(vec![(n % 3, 2, 150)]) } else { Kind::PageView },
            id: n,
            gap_ms: 1000,
            age_ms: 3_000_000,
            country: n % 3,
            device: n % 2,
        })
        .collect();
    let records = render(&specs);
    runtime().block_on(async {
        // Batches 0..20 and 20..30; then the first redelivered whole; then a retry that starts
        // mid-batch and ends elsewhere (different boundaries).
        let script = [(0, 20), (20, 30), (0, 20), (7, 26), (13, 30)];
        let store = Arc::new(Faulty::default());
        let p = processor(&store);
        for (k, (a, b)) in script.into_iter().enumerate() {
            let report = p.process(records[a..b].to_vec()).await;
            assert!(report.error.is_none());
            if k >= 2 {
                assert_eq!((report.already_committed, report.files), (b - a, 0), "redelivery {k} writes nothing");
            }
        }
        // A cold processor finds the same from the ledger (checkpoints and commits).
        let cold = processor(&store).process(records[5..30].to_vec()).await;
        assert_eq!((cold.error, cold.already_committed, cold.files), (None, 25, 0));
        check_datasets(&store, &records).await;
    });
}

#[test]
fn a_producer_retry_in_a_later_batch_counts_once_and_a_quarantined_copy_is_not_the_first() {
    let mk = |kind, gap_ms| Spec { kind, id: 7, gap_ms, age_ms: 1000, country: 0, device: 0 };
    // Invalid copy first (quarantined, not "first"), then the valid one (kept), then retries:
    // 9:59 later (dropped), 10:00 after the kept copy (dropped), 10:00.001 after it (kept anew).
    let specs = [
        mk(Kind::BadSchema, 0),
        mk(Kind::PageView, 1000),
        mk(Kind::PageView, 599_000),
        mk(Kind::PageView, 1000),
        mk(Kind::PageView, 1),
    ];
    let records = render(&specs);
    runtime().block_on(async {
        let store = Arc::new(Faulty::default());
        let p = processor(&store);
        let mut dups = 0;
        for r in &records {
            dups += p.process(vec![r.clone()]).await.duplicates;
        }
        assert_eq!(dups, 2);
        testkit::publish(&*store, "pre/").await;
        let events: Vec<_> = read_table(&*store, "pre/", Table::Events)
            .await
            .into_iter()
            .map(|(_, r)| s(&r, "sequence_number"))
            .collect();
        assert_eq!(events.len(), 2);
        assert!(events.contains(&"1001".to_string()) && events.contains(&"1004".to_string()), "{events:?}");
        check_datasets(&store, &records).await;
    });
}

#[test]
fn a_batch_spanning_hours_writes_each_partition_once_per_commit() {
    let specs: Vec<Spec> = (0..6)
        .map(|n| Spec {
            kind: Kind::Order(vec![(0, 1, 10)]),
            id: n,
            gap_ms: 0,
            age_ms: n as i64 * 1_800_000,
            country: 0,
            device: 0,
        })
        .collect();
    let records = render(&specs);
    runtime().block_on(async {
        let store = Arc::new(Faulty::default());
        let report = processor(&store).process(records.clone()).await;
        // Event times 09:30 to 12:00 span 4 hours: events, order_items, sales and funnel in 4
        // partitions each, one file per partition.
        assert_eq!(report.files, 16);
        testkit::publish(&*store, "pre/").await;
        let keys = store.inner.list("pre/events/").await.unwrap();
        assert_eq!(keys.len(), 4, "one file per hour: {keys:?}");
        check_datasets(&store, &records).await;
    });
}

fn orders(n: usize) -> Vec<InputRecord> {
    let specs: Vec<Spec> = (0..n)
        .map(|n| Spec { kind: Kind::Order(vec![(1, 1, 99)]), id: n, gap_ms: 500, age_ms: 0, country: 1, device: 1 })
        .collect();
    render(&specs)
}

#[test]
fn a_stale_processor_loses_the_commit_race_and_reloads() {
    let records = orders(12);
    runtime().block_on(async {
        let store = Arc::new(Faulty::default());
        let a = processor(&store);
        let b = processor(&store);
        assert!(a.process(records[..4].to_vec()).await.error.is_none());
        // B (another container) takes over the shard and commits the next records.
        let rb = b.process(records[..8].to_vec()).await;
        assert_eq!((rb.already_committed, rb.events), (4, 4));
        // A still believes commit 1 is the latest: its commit 2 is refused, it reloads and
        // finds records 4..8 committed, and commits only 8..12.
        let ra = a.process(records[4..12].to_vec()).await;
        assert_eq!((ra.already_committed, ra.events, ra.error), (4, 4, None));
        check_datasets(&store, &records).await;
        let commits = store.inner.list("pre/_pipeline/orders/shardId-000000000001/commits/").await.unwrap();
        assert_eq!(commits.len(), 3);
    });
}

#[test]
fn a_lost_reply_on_any_write_of_a_commit_is_read_back_never_assumed() {
    // The 3,000-event run of the issue, in small: a fault on the k-th write of a commit, for
    // every k, both ways a lost reply shows: an error, or the retry answered 412.
    let records = orders(20);
    let mut lost = 0;
    runtime().block_on(async {
        for fault in [Fault::LostReply, Fault::RetryRefused] {
            for k in 0..16 {
                let store = Arc::new(Faulty::default());
                let p = processor(&store);
                assert!(p.process(records[..5].to_vec()).await.error.is_none());
                store.arm(Some((k, 1, fault)), true);
                let first = p.process(records[5..12].to_vec()).await;
                store.arm(None, false);
                let mut pos = if first.failed.is_empty() { 12 } else { 12 - first.failed.len() };
                // The rest arrives as Lambda delivers it, from the lowest failed record.
                for _ in 0..5 {
                    let r = p.process(records[pos..].to_vec()).await;
                    if r.failed.is_empty() {
                        break;
                    }
                    pos = records.iter().position(|x| x.meta.sequence_number == r.failed[0]).unwrap();
                }
                check_datasets(&store, &records).await;
                lost += first.lost_replies;
            }
        }
    });
    // The commit record's own lost replies were read back as ours (once per fault kind).
    assert_eq!(lost, 2);
}

#[test]
fn a_batch_that_interleaves_with_the_last_commit_fails_loudly_and_skips_nothing() {
    // ParallelizationFactor 2: one invocation gets the even records, another the odd ones.
    let records = orders(10);
    let evens: Vec<_> = records.iter().step_by(2).cloned().collect();
    let odds: Vec<_> = records.iter().skip(1).step_by(2).cloned().collect();
    runtime().block_on(async {
        let store = Arc::new(Faulty::default());
        let p = processor(&store);
        assert!(p.process(evens.clone()).await.error.is_none());
        for proc in [&p, &processor(&store)] {
            let r = proc.process(odds.clone()).await;
            assert!(r.interleaved, "{r:?}");
            let e = r.error.unwrap();
            assert!(e.contains("ParallelizationFactor"), "{e}");
            assert_eq!(r.failed.len(), odds.len(), "every record of the batch is reported failed");
            assert_eq!((r.events, r.files), (0, 0));
        }
        // What was committed is untouched; the odd records are not "already committed".
        let (events, _, _) = read_back(&store).await;
        assert_eq!(events.len(), evens.len());
        // With the factor back at 1, the shard arrives in order: the odd records commit then.
        let r = p.process(records.clone()).await;
        // (The last odd record lies above the even commit: a plain new record.)
        assert_eq!((r.error, r.already_committed, r.replayed), (None, evens.len(), odds.len() - 1));
        check_datasets(&store, &records).await;
    });
}

#[test]
fn a_store_without_conditional_writes_is_refused_before_anything_is_written() {
    let records = orders(4);
    runtime().block_on(async {
        let store = Arc::new(Faulty::default());
        store.ignore_conditions(true);
        let r = processor(&store).process(records.clone()).await;
        let e = r.error.expect("refused");
        assert!(e.contains("does not honour If-None-Match"), "{e}");
        assert_eq!(r.failed.len(), 4);
        assert!(store.inner.list("pre/").await.unwrap().is_empty(), "nothing left behind");
    });
}

#[test]
fn files_that_disappear_never_stop_a_shard() {
    let records = orders(30);
    runtime().block_on(async {
        let store = Arc::new(Faulty::default());
        let p = processor(&store);
        for chunk in [0..10, 10..20] {
            assert!(p.process(records[chunk].to_vec()).await.error.is_none());
            testkit::publish(&*store, "pre/").await;
        }
        // Erase the latest round's visible files, head.json and every checkpoint, and cold start.
        let removed: Vec<String> = store
            .inner
            .list("pre/")
            .await
            .unwrap()
            .into_iter()
            .filter(|k| {
                k.contains("part-0-00000000000000000002.parquet")
                    || k.ends_with("head.json")
                    || k.contains("/checkpoints/")
            })
            .collect();
        assert!(
            removed.iter().any(|k| k.ends_with(".parquet")) && removed.iter().any(|k| k.contains("checkpoints")),
            "{removed:?}"
        );
        for k in &removed {
            store.inner.delete(k).await.unwrap();
        }
        let cold = processor(&store);
        let r = cold.process(records[15..30].to_vec()).await;
        assert_eq!((r.error, r.already_committed, r.events), (None, 5, 10));
        let (events, _, _) = read_back(&store).await;
        // The erased commit's 10 records are gone by design; nothing else is missing or doubled.
        assert_eq!(events.len(), 20);
        // head.json and a checkpoint are back.
        assert!(store.inner.get("pre/_pipeline/orders/shardId-000000000001/head.json").await.unwrap().is_some());
    });
}

#[test]
fn a_damaged_commit_record_stops_the_shard_with_the_repair_command_and_repair_rebuilds() {
    let records = orders(20);
    runtime().block_on(async {
        let store = Arc::new(Faulty::default());
        // No checkpoint: a cold start reads every commit record.
        let mut cfg = config();
        cfg.ledger.checkpoint_every = 1000;
        cfg.ledger.checkpoint_min_ids = 1000;
        let p = Processor::with_config(store.clone(), "pre/", cfg.clone());
        for chunk in [0..5, 5..10, 10..15] {
            assert!(p.process(records[chunk].to_vec()).await.error.is_none());
        }
        let key = "pre/_pipeline/orders/shardId-000000000001/commits/00000000000000000002.json";
        let good = store.inner.get(key).await.unwrap().unwrap();
        store.inner.put(key, bytes::Bytes::from_static(b"{\"format\": 2, \"garbage\": true}")).await.unwrap();
        store.inner.delete("pre/_pipeline/orders/shardId-000000000001/head.json").await.unwrap();
        let r = Processor::with_config(store.clone(), "pre/", cfg.clone()).process(records[15..20].to_vec()).await;
        let e = r.error.expect("stops");
        assert!(
            e.contains(key)
                && e.contains("orderstream repair --stream orders --shard shardId-000000000001 --prefix pre/"),
            "{e}"
        );
        // Restored from its previous version, the shard goes on; a repair rebuilds the state.
        store.inner.put(key, good).await.unwrap();
        let keys = processor::ledger::ShardKeys::new("pre/", "orders", "shardId-000000000001");
        let rebuilt = processor::ledger::io::rebuild(&*store, &keys, &cfg.ledger).await.unwrap();
        assert_eq!((rebuilt.commits, rebuilt.state.latest), (3, 3));
        assert!(store.inner.get(&keys.checkpoint(3)).await.unwrap().is_some(), "the repair writes a checkpoint");
        let r = Processor::with_config(store.clone(), "pre/", cfg).process(records[10..20].to_vec()).await;
        assert_eq!((r.error, r.already_committed, r.events), (None, 5, 5));
        check_datasets(&store, &records).await;
    });
}

#[test]
fn old_commit_records_are_folded_after_the_retention_and_the_shard_goes_on() {
    // The records are from 2026-11-23, so a retention of zero puts them all out of reach.
    let records = orders(40);
    runtime().block_on(async {
        let store = Arc::new(Faulty::default());
        let mut cfg = config();
        cfg.ledger.retention = Duration::ZERO;
        let p = Processor::with_config(store.clone(), "pre/", cfg.clone());
        let commits_dir = "pre/_pipeline/orders/shardId-000000000001/commits/";
        // Nothing is folded before the publisher is done with it: it reads the commit records.
        for chunk in records[..20].chunks(2) {
            assert!(p.process(chunk.to_vec()).await.error.is_none());
        }
        assert_eq!(store.inner.list(commits_dir).await.unwrap().len(), 10, "unpublished: not folded");
        let settings = publisher::Settings { mark_every: 1, ..publisher::Settings::default() };
        let publisher = publisher::Publisher::new(store.clone(), "pre/", settings);
        for chunk in records[20..].chunks(2) {
            publisher.drain(10).await.unwrap();
            assert!(p.process(chunk.to_vec()).await.error.is_none());
        }
        let commits = store.inner.list(commits_dir).await.unwrap();
        assert!(commits.len() < 10, "folded: {commits:?}");
        let checkpoints = store.inner.list("pre/_pipeline/orders/shardId-000000000001/checkpoints/").await.unwrap();
        assert!(checkpoints.len() <= 2, "{checkpoints:?}");
        // A cold start still recognises a redelivery of the latest batches...
        let cold = Processor::with_config(store.clone(), "pre/", cfg);
        let r = cold.process(records[36..40].to_vec()).await;
        assert_eq!((r.error, r.already_committed), (None, 4));
        // ...and refuses to guess about records older than the ledger keeps.
        let r = cold.process(records[0..2].to_vec()).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("older than the shard's ledger keeps")), "{r:?}");
        check_datasets(&store, &records).await;
    });
}

//! Exactly once (contract 2.6), as properties: whatever the batch boundaries, redeliveries,
//! store failures at any request and cold starts (a crash loses the processor's memory), the
//! datasets end up holding every valid event once (the first copy of an `event_id` within 10
//! minutes), every rejected record once, and aggregates equal to the detail rows.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use processor::kinesis::InputRecord;
use processor::Processor;
use proptest::prelude::*;
use sink::store::{MemoryStore, ObjectStore, StoreError};
use sink::{RecordMeta, Table};
use support::{i, read_table, s};

const T0: i64 = 1_795_435_200_000; // 2026-11-23T12:00:00Z

/// A memory store that fails `burst` requests in a row once `after` requests have gone through.
#[derive(Default)]
struct Faulty {
    inner: MemoryStore,
    ops: AtomicUsize,
    fail_from: AtomicUsize,
    burst: AtomicUsize,
}

impl Faulty {
    fn arm(&self, fault: Option<(usize, usize)>) {
        let (after, burst) = fault.unwrap_or((usize::MAX, 0));
        self.ops.store(0, Ordering::SeqCst);
        self.fail_from.store(after, Ordering::SeqCst);
        self.burst.store(burst, Ordering::SeqCst);
    }

    fn check(&self, op: &'static str, key: &str) -> Result<(), StoreError> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        let from = self.fail_from.load(Ordering::SeqCst);
        if n >= from && n - from < self.burst.load(Ordering::SeqCst) {
            return Err(StoreError::new(op, key, "faulty", "injected: 503 SlowDown"));
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for Faulty {
    fn describe(&self) -> String {
        "faulty memory".into()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.check("get", key)?;
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.check("put", key)?;
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        self.check("put_if_absent", key)?;
        self.inner.put_if_absent(key, body).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        self.check("copy", from)?;
        self.inner.copy(from, to).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.check("exists", key)?;
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check("delete", key)?;
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
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
                    kept.get(&e.event_id).is_some_and(|k| (r.meta.arrival_ms - k).abs() <= model::DEDUP_WINDOW_MS);
                if !dup {
                    kept.insert(e.event_id.clone(), r.meta.arrival_ms);
                    lines += e.order.as_ref().map_or(0, |o| o.items.len());
                    events.push((e.event_id, r.meta.sequence_number.clone()));
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
    fault: Option<(usize, usize)>,
    cold_start: bool,
}

fn delivery() -> impl Strategy<Value = Delivery> {
    let fault = prop_oneof![2 => Just(None), 3 => (0usize..45, 1usize..4).prop_map(Some)];
    let back = prop_oneof![3 => Just(0usize), 1 => 1usize..8];
    (1usize..14, back, fault, prop::bool::weighted(0.25)).prop_map(|(size, replay_back, fault, cold_start)| Delivery {
        size,
        replay_back,
        fault,
        cold_start,
    })
}

/// Delivers the records as Lambda's event source mapping would (retrying from the lowest failed
/// record), following the scripted deliveries, then without faults until all succeed.
async fn deliver(records: &[InputRecord], script: &[Delivery]) -> Arc<Faulty> {
    let store = Arc::new(Faulty::default());
    let new_processor = || Processor::new(store.clone(), "pre/");
    let mut processor = new_processor();
    let mut pos = 0;
    let clean = Delivery { size: 10, replay_back: 0, fault: None, cold_start: false };
    for (step, d) in script.iter().chain(std::iter::repeat(&clean)).enumerate() {
        if pos >= records.len() && step >= script.len() {
            break;
        }
        assert!(step < script.len() + 1000, "delivery did not finish");
        if d.cold_start {
            processor = new_processor();
        }
        let start = pos.saturating_sub(d.replay_back).min(records.len().saturating_sub(1));
        let end = (start + d.size).min(records.len());
        store.arm(d.fault);
        let report = processor.process(records[start..end].to_vec()).await;
        store.arm(None);
        match report.failed.iter().map(|seq| records.iter().position(|r| &r.meta.sequence_number == seq).unwrap()).min()
        {
            None => pos = pos.max(end),
            Some(lowest) => {
                assert!(report.error.is_some());
                assert!(lowest >= start && lowest < end);
                pos = lowest;
            }
        }
    }
    store
}

async fn check_datasets(store: &Faulty, records: &[InputRecord]) {
    let (events, quarantine, lines) = expected(records);
    let mut got_events: Vec<_> = read_table(store, "pre/", Table::Events)
        .await
        .into_iter()
        .map(|(_, r)| (s(&r, "event_id"), s(&r, "sequence_number")))
        .collect();
    got_events.sort();
    assert_eq!(got_events, events, "events");
    let mut got_q: Vec<_> = read_table(store, "pre/", Table::Quarantine)
        .await
        .into_iter()
        .map(|(_, r)| (s(&r, "sequence_number"), s(&r, "reason_code")))
        .collect();
    got_q.sort();
    assert_eq!(got_q, quarantine, "quarantine");
    let items = read_table(store, "pre/", Table::OrderItems).await;
    assert_eq!(items.len(), lines, "order_items");
    for (_, r) in &items {
        assert!(events.iter().any(|(id, _)| *id == s(r, "event_id")));
        assert_eq!(i(r, "line_total_minor"), i(r, "quantity") * i(r, "unit_price_minor"));
    }
    support::aggregates_match_details(store, "pre/").await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_batching_redelivery_failure_and_crash_gives_the_same_datasets(
        specs in prop::collection::vec(spec(), 1..40),
        script in prop::collection::vec(delivery(), 0..30),
    ) {
        let records = render(&specs);
        runtime().block_on(async {
            let store = deliver(&records, &script).await;
            check_datasets(&store, &records).await;
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
        let processor = Processor::new(store.clone(), "pre/");
        for (k, (a, b)) in script.into_iter().enumerate() {
            let report = processor.process(records[a..b].to_vec()).await;
            assert!(report.error.is_none());
            if k >= 2 {
                assert_eq!((report.already_committed, report.files), (b - a, 0), "redelivery {k} writes nothing");
            }
        }
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
        let processor = Processor::new(store.clone(), "pre/");
        let mut dups = 0;
        for r in &records {
            dups += processor.process(vec![r.clone()]).await.duplicates;
        }
        assert_eq!(dups, 2);
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
        let report = Processor::new(store.clone(), "pre/").process(records.clone()).await;
        // Event times 09:30 to 12:00 span 4 hours: events, order_items, sales and funnel in 4
        // partitions each, one file per partition.
        assert_eq!(report.files, 16);
        let keys = store.inner.list("pre/events/").await.unwrap();
        assert_eq!(keys.len(), 4, "{keys:?}");
        check_datasets(&store, &records).await;
    });
}

#[test]
fn a_stale_processor_loses_the_commit_race_and_reloads() {
    let specs: Vec<Spec> = (0..12)
        .map(|n| Spec { kind: Kind::Order(vec![(1, 1, 99)]), id: n, gap_ms: 500, age_ms: 0, country: 1, device: 1 })
        .collect();
    let records = render(&specs);
    runtime().block_on(async {
        let store = Arc::new(Faulty::default());
        let a = Processor::new(store.clone(), "pre/");
        let b = Processor::new(store.clone(), "pre/");
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

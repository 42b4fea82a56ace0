//! Publisher rounds over processors' commits: one file per table and hour and round, aggregates
//! rolled up, and every record exactly once whatever a round's writes do (fail, lose their
//! reply) and however publishers race, regroup or run out of budget.

use std::collections::BTreeMap;
use std::sync::Arc;

use processor::kinesis::KinesisEvent;
use processor::Processor;
use publisher::{Publisher, Settings};
use sink::store::{MemoryStore, ObjectStore};
use sink::Table;
use testkit::faulty::{Fault, Faulty};
use testkit::records::{event, is_valid, kinesis_records};

const A: &str = "shardId-000000000000";
const B: &str = "shardId-000000000001";

/// Commits batches of records `from..to` of each shard, `step` at a time.
async fn commit<S: ObjectStore>(processor: &Processor<S>, batches: &[(&str, std::ops::Range<usize>)]) {
    for (shard, range) in batches {
        let ev: KinesisEvent = serde_json::from_str(&event(&kinesis_records(shard, range.clone()))).unwrap();
        let (_, report) = processor.handle(ev).await;
        assert!(report.error.is_none(), "{:?}", report.error);
    }
}

/// Two shards, three batches each: ids 0..600 on shard A, 1000..1600 on shard B.
fn traffic() -> Vec<(&'static str, std::ops::Range<usize>)> {
    (0..3).flat_map(|i| [(A, i * 200..(i + 1) * 200), (B, 1000 + i * 200..1000 + (i + 1) * 200)]).collect()
}

fn expected_ids(batches: &[(&str, std::ops::Range<usize>)]) -> Vec<String> {
    let mut ids: Vec<String> =
        batches.iter().flat_map(|(_, r)| r.clone()).filter(|&n| is_valid(n)).map(|n| format!("e-{n}")).collect();
    ids.sort();
    ids
}

fn settings() -> Settings {
    Settings { row_group_bytes: 1 << 20, ..Settings::default() }
}

/// The datasets hold every committed record exactly once, aggregates equal details, and the
/// visible files keep section 2.7's shape.
async fn assert_exact(store: &dyn ObjectStore, batches: &[(&str, std::ops::Range<usize>)]) {
    let mut ids: Vec<String> = testkit::read_table(store, "", Table::Events)
        .await
        .into_iter()
        .map(|(_, r)| testkit::s(&r, "event_id"))
        .collect();
    ids.sort();
    assert_eq!(ids, expected_ids(batches), "events exactly once");
    let invalid = batches.iter().flat_map(|(_, r)| r.clone()).filter(|&n| !is_valid(n)).count();
    assert_eq!(testkit::read_table(store, "", Table::Quarantine).await.len(), invalid, "quarantine exactly once");
    testkit::aggregates_match_details(store, "").await;
    let audit = publisher::audit::audit(store, "").await.unwrap();
    assert!(audit.holds(), "{audit:?}");
}

async fn staged(store: &dyn ObjectStore) -> Vec<String> {
    store.list("_staging/").await.unwrap()
}

#[tokio::test]
async fn a_round_merges_every_shards_commits_into_one_file_per_table_and_hour() {
    let store = Arc::new(MemoryStore::new());
    let processor = Processor::new(store.clone(), "");
    let batches = traffic();
    commit(&processor, &batches).await;
    assert_eq!(testkit::read_table(&*store, "", Table::Events).await.len(), 0, "nothing visible before a round");
    let publisher = Publisher::new(store.clone(), "", settings());
    let report = publisher.round().await.unwrap();
    assert_eq!(report.round, Some(1));
    assert_eq!(report.commits(), 6);
    assert_eq!(report.outputs.len(), 5, "one file per table (one hour)");
    assert_eq!(report.input_files, 30);
    assert_exact(&*store, &batches).await;
    let audit = publisher::audit::audit(&*store, "").await.unwrap();
    for (table, t) in &audit.tables {
        assert_eq!((t.files, t.max_files_per_hour_and_round), (1, 1), "{table}");
    }
    assert_eq!(audit.tables[&Table::SalesMinute].max_rows_per_key, 1);
    // Minutes repeat across the six batches: rolled up, fewer rows than the inputs held.
    let sales = testkit::read_table(&*store, "", Table::SalesMinute).await.len() as u64;
    let rows_in: u64 = report.outputs.iter().filter(|o| o.table == "sales_minute").map(|o| o.rows).sum();
    assert_eq!(sales, rows_in);
    assert!(staged(&*store).await.is_empty(), "staged inputs and outputs deleted: {:?}", staged(&*store).await);

    // Nothing new: nothing written.
    let before = store.list("").await.unwrap();
    let idle = publisher.round().await.unwrap();
    assert_eq!((idle.round, idle.commits()), (None, 0));
    assert_eq!(store.list("").await.unwrap(), before);

    // New commits go to the next round's own files.
    let more = vec![(A, 600..800)];
    commit(&processor, &more).await;
    assert_eq!(publisher.round().await.unwrap().round, Some(2));
    let all: Vec<_> = batches.iter().cloned().chain(more).collect();
    assert_exact(&*store, &all).await;
    assert_eq!(publisher::audit::audit(&*store, "").await.unwrap().tables[&Table::Events].files, 2);
}

/// Every write of a round fails in turn (then every write after it: the publisher stopped
/// there), in each of S3's ways; the next rounds finish the work exactly once.
#[tokio::test]
async fn a_round_cut_or_answered_wrongly_at_any_write_is_rolled_forward_exactly_once() {
    let batches = traffic();
    // How many writes a clean round makes.
    let clean = Arc::new(Faulty::default());
    commit(&Processor::new(clean.clone(), ""), &batches).await;
    clean.arm(None, true);
    Publisher::new(clean.clone(), "", settings()).round().await.unwrap();
    let writes = clean.writes.load(std::sync::atomic::Ordering::SeqCst);
    assert!(writes > 10, "{writes}");
    for fault in [Fault::Refuse, Fault::LostReply, Fault::RetryRefused] {
        let mut failed = 0;
        for k in 0..writes {
            let store = Arc::new(Faulty::default());
            commit(&Processor::new(store.clone(), ""), &batches).await;
            // Refused: every later write is refused too (a crash); a lost reply: just this one.
            let burst = if fault == Fault::Refuse { usize::MAX } else { 1 };
            store.arm(Some((k, burst, fault)), true);
            let first = Publisher::new(store.clone(), "", settings()).round().await;
            failed += usize::from(first.is_err());
            store.arm(None, true);
            let after = Publisher::new(store.clone(), "", settings()).drain(10).await;
            assert!(after.is_ok(), "{fault:?} at write {k}: {after:?} (first: {first:?})");
            assert_exact(&*store, &batches).await;
            assert!(
                staged(&*store).await.iter().all(|k| k.contains("/_publish/")),
                "{fault:?} at write {k}: inputs left staged"
            );
        }
        assert!(failed > 0, "{fault:?}: no round failed");
    }
}

#[tokio::test]
async fn publishers_of_one_group_racing_never_publish_a_commit_twice() {
    let store = Arc::new(MemoryStore::new());
    let processor = Processor::new(store.clone(), "");
    let one = Publisher::new(store.clone(), "", settings());
    let two = Publisher::new(store.clone(), "", settings());
    let mut all = Vec::new();
    for i in 0..6 {
        let batch = vec![(if i % 2 == 0 { A } else { B }, i * 100..(i + 1) * 100)];
        commit(&processor, &batch).await;
        all.extend(batch);
        let (a, b) = tokio::join!(one.round(), two.round());
        // At most one of them decides a given round; the other finds it taken or empty.
        if let (Ok(a), Ok(b)) = (&a, &b) {
            assert!(a.round.is_none() || a.round != b.round);
        }
    }
    one.drain(10).await.unwrap();
    assert_exact(&*store, &all).await;
}

#[tokio::test]
async fn groups_share_the_shards_out_and_a_change_of_groups_publishes_nothing_twice() {
    let store = Arc::new(MemoryStore::new());
    let processor = Processor::new(store.clone(), "");
    let shards: Vec<String> = (0..6).map(|i| format!("shardId-{i:012}")).collect();
    let mut all: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        all.push((s.as_str(), i * 1000..i * 1000 + 100));
    }
    commit(&processor, &all).await;
    // One group publishes half the shards' first batches...
    let single = Publisher::new(store.clone(), "", settings());
    single.round().await.unwrap();
    // ...then three groups take over, each its own shards.
    let mut more = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        more.push((s.as_str(), i * 1000 + 100..i * 1000 + 200));
    }
    commit(&processor, &more).await;
    let mut owners: BTreeMap<String, u32> = BTreeMap::new();
    for g in 0..3 {
        let p = Publisher::new(store.clone(), "", Settings { groups: 3, group: g, ..settings() });
        for r in p.drain(10).await.unwrap() {
            for t in r.taken {
                assert_eq!(*owners.entry(t.shard_id.clone()).or_insert(g), g, "{} published by two groups", t.shard_id);
            }
        }
    }
    all.extend(more);
    assert_exact(&*store, &all).await;
}

#[tokio::test]
async fn a_round_budget_spreads_a_backlog_over_rounds() {
    let store = Arc::new(MemoryStore::new());
    let processor = Processor::new(store.clone(), "");
    let batches = traffic();
    commit(&processor, &batches).await;
    let publisher = Publisher::new(store.clone(), "", Settings { round_bytes: 1, ..settings() });
    let first = publisher.round().await.unwrap();
    assert_eq!((first.commits(), first.left), (1, 5));
    assert!(first.oldest_left_ms.is_some());
    let rest = publisher.drain(20).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.commits()).sum::<u64>(), 5);
    assert_exact(&*store, &batches).await;
    assert_eq!(publisher::audit::audit(&*store, "").await.unwrap().tables[&Table::Events].files, 6);
}

#[tokio::test]
async fn a_staged_file_gone_before_its_round_is_counted_and_the_rest_published() {
    let store = Arc::new(MemoryStore::new());
    let processor = Processor::new(store.clone(), "");
    commit(&processor, &[(A, 0..100), (A, 100..200)]).await;
    let first_events =
        store.list("_staging/").await.unwrap().into_iter().find(|k| k.contains("00000000000000000001-")).unwrap();
    store.delete(&first_events).await.unwrap();
    let report = Publisher::new(store.clone(), "", settings()).round().await.unwrap();
    assert_eq!(report.missing_files, 1);
    assert!(!testkit::read_table(&*store, "", Table::Events).await.is_empty());
}

/// A merged file larger than a part, whose upload is refused while the merge still writes: the
/// round fails (it used to wait for room in the upload's queue forever), and the next one
/// publishes every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_of_a_large_merged_file_fails_the_round_instead_of_stalling_it() {
    use base64::Engine;
    let store = Arc::new(Faulty::default());
    let processor = Processor::new(store.clone(), "");
    // 2,400 records of 5 KB that are not JSON (quarantined with their bytes, which do not
    // compress): a 12 MB quarantine file, more than a 5 MB part and the queue behind it.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for batch in 0..24 {
        let mut records = kinesis_records(A, batch * 100..(batch + 1) * 100);
        for record in &mut records {
            let noise: Vec<u8> = (0..5_000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            record["kinesis"]["data"] = base64::engine::general_purpose::STANDARD.encode(noise).into();
        }
        let ev: KinesisEvent = serde_json::from_str(&event(&records)).unwrap();
        let (_, report) = processor.handle(ev).await;
        assert!(report.error.is_none(), "{:?}", report.error);
    }
    let settings = Settings { part_bytes: 5 << 20, workers: 1, ..settings() };
    store.arm(Some((0, usize::MAX, Fault::Refuse)), true);
    let publisher = Publisher::new(store.clone(), "", settings.clone());
    let first = tokio::time::timeout(std::time::Duration::from_secs(120), publisher.round()).await;
    let first = first.expect("the round ends");
    assert!(first.is_err(), "{first:?}");
    store.arm(None, true);
    let report = Publisher::new(store.clone(), "", settings).round().await.unwrap();
    let quarantine = report.outputs.iter().find(|o| o.table == "quarantine").expect("a quarantine file");
    assert!(quarantine.bytes > 8 << 20, "larger than a part and the queue: {} bytes", quarantine.bytes);
    assert_eq!(testkit::read_table(&*store, "", Table::Quarantine).await.len(), 2_400, "every record once");
    assert!(publisher::audit::audit(&*store, "").await.unwrap().holds());
}

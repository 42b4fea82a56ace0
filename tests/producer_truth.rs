//! The producer's truth manifest equals what the processor writes for its records: faults of
//! every kind included (invalid records of each reason code, producer retries, late events).

use std::collections::BTreeMap;

use processor::kinesis::InputRecord;
use processor::Processor;
use producer::{Config, Faults, Storefront, Truth};
use serde_json::{json, Value};
use sink::store::MemoryStore;
use sink::{RecordMeta, Table};
use testkit::{i, read_table, s};

#[tokio::test]
async fn the_truth_manifest_equals_the_datasets_the_processor_writes() {
    let cfg = Config {
        seed: 77,
        faults: Faults { invalid_rate: 0.05, duplicate_rate: 0.03, late_rate: 0.05 },
        events_per_second: 50.0,
        ..Config::default()
    };
    let mut store = Storefront::new(cfg);
    let mut truth = Truth::new();
    let mut buf = Vec::new();
    let mut clock = i64::MIN;
    let records: Vec<InputRecord> = (1..=20_000u64)
        .map(|n| {
            let g = store.next_record(&mut buf);
            truth.add(&g);
            clock = clock.max(g.event_time_ms);
            InputRecord {
                stream: "truth".into(),
                meta: RecordMeta {
                    shard_id: "shardId-000000000000".into(),
                    sequence_number: n.to_string(),
                    sub_sequence_number: 0,
                    partition_key: g.partition_key,
                    arrival_ms: clock + 500,
                },
                data: buf.clone(),
                undecodable: false,
            }
        })
        .collect();
    let p = Processor::new(MemoryStore::new(), "");
    for batch in records.chunks(1000) {
        assert_eq!(p.process(batch.to_vec()).await.error, None);
    }
    let t = truth.to_json(77);
    let tables = &t["tables"];
    let db = p.store();

    let events = read_table(db, "", Table::Events).await;
    assert_eq!(events.len() as u64, tables["events"]["rows"].as_u64().unwrap());
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for (_, r) in &events {
        *by_type.entry(s(r, "event_type")).or_default() += 1;
    }
    assert_eq!(json!(by_type), tables["events"]["by_event_type"]);

    let items = read_table(db, "", Table::OrderItems).await;
    assert_eq!(items.len() as u64, tables["order_items"]["rows"].as_u64().unwrap());
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for (_, r) in &items {
        *totals.entry(s(r, "currency")).or_default() += i(r, "line_total_minor");
    }
    assert_eq!(json!(totals), tables["order_items"]["line_total_minor_by_currency"]);
    assert_eq!(json!(items.iter().map(|(_, r)| i(r, "quantity")).sum::<i64>()), tables["order_items"]["units"]);

    let mut quarantine: BTreeMap<String, u64> = BTreeMap::new();
    for (_, r) in read_table(db, "", Table::Quarantine).await {
        *quarantine.entry(s(&r, "reason_code")).or_default() += 1;
    }
    assert_eq!(json!(quarantine), tables["quarantine"]["by_reason_code"]);
    assert_eq!(quarantine.len(), 6, "every reason code was injected");

    // The aggregate tables, summed per key as a reader does, equal the manifest's keys.
    let sum_rows = |rows: Vec<(String, testkit::Row)>, keys: &[&str], measures: &[&str]| {
        let mut m: BTreeMap<Vec<String>, Vec<i64>> = BTreeMap::new();
        for (_, r) in rows {
            let mut k: Vec<String> = vec![model::format_millis(i(&r, "window_start"))];
            k.extend(keys.iter().map(|c| s(&r, c)));
            let e = m.entry(k).or_insert_with(|| vec![0; measures.len()]);
            for (j, c) in measures.iter().enumerate() {
                e[j] += i(&r, c);
            }
        }
        m
    };
    let from_manifest = |rows: &Value, keys: &[&str], measures: &[&str]| {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut k = vec![r["window_start"].as_str().unwrap().to_string()];
                k.extend(keys.iter().map(|c| r[*c].as_str().unwrap().to_string()));
                (k, measures.iter().map(|c| r[*c].as_i64().unwrap()).collect::<Vec<_>>())
            })
            .collect::<BTreeMap<_, _>>()
    };
    let (sk, sm) = (["country", "category", "currency"], ["order_lines", "units", "revenue_minor"]);
    assert_eq!(
        sum_rows(read_table(db, "", Table::SalesMinute).await, &sk, &sm),
        from_manifest(&tables["sales_minute"]["rows"], &sk, &sm)
    );
    let (fk, fm) = (
        ["country", "device"],
        ["page_views", "product_views", "add_to_carts", "remove_from_carts", "checkouts", "orders"],
    );
    let funnel = sum_rows(read_table(db, "", Table::FunnelMinute).await, &fk, &fm);
    assert_eq!(funnel, from_manifest(&tables["funnel_minute"]["rows"], &fk, &fm));
    assert!(funnel.len() > 100, "many minutes, countries and devices");
    assert!(t["duplicates"].as_u64().unwrap() > 300 && t["late_events"].as_u64().unwrap() > 500);
}

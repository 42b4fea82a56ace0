//! The producer's truth manifest equals what the processor writes for its records: faults of
//! every kind included (invalid records of each reason code, producer retries, late events).

use std::collections::BTreeMap;

use processor::kinesis::InputRecord;
use processor::Processor;
use producer::{Config, Exact, Faults, Storefront, Truth};
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
    let t = truth.manifest(77);
    let tables = &t.tables;
    let db = p.store();
    testkit::publish(db, "").await;

    let events = read_table(db, "", Table::Events).await;
    assert_eq!(events.len() as u64, tables.events.rows);
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for (_, r) in &events {
        *by_type.entry(s(r, "event_type")).or_default() += 1;
    }
    assert_eq!(by_type, tables.events.by_event_type);

    let items = read_table(db, "", Table::OrderItems).await;
    assert_eq!(items.len() as u64, tables.order_items.rows);
    let mut totals: BTreeMap<String, Exact> = BTreeMap::new();
    for (_, r) in &items {
        totals.entry(s(r, "currency")).or_default().0 += i128::from(i(r, "line_total_minor"));
    }
    assert_eq!(totals, tables.order_items.line_total_minor_by_currency);
    assert_eq!(Exact(items.iter().map(|(_, r)| i128::from(i(r, "quantity"))).sum()), tables.order_items.units);

    let mut quarantine: BTreeMap<String, u64> = BTreeMap::new();
    for (_, r) in read_table(db, "", Table::Quarantine).await {
        *quarantine.entry(s(&r, "reason_code")).or_default() += 1;
    }
    assert_eq!(quarantine, tables.quarantine.by_reason_code);
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
    let sales_manifest: BTreeMap<Vec<String>, Vec<i64>> = tables
        .sales_minute
        .rows
        .iter()
        .map(|r| {
            let key = vec![r.window_start.clone(), r.country.clone(), r.category.clone(), r.currency.clone()];
            (key, [r.order_lines, r.units, r.revenue_minor].iter().map(|m| i64::try_from(m.0).unwrap()).collect())
        })
        .collect();
    let funnel_manifest: BTreeMap<Vec<String>, Vec<i64>> = tables
        .funnel_minute
        .rows
        .iter()
        .map(|r| {
            let key = vec![r.window_start.clone(), r.country.clone(), r.device.clone()];
            (key, vec![r.page_views, r.product_views, r.add_to_carts, r.remove_from_carts, r.checkouts, r.orders])
        })
        .collect();
    let (sk, sm) = (["country", "category", "currency"], ["order_lines", "units", "revenue_minor"]);
    assert_eq!(sum_rows(read_table(db, "", Table::SalesMinute).await, &sk, &sm), sales_manifest);
    let (fk, fm) = (
        ["country", "device"],
        ["page_views", "product_views", "add_to_carts", "remove_from_carts", "checkouts", "orders"],
    );
    let funnel = sum_rows(read_table(db, "", Table::FunnelMinute).await, &fk, &fm);
    assert_eq!(funnel, funnel_manifest);
    assert!(funnel.len() > 100, "many minutes, countries and devices");
    assert!(t.duplicates > 300 && t.late_events > 500);
}

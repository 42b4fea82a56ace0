//! The storefront model: deterministic, valid under the contract (or invalid exactly as
//! injected), with distributions and funnel ratios within stated bounds.

use std::collections::BTreeMap;

use model::{EventType, ReasonCode};
use producer::{Config, Faults, Kind, Storefront};

fn run(cfg: Config, n: usize) -> Vec<(producer::Generated, Vec<u8>)> {
    let mut s = Storefront::new(cfg);
    let mut buf = Vec::new();
    (0..n)
        .map(|_| {
            let g = s.next_record(&mut buf);
            (g, buf.clone())
        })
        .collect()
}

fn faulty() -> Config {
    Config { seed: 42, faults: Faults { invalid_rate: 0.1, duplicate_rate: 0.05, late_rate: 0.1 }, ..Config::default() }
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    let a: Vec<_> = run(faulty(), 5000).into_iter().map(|(_, b)| b).collect();
    let b: Vec<_> = run(faulty(), 5000).into_iter().map(|(_, b)| b).collect();
    assert_eq!(a, b);
    let c: Vec<_> = run(Config { seed: 43, ..faulty() }, 5000).into_iter().map(|(_, b)| b).collect();
    assert_ne!(a, c);
}

#[test]
fn every_record_is_valid_or_invalid_exactly_as_injected() {
    let records = run(faulty(), 30_000);
    let mut clock = i64::MIN;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_valid: Option<Vec<u8>> = None;
    for (g, bytes) in &records {
        clock = clock.max(g.event_time_ms);
        // Arrival: the storefront's clock plus a second of network.
        let arrival = clock + 1000;
        let result = model::validate(bytes, arrival);
        match g.kind {
            Kind::Valid | Kind::Late => {
                let e = result.unwrap_or_else(|r| panic!("{r} for {}", String::from_utf8_lossy(bytes)));
                assert_eq!(Some(&e), g.event.as_ref(), "the JSON says what the generator meant");
                last_valid = Some(bytes.clone());
            }
            Kind::Duplicate => {
                assert!(result.is_ok());
                assert_eq!(Some(bytes), last_valid.as_ref(), "a duplicate repeats the previous event's bytes");
            }
            Kind::Invalid(code) => {
                let r = result.expect_err("injected invalid record");
                assert_eq!(r.code, code, "{}: {}", r.reason, String::from_utf8_lossy(bytes));
            }
        }
        assert!(!g.partition_key.is_empty() && g.partition_key.len() <= 256);
        *kinds.entry(format!("{:?}", g.kind)).or_default() += 1;
    }
    // Every reason code is in the mix, each near a sixth of the invalid records.
    for code in ReasonCode::ALL {
        let n = kinds.get(&format!("Invalid({code:?})")).copied().unwrap_or(0);
        assert!((300..700).contains(&n), "{code}: {n} of ~3000 invalid records");
    }
    let share = |k: &str| kinds.get(k).copied().unwrap_or(0) as f64 / records.len() as f64;
    assert!((0.08..0.12).contains(&(share("Late") / (1.0 - 0.1))), "{kinds:?}");
    assert!((0.035..0.06).contains(&share("Duplicate")), "{kinds:?}");
}

#[test]
fn without_faults_every_record_is_a_valid_distinct_event() {
    let records = run(Config { seed: 9, ..Config::default() }, 20_000);
    let mut ids = std::collections::HashSet::new();
    for (g, bytes) in &records {
        assert_eq!(g.kind, Kind::Valid);
        let e = model::validate(bytes, g.event_time_ms).unwrap();
        assert!(ids.insert(e.event_id), "event ids are unique");
    }
}

#[test]
fn distributions_and_funnel_ratios_stay_within_bounds() {
    let records = run(Config { seed: 5, ..Config::default() }, 100_000);
    let events: Vec<_> = records.iter().filter_map(|(g, _)| g.event.clone()).collect();
    let n = events.len() as f64;
    let share = |f: &dyn Fn(&model::Event) -> bool| events.iter().filter(|e| f(e)).count() as f64 / n;
    // Countries and devices follow their weights (US 38%, mobile 55%), a third or more anonymous.
    assert!((0.35..0.42).contains(&share(&|e| e.country == "US")));
    assert!((0.52..0.58).contains(&share(&|e| e.device == "mobile")));
    assert!((0.30..0.50).contains(&share(&|e| e.customer_id.is_none())));
    let count = |t: EventType| events.iter().filter(|e| e.event_type == t).count() as f64;
    let (pv, prv, atc, rfc, co, op) = (
        count(EventType::PageView),
        count(EventType::ProductView),
        count(EventType::AddToCart),
        count(EventType::RemoveFromCart),
        count(EventType::CheckoutStarted),
        count(EventType::OrderPlaced),
    );
    // The funnel narrows at every step.
    assert!(prv > pv && pv > atc && atc > co && co > op && atc > rfc, "{pv} {prv} {atc} {rfc} {co} {op}");
    assert!((0.15..0.45).contains(&(atc / prv)), "add to cart per product view {}", atc / prv);
    assert!((0.45..0.90).contains(&(op / co)), "orders per checkout {}", op / co);
    assert!((0.01..0.08).contains(&(op / n)), "orders per event {}", op / n);
    // Popular products: the top 1% of the catalog gets a large share of views (a long tail).
    let mut views: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e.event_type == EventType::ProductView) {
        *views.entry(e.product_id.as_deref().unwrap()).or_default() += 1;
    }
    let mut counts: Vec<_> = views.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top: usize = counts.iter().take(50).sum();
    assert!(top as f64 / prv > 0.3, "top 50 products get {} of views", top as f64 / prv);
    assert!(views.len() > 1000, "the tail is long: {} products viewed", views.len());
    // Orders carry discounts, shipping and tax, and several currencies.
    let orders: Vec<_> = events.iter().filter_map(|e| e.order.as_ref()).collect();
    assert!(orders.iter().any(|o| o.discount_minor > 0) && orders.iter().any(|o| o.shipping_minor > 0));
    assert!(orders.iter().all(|o| o.tax_minor > 0 || o.items.iter().all(|i| i.unit_price_minor == 0)));
    let currencies: std::collections::BTreeSet<_> = events.iter().filter_map(|e| e.currency.as_deref()).collect();
    assert!(currencies.len() >= 8, "{currencies:?}");
}

#[test]
fn traffic_follows_the_day_and_flash_sales_triple_it() {
    // A simulated day at a 10 events/s peak: more events per hour at 19:00 than at 07:00.
    let cfg = Config { seed: 3, events_per_second: 10.0, flash_sale_every_minutes: 0, ..Config::default() };
    let records = run(cfg, 700_000);
    let last = records.last().unwrap().0.event_time_ms;
    assert!(last - Config::default().start_ms > 86_400_000, "a whole day is covered");
    let mut per_hour = [0usize; 24];
    for (g, _) in records.iter().filter(|(g, _)| g.event_time_ms < Config::default().start_ms + 86_400_000) {
        per_hour[((g.event_time_ms / 3_600_000) % 24) as usize] += 1;
    }
    assert!(per_hour[19] as f64 > 3.0 * per_hour[7] as f64, "{per_hour:?}");
    // Flash sales: 5 minutes of every 60 have three times the events per minute.
    let cfg = Config { seed: 3, daily_curve: false, events_per_second: 10.0, ..Config::default() };
    let records = run(cfg, 300_000);
    let start = Config::default().start_ms;
    let (mut sale, mut normal) = (0usize, 0usize);
    for (g, _) in &records {
        if (g.event_time_ms - start) % 3_600_000 < 300_000 {
            sale += 1
        } else {
            normal += 1
        }
    }
    let per_minute_ratio = (sale as f64 / 5.0) / (normal as f64 / 55.0);
    assert!((2.5..3.5).contains(&per_minute_ratio), "{per_minute_ratio}");
}

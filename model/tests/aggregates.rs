//! Property: the minute aggregates equal the events they summarize, exactly, for any prices
//! (a sales key is split over several rows rather than overflow 64 bits).

use std::collections::BTreeMap;

use model::{Event, EventType, Item, MinuteAggregates, Order};
use proptest::prelude::*;

fn event(kind: usize, minute: i64, country: usize, device: usize, items: Vec<(usize, i32, i64)>) -> Event<'static> {
    let t = EventType::ALL[kind];
    let order = (t == EventType::OrderPlaced).then(|| Order {
        order_id: "o".into(),
        items: items
            .into_iter()
            .map(|(c, q, p)| Item {
                product_id: "p".into(),
                category: format!("cat{c}").into(),
                quantity: q,
                unit_price_minor: p,
                line_total_minor: i64::from(q).saturating_mul(p),
            })
            .collect(),
        total_minor: 0,
        discount_minor: 0,
        shipping_minor: 0,
        tax_minor: 0,
    });
    let mut e = Event::new(
        "e".into(),
        t,
        1_795_435_200_000 + minute * 60_000 + 59_999,
        "s".into(),
        None,
        ["US", "DE"][country].into(),
        ["app", "web"][device].into(),
    );
    e.currency = Some("EUR".into());
    e.order = order;
    e
}

fn any_event() -> impl Strategy<Value = Event<'static>> {
    let price = prop_oneof![0i64..10_000, (i64::MAX / 4)..=i64::MAX];
    let item = (0usize..2, 1i32..3, price);
    (0usize..6, 0i64..3, 0usize..2, 0usize..2, prop::collection::vec(item, 1..3))
        .prop_map(|(k, m, c, d, items)| event(k, m, c, d, items))
        .prop_filter("line totals fit 64 bits (validation guarantees it)", |e| {
            e.order
                .as_ref()
                .is_none_or(|o| o.items.iter().all(|i| i64::from(i.quantity).checked_mul(i.unit_price_minor).is_some()))
        })
}

proptest! {
    #[test]
    fn aggregates_equal_the_events_they_summarize(events in prop::collection::vec(any_event(), 0..60)) {
        let mut agg = MinuteAggregates::default();
        for e in &events {
            agg.add(e);
        }
        // Detail sums in 128 bits, keyed like the aggregates.
        let mut sales: BTreeMap<(i64, String, String), (i128, i128, i128)> = BTreeMap::new();
        let mut funnel: BTreeMap<(i64, String, String), [i64; 6]> = BTreeMap::new();
        for e in &events {
            let w = model::floor_to_minute(e.event_time_ms);
            let kind = EventType::ALL.iter().position(|t| *t == e.event_type).unwrap();
            funnel.entry((w, e.country.to_string(), e.device.to_string())).or_default()[kind] += 1;
            for i in e.order.iter().flat_map(|o| &o.items) {
                let s = sales.entry((w, e.country.to_string(), i.category.to_string())).or_default();
                s.0 += 1;
                s.1 += i128::from(i.quantity);
                s.2 += i128::from(i.line_total_minor);
            }
        }
        let mut got_sales: BTreeMap<(i64, String, String), (i128, i128, i128)> = BTreeMap::new();
        for (k, rows) in agg.sales() {
            prop_assert!(!rows.is_empty());
            let s = got_sales.entry((k.window_start_ms, k.country.to_string(), k.category.to_string())).or_default();
            for m in rows {
                s.0 += i128::from(m.order_lines);
                s.1 += i128::from(m.units);
                s.2 += i128::from(m.revenue_minor);
            }
        }
        prop_assert_eq!(got_sales, sales);
        let got_funnel: BTreeMap<_, _> = agg.funnel().into_iter().map(|(k, c)| {
            ((k.window_start_ms, k.country.to_string(), k.device.to_string()),
             [c.page_views, c.product_views, c.add_to_carts, c.remove_from_carts, c.checkouts, c.orders])
        }).collect();
        prop_assert_eq!(got_funnel, funnel);
    }
}

#[test]
fn a_key_whose_revenue_would_overflow_gets_a_second_row() {
    let mut agg = MinuteAggregates::default();
    for _ in 0..3 {
        agg.add(&event(5, 0, 0, 0, vec![(0, 1, i64::MAX / 2)]));
    }
    let rows: Vec<_> = agg.sales()[0].1.iter().map(|m| (m.order_lines, m.revenue_minor)).collect();
    assert_eq!(rows, vec![(2, i64::MAX / 2 * 2), (1, i64::MAX / 2)]);
}

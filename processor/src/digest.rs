//! What a batch committed, in the figures a dashboard charts and the metrics report: valid events
//! by type (the funnel), orders and revenue per event-time minute, and units sold per product and
//! per category. Pure: built from validated events, merged across batches.

use std::collections::BTreeMap;

use model::{Event, EventType};

const MINUTE_MS: i64 = 60_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Minute {
    pub orders: u64,
    /// Sum of order line totals per currency, in minor units.
    pub revenue_minor: BTreeMap<String, i128>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digest {
    pub event_types: BTreeMap<EventType, u64>,
    /// Keyed by the start of the event-time minute (UTC milliseconds).
    pub minutes: BTreeMap<i64, Minute>,
    pub units_by_product: BTreeMap<String, u64>,
    pub units_by_category: BTreeMap<String, u64>,
}

impl Digest {
    /// Counts a committed event.
    pub fn add(&mut self, event: &Event) {
        *self.event_types.entry(event.event_type).or_default() += 1;
        let (Some(order), Some(currency)) = (&event.order, &event.currency) else { return };
        let minute = self.minutes.entry(event.event_time_ms.div_euclid(MINUTE_MS) * MINUTE_MS).or_default();
        minute.orders += 1;
        let revenue = minute.revenue_minor.entry(currency.clone()).or_default();
        for item in &order.items {
            *revenue += i128::from(item.line_total_minor);
            let units = u64::try_from(item.quantity).unwrap_or(0);
            *self.units_by_product.entry(item.product_id.clone()).or_default() += units;
            *self.units_by_category.entry(item.category.clone()).or_default() += units;
        }
    }

    pub fn merge(&mut self, other: Digest) {
        for (t, n) in other.event_types {
            *self.event_types.entry(t).or_default() += n;
        }
        for (start, m) in other.minutes {
            let mine = self.minutes.entry(start).or_default();
            mine.orders += m.orders;
            for (currency, v) in m.revenue_minor {
                *mine.revenue_minor.entry(currency).or_default() += v;
            }
        }
        for (p, n) in other.units_by_product {
            *self.units_by_product.entry(p).or_default() += n;
        }
        for (c, n) in other.units_by_category {
            *self.units_by_category.entry(c).or_default() += n;
        }
    }

    pub fn orders(&self) -> u64 {
        self.minutes.values().map(|m| m.orders).sum()
    }

    pub fn revenue_by_currency(&self) -> BTreeMap<String, i128> {
        let mut total = BTreeMap::new();
        for m in self.minutes.values() {
            for (currency, v) in &m.revenue_minor {
                *total.entry(currency.clone()).or_default() += *v;
            }
        }
        total
    }

    pub fn count(&self, t: EventType) -> u64 {
        self.event_types.get(&t).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        model::validate(json.as_bytes(), minute("2026-11-23T11:00:00Z")).expect("valid sample")
    }

    const ORDER: &str = r#"{"event_id":"o1","event_type":"order_placed","event_time":"2026-11-23T10:15:42Z",
        "session_id":"s","customer_id":"c","country":"DE","device":"web","order_id":"A","currency":"EUR",
        "items":[{"product_id":"p1","category":"shoes","quantity":2,"unit_price_minor":500},
                 {"product_id":"p2","category":"hats","quantity":1,"unit_price_minor":250}],
        "total_minor":1250,"discount_minor":0,"tax_minor":0}"#;
    const VIEW: &str = r#"{"event_id":"v1","event_type":"page_view","event_time":"2026-11-23T10:16:00Z",
        "session_id":"s","country":"DE","device":"web","page":"/"}"#;

    #[test]
    fn orders_land_in_their_event_time_minute_with_units_per_product_and_category() {
        let mut d = Digest::default();
        d.add(&event(ORDER));
        d.add(&event(VIEW));
        let minute = minute("2026-11-23T10:15:00Z");
        assert_eq!(d.minutes.len(), 1);
        assert_eq!(d.minutes[&minute].orders, 1);
        assert_eq!(d.minutes[&minute].revenue_minor["EUR"], 1250);
        assert_eq!(d.units_by_product["p1"], 2);
        assert_eq!(d.units_by_category["hats"], 1);
        assert_eq!((d.count(EventType::OrderPlaced), d.count(EventType::PageView)), (1, 1));

        let mut total = d.clone();
        total.merge(d);
        assert_eq!(total.orders(), 2);
        assert_eq!(total.revenue_by_currency()["EUR"], 2500);
        assert_eq!(total.units_by_product["p1"], 4);
        assert_eq!(total.count(EventType::PageView), 2);
    }

    fn minute(rfc3339: &str) -> i64 {
        model::parse_rfc3339(rfc3339).expect("a timestamp").millis
    }
}

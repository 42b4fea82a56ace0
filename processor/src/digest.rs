//! What a batch committed, in the figures a dashboard charts and the metrics report: valid events
//! by type (the funnel), orders and revenue per event-time minute, and units sold per product and
//! per category. Derived from the batch's minute aggregates (the same sums its `sales_minute` and
//! `funnel_minute` rows hold), plus units per product from its order lines; merged across batches.

use std::collections::BTreeMap;

use model::{Event, EventType, MinuteAggregates};

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

/// Units sold per product, from order lines (the aggregates are per category).
#[derive(Debug, Clone, Default)]
pub struct ProductUnits(BTreeMap<String, u64>);

impl ProductUnits {
    pub fn add(&mut self, event: &Event) {
        for item in event.order.iter().flat_map(|o| &o.items) {
            *self.0.entry(item.product_id.to_string()).or_default() += u64::try_from(item.quantity).unwrap_or(0);
        }
    }
}

impl Digest {
    /// A batch's digest: its minute aggregates, and its units per product.
    pub fn of_batch(aggregates: &MinuteAggregates, products: ProductUnits) -> Self {
        let mut d = Digest { units_by_product: products.0, ..Digest::default() };
        for (k, c) in aggregates.funnel() {
            let counts = [
                (EventType::PageView, c.page_views),
                (EventType::ProductView, c.product_views),
                (EventType::AddToCart, c.add_to_carts),
                (EventType::RemoveFromCart, c.remove_from_carts),
                (EventType::CheckoutStarted, c.checkouts),
                (EventType::OrderPlaced, c.orders),
            ];
            for (t, n) in counts.into_iter().filter(|(_, n)| *n > 0) {
                *d.event_types.entry(t).or_default() += n as u64;
            }
            if c.orders > 0 {
                d.minutes.entry(k.window_start_ms).or_default().orders += c.orders as u64;
            }
        }
        for (k, rows) in aggregates.sales() {
            let minute = d.minutes.entry(k.window_start_ms).or_default();
            let revenue = minute.revenue_minor.entry(k.currency.to_string()).or_default();
            for m in rows {
                *revenue += i128::from(m.revenue_minor);
                *d.units_by_category.entry(k.category.to_string()).or_default() += u64::try_from(m.units).unwrap_or(0);
            }
        }
        d
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

    fn event(json: &str) -> Event<'_> {
        model::validate(json.as_bytes(), minute("2026-11-23T11:00:00Z")).expect("valid sample")
    }

    const ORDER: &str = r#"{"event_id":"o1","event_type":"order_placed","event_time":"2026-11-23T10:15:42Z",
        "session_id":"s","customer_id":"c","country":"DE","device":"web","order_id":"A","currency":"EUR",
        "items":[{"product_id":"p1","category":"shoes","quantity":2,"unit_price_minor":500},
                 {"product_id":"p2","category":"hats","quantity":1,"unit_price_minor":250}],
        "total_minor":1250,"discount_minor":0,"tax_minor":0}"#;
    const VIEW: &str = r#"{"event_id":"v1","event_type":"page_view","event_time":"2026-11-23T10:16:00Z",
        "session_id":"s","country":"DE","device":"web","page":"/"}"#;

    fn digest(events: &[Event<'_>]) -> Digest {
        let mut aggregates = MinuteAggregates::default();
        let mut products = ProductUnits::default();
        for e in events {
            aggregates.add(e);
            products.add(e);
        }
        Digest::of_batch(&aggregates, products)
    }

    #[test]
    fn orders_land_in_their_event_time_minute_with_units_per_product_and_category() {
        let d = digest(&[event(ORDER), event(VIEW)]);
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

//! The truth manifest: what the produced records must become in each table of the contract, so
//! that a run can be reconciled against what lands in S3.

use std::collections::BTreeMap;

use model::{EventType, MinuteAggregates, ReasonCode};
use serde_json::{json, Value};

use crate::storefront::{Generated, Kind};

#[derive(Default)]
pub struct Truth {
    records: u64,
    late: u64,
    duplicates: u64,
    quarantine: BTreeMap<ReasonCode, u64>,
    events_by_type: BTreeMap<EventType, u64>,
    order_items: u64,
    units: i128,
    line_totals: BTreeMap<String, i128>,
    aggregates: MinuteAggregates,
}

/// A JSON integer, or a string where it does not fit 64 bits (readers then see it exactly).
fn number(v: i128) -> Value {
    i64::try_from(v).map_or_else(|_| Value::String(v.to_string()), Value::from)
}

impl Truth {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one produced record.
    pub fn add(&mut self, g: &Generated) {
        self.records += 1;
        match g.kind {
            Kind::Duplicate => self.duplicates += 1,
            Kind::Invalid(code) => *self.quarantine.entry(code).or_default() += 1,
            Kind::Valid | Kind::Late => {
                self.late += u64::from(g.kind == Kind::Late);
                let Some(e) = &g.event else { return };
                *self.events_by_type.entry(e.event_type).or_default() += 1;
                if let (Some(order), Some(currency)) = (&e.order, &e.currency) {
                    self.order_items += order.items.len() as u64;
                    for item in &order.items {
                        self.units += i128::from(item.quantity);
                        *self.line_totals.entry(currency.clone()).or_default() += i128::from(item.line_total_minor);
                    }
                }
                self.aggregates.add(e);
            }
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// The manifest. Counts per table; for the aggregate tables every key with its summed
    /// measures (timestamps as RFC 3339 UTC milliseconds), as a reader summing rows gets them.
    pub fn to_json(&self, seed: u64) -> Value {
        let events: u64 = self.events_by_type.values().sum();
        let sales: Vec<Value> = self
            .aggregates
            .sales
            .iter()
            .map(|(k, rows)| {
                let sum = |f: fn(&model::SalesMeasures) -> i64| number(rows.iter().map(|m| i128::from(f(m))).sum());
                json!({
                    "window_start": model::format_millis(k.window_start_ms),
                    "country": k.country, "category": k.category, "currency": k.currency,
                    "order_lines": sum(|m| m.order_lines), "units": sum(|m| m.units),
                    "revenue_minor": sum(|m| m.revenue_minor),
                })
            })
            .collect();
        let funnel: Vec<Value> = self
            .aggregates
            .funnel
            .iter()
            .map(|(k, c)| {
                json!({
                    "window_start": model::format_millis(k.window_start_ms),
                    "country": k.country, "device": k.device,
                    "page_views": c.page_views, "product_views": c.product_views,
                    "add_to_carts": c.add_to_carts, "remove_from_carts": c.remove_from_carts,
                    "checkouts": c.checkouts, "orders": c.orders,
                })
            })
            .collect();
        json!({
            "seed": seed,
            "records": self.records,
            "duplicates": self.duplicates,
            "late_events": self.late,
            "tables": {
                "events": {
                    "rows": events,
                    "by_event_type": self.events_by_type.iter().map(|(t, n)| (t.as_str(), *n)).collect::<BTreeMap<_, _>>(),
                },
                "order_items": {
                    "rows": self.order_items,
                    "units": number(self.units),
                    "line_total_minor_by_currency": self.line_totals.iter().map(|(c, v)| (c.clone(), number(*v))).collect::<BTreeMap<_, _>>(),
                },
                "sales_minute": { "keys": sales.len(), "rows": sales },
                "funnel_minute": { "keys": funnel.len(), "rows": funnel },
                "quarantine": {
                    "rows": self.quarantine.values().sum::<u64>(),
                    "by_reason_code": self.quarantine.iter().map(|(c, n)| (c.as_str(), *n)).collect::<BTreeMap<_, _>>(),
                },
            },
        })
    }
}

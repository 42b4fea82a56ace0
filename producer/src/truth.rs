//! The truth manifest: what the produced records must become in each table of the contract, so
//! that a run can be reconciled against what lands in S3.

use std::collections::BTreeMap;

use model::{EventType, MinuteAggregates, ReasonCode};
use serde::{Deserialize, Serialize};

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

/// An exact integer: a JSON number, or a string where it does not fit 64 bits (readers then
/// see it exactly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exact(pub i128);

impl Serialize for Exact {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(self.0) {
            Ok(v) => s.serialize_i64(v),
            Err(_) => s.serialize_str(&self.0.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(i64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(Exact(i128::from(v))),
            Repr::Text(t) => t.parse().map(Exact).map_err(serde::de::Error::custom),
        }
    }
}

/// The truth manifest: what the produced records must become in each table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthManifest {
    pub seed: u64,
    pub records: u64,
    pub duplicates: u64,
    pub late_events: u64,
    pub tables: TruthTables,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthTables {
    pub events: EventsTruth,
    pub order_items: OrderItemsTruth,
    pub sales_minute: KeyedRows<SalesTruth>,
    pub funnel_minute: KeyedRows<FunnelTruth>,
    pub quarantine: QuarantineTruth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsTruth {
    pub rows: u64,
    pub by_event_type: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItemsTruth {
    pub rows: u64,
    pub units: Exact,
    pub line_total_minor_by_currency: BTreeMap<String, Exact>,
}

/// Every key of an aggregate table with its summed measures, as a reader summing rows gets them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyedRows<T> {
    pub keys: usize,
    pub rows: Vec<T>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SalesTruth {
    /// RFC 3339, UTC milliseconds.
    pub window_start: String,
    pub country: String,
    pub category: String,
    pub currency: String,
    pub order_lines: Exact,
    pub units: Exact,
    pub revenue_minor: Exact,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelTruth {
    /// RFC 3339, UTC milliseconds.
    pub window_start: String,
    pub country: String,
    pub device: String,
    pub page_views: i64,
    pub product_views: i64,
    pub add_to_carts: i64,
    pub remove_from_carts: i64,
    pub checkouts: i64,
    pub orders: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineTruth {
    pub rows: u64,
    pub by_reason_code: BTreeMap<String, u64>,
}

impl TruthManifest {
    /// Events of a type (0 when none).
    pub fn events_of(&self, t: EventType) -> u64 {
        self.tables.events.by_event_type.get(t.as_str()).copied().unwrap_or(0)
    }
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
                        *self.line_totals.entry(currency.to_string()).or_default() += i128::from(item.line_total_minor);
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
    pub fn manifest(&self, seed: u64) -> TruthManifest {
        let sales: Vec<SalesTruth> = self
            .aggregates
            .sales()
            .into_iter()
            .map(|(k, rows)| {
                let sum = |f: fn(&model::SalesMeasures) -> i64| Exact(rows.iter().map(|m| i128::from(f(m))).sum());
                SalesTruth {
                    window_start: model::format_millis(k.window_start_ms),
                    country: k.country.to_string(),
                    category: k.category.to_string(),
                    currency: k.currency.to_string(),
                    order_lines: sum(|m| m.order_lines),
                    units: sum(|m| m.units),
                    revenue_minor: sum(|m| m.revenue_minor),
                }
            })
            .collect();
        let funnel: Vec<FunnelTruth> = self
            .aggregates
            .funnel()
            .into_iter()
            .map(|(k, c)| FunnelTruth {
                window_start: model::format_millis(k.window_start_ms),
                country: k.country.to_string(),
                device: k.device.to_string(),
                page_views: c.page_views,
                product_views: c.product_views,
                add_to_carts: c.add_to_carts,
                remove_from_carts: c.remove_from_carts,
                checkouts: c.checkouts,
                orders: c.orders,
            })
            .collect();
        TruthManifest {
            seed,
            records: self.records,
            duplicates: self.duplicates,
            late_events: self.late,
            tables: TruthTables {
                events: EventsTruth {
                    rows: self.events_by_type.values().sum(),
                    by_event_type: self.events_by_type.iter().map(|(t, n)| (t.as_str().to_string(), *n)).collect(),
                },
                order_items: OrderItemsTruth {
                    rows: self.order_items,
                    units: Exact(self.units),
                    line_total_minor_by_currency: self
                        .line_totals
                        .iter()
                        .map(|(c, v)| (c.clone(), Exact(*v)))
                        .collect(),
                },
                sales_minute: KeyedRows { keys: sales.len(), rows: sales },
                funnel_minute: KeyedRows { keys: funnel.len(), rows: funnel },
                quarantine: QuarantineTruth {
                    rows: self.quarantine.values().sum(),
                    by_reason_code: self.quarantine.iter().map(|(c, n)| (c.as_str().to_string(), *n)).collect(),
                },
            },
        }
    }
}

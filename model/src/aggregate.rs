//! The additive minute aggregates of contract sections 2.3 and 2.4.

use std::collections::BTreeMap;

use compact_str::CompactString;

use crate::event::{Event, EventType};
use crate::time::floor_to_minute;

/// Key of a `sales_minute` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SalesKey {
    pub window_start_ms: i64,
    pub country: CompactString,
    pub category: CompactString,
    pub currency: CompactString,
}

/// Measures of a `sales_minute` row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SalesMeasures {
    pub order_lines: i64,
    pub units: i64,
    pub revenue_minor: i64,
}

impl SalesMeasures {
    fn try_add(&self, units: i64, revenue: i64) -> Option<SalesMeasures> {
        Some(SalesMeasures {
            order_lines: self.order_lines.checked_add(1)?,
            units: self.units.checked_add(units)?,
            revenue_minor: self.revenue_minor.checked_add(revenue)?,
        })
    }
}

/// Key of a `funnel_minute` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunnelKey {
    pub window_start_ms: i64,
    pub country: CompactString,
    pub device: CompactString,
}

/// Measures of a `funnel_minute` row: counts of valid events by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunnelCounts {
    pub page_views: i64,
    pub product_views: i64,
    pub add_to_carts: i64,
    pub remove_from_carts: i64,
    pub checkouts: i64,
    pub orders: i64,
}

impl FunnelCounts {
    fn count(&mut self, t: EventType) {
        let slot = match t {
            EventType::PageView => &mut self.page_views,
            EventType::ProductView => &mut self.product_views,
            EventType::AddToCart => &mut self.add_to_carts,
            EventType::RemoveFromCart => &mut self.remove_from_carts,
            EventType::CheckoutStarted => &mut self.checkouts,
            EventType::OrderPlaced => &mut self.orders,
        };
        *slot += 1;
    }
}

/// Sales and funnel aggregates of a set of events, ordered by key.
///
/// A sales key holds more than one row only when a sum would overflow 64 bits: the contract lets
/// several rows share a key (readers sum them), so the sums stay exactly equal to the detail rows
/// whatever the prices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinuteAggregates {
    pub sales: BTreeMap<SalesKey, Vec<SalesMeasures>>,
    pub funnel: BTreeMap<FunnelKey, FunnelCounts>,
}

impl MinuteAggregates {
    pub fn add(&mut self, event: &Event) {
        let window_start_ms = floor_to_minute(event.event_time_ms);
        self.funnel
            .entry(FunnelKey { window_start_ms, country: (*event.country).into(), device: (*event.device).into() })
            .or_default()
            .count(event.event_type);
        let (Some(order), Some(currency)) = (&event.order, &event.currency) else {
            return;
        };
        for item in &order.items {
            let key = SalesKey {
                window_start_ms,
                country: (*event.country).into(),
                category: (*item.category).into(),
                currency: (**currency).into(),
            };
            let rows = self.sales.entry(key).or_default();
            let units = i64::from(item.quantity);
            let merged = rows
                .last_mut()
                .and_then(|last| last.try_add(units, item.line_total_minor).map(|next| *last = next))
                .is_some();
            if !merged {
                rows.push(SalesMeasures { order_lines: 1, units, revenue_minor: item.line_total_minor });
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sales.is_empty() && self.funnel.is_empty()
    }
}

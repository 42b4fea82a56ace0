//! The additive minute aggregates of contract sections 2.3 and 2.4.

use compact_str::CompactString;
use hashbrown::hash_map::EntryRef;
use hashbrown::{Equivalent, HashMap};

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

/// Sales and funnel aggregates of a set of events, read in key order ([`Self::sales`],
/// [`Self::funnel`]).
///
/// A sales key holds more than one row only when a sum would overflow 64 bits: the contract lets
/// several rows share a key (readers sum them), so the sums stay exactly equal to the detail rows
/// whatever the prices.
///
/// The rows are kept in hash maps searched by the event's own strings (no key is made for a row
/// that exists), and put in key order when they are read, once a batch: an ordered map compared
/// the keys' strings a dozen times an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinuteAggregates {
    sales: HashMap<SalesKey, Vec<SalesMeasures>>,
    funnel: HashMap<FunnelKey, FunnelCounts>,
}

/// A [`FunnelKey`] borrowing the event's strings. Hashed as the key is (a `CompactString` hashes
/// as its `str`), and equal to it field by field.
#[derive(Hash)]
struct FunnelRef<'a> {
    window_start_ms: i64,
    country: &'a str,
    device: &'a str,
}

impl Equivalent<FunnelKey> for FunnelRef<'_> {
    fn equivalent(&self, k: &FunnelKey) -> bool {
        self.window_start_ms == k.window_start_ms && self.country == k.country && self.device == k.device
    }
}

/// A [`SalesKey`] borrowing the event's strings, as [`FunnelRef`].
#[derive(Hash)]
struct SalesRef<'a> {
    window_start_ms: i64,
    country: &'a str,
    category: &'a str,
    currency: &'a str,
}

impl Equivalent<SalesKey> for SalesRef<'_> {
    fn equivalent(&self, k: &SalesKey) -> bool {
        self.window_start_ms == k.window_start_ms
            && self.country == k.country
            && self.category == k.category
            && self.currency == k.currency
    }
}

/// A map's entries in key order.
fn in_key_order<K: Ord, V>(map: &HashMap<K, V>) -> Vec<(&K, &V)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

impl MinuteAggregates {
    pub fn add(&mut self, event: &Event) {
        let window_start_ms = floor_to_minute(event.event_time_ms);
        let (country, device) = (&*event.country, &*event.device);
        let key = FunnelRef { window_start_ms, country, device };
        let counts = match self.funnel.entry_ref(&key) {
            EntryRef::Occupied(e) => e.into_mut(),
            EntryRef::Vacant(e) => e.insert_with_key(
                FunnelKey { window_start_ms, country: country.into(), device: device.into() },
                FunnelCounts::default(),
            ),
        };
        counts.count(event.event_type);
        let (Some(order), Some(currency)) = (&event.order, &event.currency) else {
            return;
        };
        for item in &order.items {
            let key = SalesRef { window_start_ms, country, category: &item.category, currency };
            let rows = match self.sales.entry_ref(&key) {
                EntryRef::Occupied(e) => e.into_mut(),
                EntryRef::Vacant(e) => e.insert_with_key(
                    SalesKey {
                        window_start_ms,
                        country: country.into(),
                        category: (*item.category).into(),
                        currency: (**currency).into(),
                    },
                    Vec::new(),
                ),
            };
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

    /// The `sales_minute` rows by key, in key order.
    pub fn sales(&self) -> Vec<(&SalesKey, &Vec<SalesMeasures>)> {
        in_key_order(&self.sales)
    }

    /// The `funnel_minute` rows by key, in key order.
    pub fn funnel(&self) -> Vec<(&FunnelKey, &FunnelCounts)> {
        in_key_order(&self.funnel)
    }

    pub fn is_empty(&self) -> bool {
        self.sales.is_empty() && self.funnel.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    /// A borrowed key hashes as its owned key does (else a search by it would miss the row).
    #[test]
    fn a_borrowed_key_hashes_as_its_key() {
        let state = hashbrown::DefaultHashBuilder::default();
        for (country, device) in [("DE", "mobile"), ("", ""), ("a long country name past 24 bytes", "é")] {
            let owned = FunnelKey { window_start_ms: -60_000, country: country.into(), device: device.into() };
            let borrowed = FunnelRef { window_start_ms: -60_000, country, device };
            assert_eq!(state.hash_one(&owned), state.hash_one(&borrowed));
            assert!(borrowed.equivalent(&owned));
            let owned = SalesKey {
                window_start_ms: 7,
                country: country.into(),
                category: device.into(),
                currency: "EUR".into(),
            };
            let borrowed = SalesRef { window_start_ms: 7, country, category: device, currency: "EUR" };
            assert_eq!(state.hash_one(&owned), state.hash_one(&borrowed));
            assert!(borrowed.equivalent(&owned));
        }
        let other = FunnelRef { window_start_ms: 0, country: "DE", device: "mobil" };
        assert!(!other.equivalent(&FunnelKey { window_start_ms: 0, country: "DE".into(), device: "mobile".into() }));
    }
}

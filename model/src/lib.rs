//! The storefront event model of the data contract (docs/contract.md).
//!
//! Pure logic only, no I/O: KPL aggregates read into their user records ([`kpl`]), decoding and
//! validating one record's bytes ([`validate`]), the reason
//! codes of a rejected record ([`ReasonCode`]), the validated [`Event`] with its order lines, and
//! the additive minute aggregates ([`MinuteAggregates`]). The processor, the local pipeline, the
//! producer's truth manifest and the benchmarks all share it.

mod aggregate;
mod event;
mod json;
pub mod kpl;
mod reason;
mod time;
mod validate;

pub use aggregate::{FunnelCounts, FunnelKey, MinuteAggregates, SalesKey, SalesMeasures};
pub use event::{Event, EventType, Item, Order, UnknownEventType};
pub use json::plain_string;
pub use reason::{ReasonCode, Rejection, UnknownReasonCode};
pub use time::{floor_to_minute, format_millis, now_ms, parse_rfc3339, EventTime, TimeError, MINUTE_MS};
pub use validate::{validate, DEDUP_WINDOW_MS, EARLIEST_EVENT_TIME_MS, KPL_MAGIC, MAX_FUTURE_SKEW_MS, MAX_JSON_DEPTH};

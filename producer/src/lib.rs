//! The storefront load generator (contract section 4).
//!
//! - [`Storefront`]: deterministic simulated traffic (sessions, funnel, long-tail products,
//!   currencies by country, discounts, shipping and tax that add up, a daily curve, flash sales,
//!   fault injection);
//! - [`Truth`]: the exact counts and sums the valid records must produce in each table;
//! - [`kinesis`]: PutRecords batching, retries, throttling, partition-key strategies;
//! - [`args`]: command-line value parsers and [`args::Pace`], shared with the main job.
//!
//! The binary `producer` wires them to the command line; the main job calls the library.

pub mod aggregate;
pub mod args;
mod catalog;
mod json;
pub mod kinesis;
mod rng;
mod storefront;
pub mod truth;

pub use json::{push_timestamp, write_event, Anonymous, Overrides};
pub use storefront::{daily_level, Config, Faults, Generated, Kind, Storefront, FLASH_SALE_LEVEL};
pub use truth::{Exact, Truth, TruthManifest};

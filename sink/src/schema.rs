//! One home for the contract's table schemas (section 2). Everything else (the batch builders,
//! the tests that read files back, the docs) derives from these.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The five datasets of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Events,
    OrderItems,
    SalesMinute,
    FunnelMinute,
    Quarantine,
}

fn string(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}
fn int(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int32, nullable)
}
fn bigint(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}
/// `TIMESTAMP(MILLIS, isAdjustedToUTC=true)` in Parquet.
fn timestamp(name: &str) -> Field {
    Field::new(name, timestamp_type(), false)
}

pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

impl Table {
    pub const ALL: [Table; 5] =
        [Table::Events, Table::OrderItems, Table::SalesMinute, Table::FunnelMinute, Table::Quarantine];

    /// The dataset's name, which is also its key prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::OrderItems => "order_items",
            Table::SalesMinute => "sales_minute",
            Table::FunnelMinute => "funnel_minute",
            Table::Quarantine => "quarantine",
        }
    }

    /// The table named `name` ([`Table::as_str`]).
    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether its rows are sums per key (`sales_minute`, `funnel_minute`): the columns of type
    /// Int64 are the measures, the others the key.
    pub fn is_aggregate(self) -> bool {
        matches!(self, Table::SalesMinute | Table::FunnelMinute)
    }

    /// The timestamp column whose UTC hour names the partition.
    pub fn partition_column(self) -> &'static str {
        match self {
            Table::Events | Table::OrderItems => "event_time",
            Table::SalesMinute | Table::FunnelMinute => "window_start",
            Table::Quarantine => "arrival_time",
        }
    }

    pub fn schema(self) -> SchemaRef {
        static SCHEMAS: OnceLock<[SchemaRef; 5]> = OnceLock::new();
        let all = SCHEMAS.get_or_init(|| Table::ALL.map(|t| Arc::new(Schema::new(t.fields()))));
        all[self as usize].clone()
    }

    fn fields(self) -> Vec<Field> {
        match self {
            Table::Events => vec![
                string("event_id", false),
                string("event_type", false),
                timestamp("event_time"),
                string("session_id", false),
                string("customer_id", true),
                string("country", false),
                string("device", false),
                string("page", true),
                string("product_id", true),
                string("category", true),
                int("quantity", true),
                bigint("unit_price_minor", true),
                bigint("cart_value_minor", true),
                string("order_id", true),
                int("units", true),
                bigint("total_minor", true),
                string("currency", true),
                string("shard_id", false),
                string("sequence_number", false),
                int("sub_sequence_number", false),
                timestamp("arrival_time"),
            ],
            Table::OrderItems => vec![
                string("order_id", false),
                string("event_id", false),
                timestamp("event_time"),
                int("line_number", false),
                string("customer_id", true),
                string("country", false),
                string("product_id", false),
                string("category", false),
                int("quantity", false),
                bigint("unit_price_minor", false),
                bigint("line_total_minor", false),
                string("currency", false),
            ],
            Table::SalesMinute => vec![
                timestamp("window_start"),
                string("country", false),
                string("category", false),
                string("currency", false),
                bigint("order_lines", false),
                bigint("units", false),
                bigint("revenue_minor", false),
            ],
            Table::FunnelMinute => vec![
                timestamp("window_start"),
                string("country", false),
                string("device", false),
                bigint("page_views", false),
                bigint("product_views", false),
                bigint("add_to_carts", false),
                bigint("remove_from_carts", false),
                bigint("checkouts", false),
                bigint("orders", false),
            ],
            Table::Quarantine => vec![
                string("shard_id", false),
                string("sequence_number", false),
                int("sub_sequence_number", false),
                string("partition_key", false),
                timestamp("arrival_time"),
                string("reason_code", false),
                string("reason", false),
                Field::new("data", DataType::Binary, false),
            ],
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

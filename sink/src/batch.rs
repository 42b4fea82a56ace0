//! Rows of the five tables, accumulated per Hive partition and finished into Arrow record batches
//! with the schemas of [`Table::schema`].

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::ArrowError;
use model::{Event, MinuteAggregates, Rejection};

use crate::layout::Partition;
use crate::schema::Table;

/// Where a record came from: its Kinesis coordinates and arrival time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// Shared by the records of a shard (a batch's records are mostly of one).
    pub shard_id: Arc<str>,
    pub sequence_number: String,
    /// Index inside a KPL aggregate; 0 for a plain record.
    pub sub_sequence_number: i32,
    pub partition_key: String,
    /// `approximateArrivalTimestamp` rounded to the millisecond.
    pub arrival_ms: i64,
}

/// One table's rows of one partition.
#[derive(Debug, Clone)]
pub struct TableBatch {
    pub table: Table,
    pub partition: Partition,
    pub batch: RecordBatch,
}

fn ts() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

/// A table's record batch from its columns by name, put in the order of [`Table::schema`] (the
/// one home of the column order): a column missing, extra or misnamed is an error.
fn finish_batch(table: Table, mut columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch, ArrowError> {
    let schema = table.schema();
    let mut ordered = Vec::with_capacity(columns.len());
    for field in schema.fields() {
        let at = columns
            .iter()
            .position(|(name, _)| name == field.name())
            .ok_or_else(|| ArrowError::SchemaError(format!("{table}: the builder has no column {}", field.name())))?;
        ordered.push(columns.swap_remove(at).1);
    }
    if let Some((extra, _)) = columns.first() {
        return Err(ArrowError::SchemaError(format!("{table}: the builder has a column {extra} the schema lacks")));
    }
    RecordBatch::try_new(schema, ordered)
}

struct EventColumns {
    event_id: StringBuilder,
    event_type: StringBuilder,
    event_time: TimestampMillisecondBuilder,
    session_id: StringBuilder,
    customer_id: StringBuilder,
    country: StringBuilder,
    device: StringBuilder,
    page: StringBuilder,
    product_id: StringBuilder,
    category: StringBuilder,
    quantity: Int32Builder,
    unit_price_minor: Int64Builder,
    cart_value_minor: Int64Builder,
    order_id: StringBuilder,
    units: Int32Builder,
    total_minor: Int64Builder,
    currency: StringBuilder,
    shard_id: StringBuilder,
    sequence_number: StringBuilder,
    sub_sequence_number: Int32Builder,
    arrival_time: TimestampMillisecondBuilder,
}

impl EventColumns {
    fn new() -> Self {
        EventColumns {
            event_id: StringBuilder::new(),
            event_type: StringBuilder::new(),
            event_time: ts(),
            session_id: StringBuilder::new(),
            customer_id: StringBuilder::new(),
            country: StringBuilder::new(),
            device: StringBuilder::new(),
            page: StringBuilder::new(),
            product_id: StringBuilder::new(),
            category: StringBuilder::new(),
            quantity: Int32Builder::new(),
            unit_price_minor: Int64Builder::new(),
            cart_value_minor: Int64Builder::new(),
            order_id: StringBuilder::new(),
            units: Int32Builder::new(),
            total_minor: Int64Builder::new(),
            currency: StringBuilder::new(),
            shard_id: StringBuilder::new(),
            sequence_number: StringBuilder::new(),
            sub_sequence_number: Int32Builder::new(),
            arrival_time: ts(),
        }
    }

    fn push(&mut self, e: &Event, m: &RecordMeta) {
        self.event_id.append_value(&e.event_id);
        self.event_type.append_value(e.event_type.as_str());
        self.event_time.append_value(e.event_time_ms);
        self.session_id.append_value(&e.session_id);
        self.customer_id.append_option(e.customer_id.as_deref());
        self.country.append_value(&e.country);
        self.device.append_value(&e.device);
        self.page.append_option(e.page.as_deref());
        self.product_id.append_option(e.product_id.as_deref());
        self.category.append_option(e.category.as_deref());
        self.quantity.append_option(e.quantity);
        self.unit_price_minor.append_option(e.unit_price_minor);
        self.cart_value_minor.append_option(e.cart_value_minor);
        self.order_id.append_option(e.order.as_ref().map(|o| &*o.order_id));
        self.units.append_option(e.order.as_ref().map(|o| o.units()));
        self.total_minor.append_option(e.order.as_ref().map(|o| o.total_minor));
        self.currency.append_option(e.currency.as_deref());
        self.shard_id.append_value(&m.shard_id);
        self.sequence_number.append_value(&m.sequence_number);
        self.sub_sequence_number.append_value(m.sub_sequence_number);
        self.arrival_time.append_value(m.arrival_ms);
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        finish_batch(
            Table::Events,
            vec![
                ("event_id", Arc::new(self.event_id.finish()) as ArrayRef),
                ("event_type", Arc::new(self.event_type.finish()) as ArrayRef),
                ("event_time", Arc::new(self.event_time.finish()) as ArrayRef),
                ("session_id", Arc::new(self.session_id.finish()) as ArrayRef),
                ("customer_id", Arc::new(self.customer_id.finish()) as ArrayRef),
                ("country", Arc::new(self.country.finish()) as ArrayRef),
                ("device", Arc::new(self.device.finish()) as ArrayRef),
                ("page", Arc::new(self.page.finish()) as ArrayRef),
                ("product_id", Arc::new(self.product_id.finish()) as ArrayRef),
                ("category", Arc::new(self.category.finish()) as ArrayRef),
                ("quantity", Arc::new(self.quantity.finish()) as ArrayRef),
                ("unit_price_minor", Arc::new(self.unit_price_minor.finish()) as ArrayRef),
                ("cart_value_minor", Arc::new(self.cart_value_minor.finish()) as ArrayRef),
                ("order_id", Arc::new(self.order_id.finish()) as ArrayRef),
                ("units", Arc::new(self.units.finish()) as ArrayRef),
                ("total_minor", Arc::new(self.total_minor.finish()) as ArrayRef),
                ("currency", Arc::new(self.currency.finish()) as ArrayRef),
                ("shard_id", Arc::new(self.shard_id.finish()) as ArrayRef),
                ("sequence_number", Arc::new(self.sequence_number.finish()) as ArrayRef),
                ("sub_sequence_number", Arc::new(self.sub_sequence_number.finish()) as ArrayRef),
                ("arrival_time", Arc::new(self.arrival_time.finish()) as ArrayRef),
            ],
        )
    }
}

struct OrderItemColumns {
    order_id: StringBuilder,
    event_id: StringBuilder,
    event_time: TimestampMillisecondBuilder,
    line_number: Int32Builder,
    customer_id: StringBuilder,
    country: StringBuilder,
    product_id: StringBuilder,
    category: StringBuilder,
    quantity: Int32Builder,
    unit_price_minor: Int64Builder,
    line_total_minor: Int64Builder,
    currency: StringBuilder,
}

impl OrderItemColumns {
    fn new() -> Self {
        OrderItemColumns {
            order_id: StringBuilder::new(),
            event_id: StringBuilder::new(),
            event_time: ts(),
            line_number: Int32Builder::new(),
            customer_id: StringBuilder::new(),
            country: StringBuilder::new(),
            product_id: StringBuilder::new(),
            category: StringBuilder::new(),
            quantity: Int32Builder::new(),
            unit_price_minor: Int64Builder::new(),
            line_total_minor: Int64Builder::new(),
            currency: StringBuilder::new(),
        }
    }

    fn push_order(&mut self, e: &Event) {
        let (Some(order), Some(currency)) = (&e.order, &e.currency) else { return };
        for (line, item) in (0i32..).zip(&order.items) {
            self.order_id.append_value(&order.order_id);
            self.event_id.append_value(&e.event_id);
            self.event_time.append_value(e.event_time_ms);
            self.line_number.append_value(line);
            self.customer_id.append_option(e.customer_id.as_deref());
            self.country.append_value(&e.country);
            self.product_id.append_value(&item.product_id);
            self.category.append_value(&item.category);
            self.quantity.append_value(item.quantity);
            self.unit_price_minor.append_value(item.unit_price_minor);
            self.line_total_minor.append_value(item.line_total_minor);
            self.currency.append_value(currency);
        }
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        finish_batch(
            Table::OrderItems,
            vec![
                ("order_id", Arc::new(self.order_id.finish()) as ArrayRef),
                ("event_id", Arc::new(self.event_id.finish()) as ArrayRef),
                ("event_time", Arc::new(self.event_time.finish()) as ArrayRef),
                ("line_number", Arc::new(self.line_number.finish()) as ArrayRef),
                ("customer_id", Arc::new(self.customer_id.finish()) as ArrayRef),
                ("country", Arc::new(self.country.finish()) as ArrayRef),
                ("product_id", Arc::new(self.product_id.finish()) as ArrayRef),
                ("category", Arc::new(self.category.finish()) as ArrayRef),
                ("quantity", Arc::new(self.quantity.finish()) as ArrayRef),
                ("unit_price_minor", Arc::new(self.unit_price_minor.finish()) as ArrayRef),
                ("line_total_minor", Arc::new(self.line_total_minor.finish()) as ArrayRef),
                ("currency", Arc::new(self.currency.finish()) as ArrayRef),
            ],
        )
    }
}

struct QuarantineColumns {
    shard_id: StringBuilder,
    sequence_number: StringBuilder,
    sub_sequence_number: Int32Builder,
    partition_key: StringBuilder,
    arrival_time: TimestampMillisecondBuilder,
    reason_code: StringBuilder,
    reason: StringBuilder,
    data: BinaryBuilder,
}

impl QuarantineColumns {
    fn new() -> Self {
        QuarantineColumns {
            shard_id: StringBuilder::new(),
            sequence_number: StringBuilder::new(),
            sub_sequence_number: Int32Builder::new(),
            partition_key: StringBuilder::new(),
            arrival_time: ts(),
            reason_code: StringBuilder::new(),
            reason: StringBuilder::new(),
            data: BinaryBuilder::new(),
        }
    }

    fn push(&mut self, m: &RecordMeta, r: &Rejection, data: &[u8]) {
        self.shard_id.append_value(&m.shard_id);
        self.sequence_number.append_value(&m.sequence_number);
        self.sub_sequence_number.append_value(m.sub_sequence_number);
        self.partition_key.append_value(&m.partition_key);
        self.arrival_time.append_value(m.arrival_ms);
        self.reason_code.append_value(r.code.as_str());
        self.reason.append_value(&r.reason);
        self.data.append_value(data);
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        finish_batch(
            Table::Quarantine,
            vec![
                ("shard_id", Arc::new(self.shard_id.finish()) as ArrayRef),
                ("sequence_number", Arc::new(self.sequence_number.finish()) as ArrayRef),
                ("sub_sequence_number", Arc::new(self.sub_sequence_number.finish()) as ArrayRef),
                ("partition_key", Arc::new(self.partition_key.finish()) as ArrayRef),
                ("arrival_time", Arc::new(self.arrival_time.finish()) as ArrayRef),
                ("reason_code", Arc::new(self.reason_code.finish()) as ArrayRef),
                ("reason", Arc::new(self.reason.finish()) as ArrayRef),
                ("data", Arc::new(self.data.finish()) as ArrayRef),
            ],
        )
    }
}

fn sales_batch<'a>(
    rows: impl Iterator<Item = (&'a model::SalesKey, &'a model::SalesMeasures)>,
) -> Result<RecordBatch, ArrowError> {
    let (mut window, mut country, mut category, mut currency) =
        (ts(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let (mut lines, mut units, mut revenue) = (Int64Builder::new(), Int64Builder::new(), Int64Builder::new());
    for (k, m) in rows {
        window.append_value(k.window_start_ms);
        country.append_value(&k.country);
        category.append_value(&k.category);
        currency.append_value(&k.currency);
        lines.append_value(m.order_lines);
        units.append_value(m.units);
        revenue.append_value(m.revenue_minor);
    }
    finish_batch(
        Table::SalesMinute,
        vec![
            ("window_start", Arc::new(window.finish()) as ArrayRef),
            ("country", Arc::new(country.finish())),
            ("category", Arc::new(category.finish())),
            ("currency", Arc::new(currency.finish())),
            ("order_lines", Arc::new(lines.finish())),
            ("units", Arc::new(units.finish())),
            ("revenue_minor", Arc::new(revenue.finish())),
        ],
    )
}

fn funnel_batch<'a>(
    rows: impl Iterator<Item = (&'a model::FunnelKey, &'a model::FunnelCounts)>,
) -> Result<RecordBatch, ArrowError> {
    let (mut window, mut country, mut device) = (ts(), StringBuilder::new(), StringBuilder::new());
    let mut counts: [Int64Builder; 6] = std::array::from_fn(|_| Int64Builder::new());
    for (k, c) in rows {
        window.append_value(k.window_start_ms);
        country.append_value(&k.country);
        device.append_value(&k.device);
        let values = [c.page_views, c.product_views, c.add_to_carts, c.remove_from_carts, c.checkouts, c.orders];
        for (b, v) in counts.iter_mut().zip(values) {
            b.append_value(v);
        }
    }
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("window_start", Arc::new(window.finish())),
        ("country", Arc::new(country.finish())),
        ("device", Arc::new(device.finish())),
    ];
    let names = ["page_views", "product_views", "add_to_carts", "remove_from_carts", "checkouts", "orders"];
    columns.extend(names.into_iter().zip(counts.iter_mut()).map(|(n, b)| (n, Arc::new(b.finish()) as ArrayRef)));
    finish_batch(Table::FunnelMinute, columns)
}

/// Accumulates one batch of records' rows for all five tables, split by partition.
#[derive(Default)]
pub struct DatasetBuilder {
    events: BTreeMap<Partition, EventColumns>,
    order_items: BTreeMap<Partition, OrderItemColumns>,
    quarantine: BTreeMap<Partition, QuarantineColumns>,
    aggregates: MinuteAggregates,
    event_count: usize,
    quarantine_count: usize,
}

impl DatasetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A valid event: one `events` row, its `order_items` rows and its share of the aggregates.
    pub fn add_event(&mut self, event: &Event, meta: &RecordMeta) {
        let partition = Partition::of_millis(event.event_time_ms);
        self.events.entry(partition).or_insert_with(EventColumns::new).push(event, meta);
        if event.order.is_some() {
            self.order_items.entry(partition).or_insert_with(OrderItemColumns::new).push_order(event);
        }
        self.aggregates.add(event);
        self.event_count += 1;
    }

    /// A rejected record: one `quarantine` row holding its exact bytes.
    pub fn add_rejection(&mut self, meta: &RecordMeta, rejection: &Rejection, data: &[u8]) {
        let partition = Partition::of_millis(meta.arrival_ms);
        self.quarantine.entry(partition).or_insert_with(QuarantineColumns::new).push(meta, rejection, data);
        self.quarantine_count += 1;
    }

    pub fn event_count(&self) -> usize {
        self.event_count
    }

    pub fn quarantine_count(&self) -> usize {
        self.quarantine_count
    }

    /// The aggregates of the events added so far.
    pub fn aggregates(&self) -> &MinuteAggregates {
        &self.aggregates
    }

    /// One record batch per table and partition that has rows, in table then partition order.
    pub fn finish(self) -> Result<Vec<TableBatch>, ArrowError> {
        let mut out = Vec::new();
        let mut push = |table, partition, batch| out.push(TableBatch { table, partition, batch });
        for (p, cols) in self.events {
            push(Table::Events, p, cols.finish()?);
        }
        for (p, cols) in self.order_items {
            push(Table::OrderItems, p, cols.finish()?);
        }
        let hour_of = |window_start_ms: i64| Partition::of_millis(window_start_ms);
        let mut sales_by_hour: BTreeMap<Partition, Vec<_>> = BTreeMap::new();
        for (k, rows) in self.aggregates.sales() {
            sales_by_hour.entry(hour_of(k.window_start_ms)).or_default().extend(rows.iter().map(|m| (k, m)));
        }
        for (p, rows) in sales_by_hour {
            push(Table::SalesMinute, p, sales_batch(rows.into_iter())?);
        }
        let mut funnel_by_hour: BTreeMap<Partition, Vec<_>> = BTreeMap::new();
        for (k, c) in self.aggregates.funnel() {
            funnel_by_hour.entry(hour_of(k.window_start_ms)).or_default().push((k, c));
        }
        for (p, rows) in funnel_by_hour {
            push(Table::FunnelMinute, p, funnel_batch(rows.into_iter())?);
        }
        for (p, cols) in self.quarantine {
            push(Table::Quarantine, p, cols.finish()?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array, StringArray};

    #[test]
    fn columns_are_placed_by_name_in_the_schemas_order() {
        let col = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        let ts = || Arc::new(arrow_array::TimestampMillisecondArray::from(vec![0]).with_timezone("UTC")) as ArrayRef;
        let num = || Arc::new(Int64Array::from(vec![1])) as ArrayRef;
        // Given in another order (currency before country), placed as the schema says.
        let given = vec![
            ("currency", col("EUR")),
            ("window_start", ts()),
            ("category", col("shoes")),
            ("country", col("DE")),
            ("order_lines", num()),
            ("units", num()),
            ("revenue_minor", num()),
        ];
        let batch = finish_batch(Table::SalesMinute, given.clone()).unwrap();
        let country = batch
            .column_by_name("country")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0)
            .to_string();
        assert_eq!((country.as_str(), batch.schema().field(1).name().as_str()), ("DE", "country"));
        let mut missing = given.clone();
        missing.retain(|(n, _)| *n != "units");
        assert!(finish_batch(Table::SalesMinute, missing).unwrap_err().to_string().contains("no column units"));
        let mut extra = given;
        extra.push(("bonus", num()));
        assert!(finish_batch(Table::SalesMinute, extra).unwrap_err().to_string().contains("column bonus"));
    }
}

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
    pub shard_id: String,
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

fn finish_batch(table: Table, columns: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(table.schema(), columns)
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
        self.order_id.append_option(e.order.as_ref().map(|o| o.order_id.as_str()));
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
                Arc::new(self.event_id.finish()),
                Arc::new(self.event_type.finish()),
                Arc::new(self.event_time.finish()),
                Arc::new(self.session_id.finish()),
                Arc::new(self.customer_id.finish()),
                Arc::new(self.country.finish()),
                Arc::new(self.device.finish()),
                Arc::new(self.page.finish()),
                Arc::new(self.product_id.finish()),
                Arc::new(self.category.finish()),
                Arc::new(self.quantity.finish()),
                Arc::new(self.unit_price_minor.finish()),
                Arc::new(self.cart_value_minor.finish()),
                Arc::new(self.order_id.finish()),
                Arc::new(self.units.finish()),
                Arc::new(self.total_minor.finish()),
                Arc::new(self.currency.finish()),
                Arc::new(self.shard_id.finish()),
                Arc::new(self.sequence_number.finish()),
                Arc::new(self.sub_sequence_number.finish()),
                Arc::new(self.arrival_time.finish()),
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
                Arc::new(self.order_id.finish()),
                Arc::new(self.event_id.finish()),
                Arc::new(self.event_time.finish()),
                Arc::new(self.line_number.finish()),
                Arc::new(self.customer_id.finish()),
                Arc::new(self.country.finish()),
                Arc::new(self.product_id.finish()),
                Arc::new(self.category.finish()),
                Arc::new(self.quantity.finish()),
                Arc::new(self.unit_price_minor.finish()),
                Arc::new(self.line_total_minor.finish()),
                Arc::new(self.currency.finish()),
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
                Arc::new(self.shard_id.finish()),
                Arc::new(self.sequence_number.finish()),
                Arc::new(self.sub_sequence_number.finish()),
                Arc::new(self.partition_key.finish()),
                Arc::new(self.arrival_time.finish()),
                Arc::new(self.reason_code.finish()),
                Arc::new(self.reason.finish()),
                Arc::new(self.data.finish()),
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
            Arc::new(window.finish()),
            Arc::new(country.finish()),
            Arc::new(category.finish()),
            Arc::new(currency.finish()),
            Arc::new(lines.finish()),
            Arc::new(units.finish()),
            Arc::new(revenue.finish()),
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
    let mut columns: Vec<ArrayRef> =
        vec![Arc::new(window.finish()), Arc::new(country.finish()), Arc::new(device.finish())];
    columns.extend(counts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
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
        for (k, rows) in &self.aggregates.sales {
            sales_by_hour.entry(hour_of(k.window_start_ms)).or_default().extend(rows.iter().map(|m| (k, m)));
        }
        for (p, rows) in sales_by_hour {
            push(Table::SalesMinute, p, sales_batch(rows.into_iter())?);
        }
        let mut funnel_by_hour: BTreeMap<Partition, Vec<_>> = BTreeMap::new();
        for (k, c) in &self.aggregates.funnel {
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

//! Merging one table's staged files of one hour into one file (pure: bytes in, bytes out).
//!
//! Detail tables (`events`, `order_items`, `quarantine`) are spliced: the inputs' column
//! chunks are laid end to end into row groups of about a set size (`splice`) without decoding
//! them, the few dictionary-encoded columns with their indices rewritten to one dictionary
//! (`redict`), so memory holds one row group's inputs, not the table, and the cost is mostly a
//! copy. Aggregate tables (`sales_minute`, `funnel_minute`)
//! are rolled up: decoded and summed per key, one row per key, sorted by key, one row group.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::schema::types::SchemaDescriptor;
use sink::{encode_batches, merged_writer_properties, Table};

use crate::splice::{self, Spliceable};

/// Rows decoded at a time.
const BATCH_ROWS: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("staged file {key} cannot be read: {error}")]
    Input { key: String, error: String },
    #[error("staged file {key} does not hold the {table} table's columns: {what}")]
    Schema { key: String, table: Table, what: String },
    #[error("summing {table}'s {column} overflows a 64-bit integer")]
    Overflow { table: Table, column: String },
    #[error("writing the merged {table} file failed: {error}")]
    Write {
        table: Table,
        #[source]
        error: ParquetError,
    },
}

/// What was merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Merged {
    /// Rows written.
    pub rows: u64,
    /// Rows read from the inputs (for an aggregate table, more than written).
    pub rows_in: u64,
    pub row_groups: usize,
}

/// Merges `inputs` (key and bytes of each staged file, in order) into one Parquet file written
/// to `out`, row groups of about `row_group_bytes` for a detail table.
pub fn merge<W: Write + Send>(
    table: Table,
    inputs: impl IntoIterator<Item = (String, Bytes)>,
    out: W,
    row_group_bytes: usize,
) -> Result<Merged, MergeError> {
    if table.is_aggregate() {
        rollup(table, inputs, out)
    } else {
        append(table, inputs, out, row_group_bytes)
    }
}

fn write_err(table: Table) -> impl Fn(ParquetError) -> MergeError {
    move |error| MergeError::Write { table, error }
}

/// Each input's record batches, checked against the table's schema and carrying it.
fn batches(table: Table, key: &str, body: Bytes) -> Result<Vec<RecordBatch>, MergeError> {
    let input = |e: ParquetError| MergeError::Input { key: key.to_string(), error: e.to_string() };
    let reader = ParquetRecordBatchReaderBuilder::try_new(body).map_err(input)?.with_batch_size(BATCH_ROWS).build();
    let reader = reader.map_err(input)?;
    let schema = table.schema();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| MergeError::Input { key: key.to_string(), error: e.to_string() })?;
        let got = batch.schema();
        let same = got.fields().len() == schema.fields().len()
            && got
                .fields()
                .iter()
                .zip(schema.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !same {
            let names: Vec<String> = got.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
            return Err(MergeError::Schema { key: key.to_string(), table, what: names.join(", ") });
        }
        let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(|e| MergeError::Schema {
            key: key.to_string(),
            table,
            what: e.to_string(),
        })?;
        out.push(batch);
    }
    Ok(out)
}

fn append<W: Write + Send>(
    table: Table,
    inputs: impl IntoIterator<Item = (String, Bytes)>,
    out: W,
    row_group_bytes: usize,
) -> Result<Merged, MergeError> {
    let arrow = table.schema();
    // An Arrow writer's file (the table's schema, and the Arrow schema in its metadata), whose
    // row groups are written here, column by column.
    let (mut writer, encoders) =
        ArrowWriter::try_new(out, arrow.clone(), Some(merged_writer_properties(row_group_bytes)))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(write_err(table))?;
    let schema = writer.schema_descr().clone();
    let mut merged = Merged::default();
    let (mut pending, mut pending_bytes) = (Vec::new(), 0u64);
    for (key, body) in inputs {
        let input = spliceable(table, &schema, &key, body)?;
        if input.rows() == 0 {
            continue;
        }
        merged.rows_in += input.rows();
        pending_bytes += input.data_bytes();
        pending.push(input);
        if pending_bytes >= row_group_bytes as u64 {
            splice::write_row_group(&mut writer, &encoders, &arrow, &pending).map_err(write_err(table))?;
            (pending, pending_bytes) = (Vec::new(), 0);
        }
    }
    if !pending.is_empty() {
        splice::write_row_group(&mut writer, &encoders, &arrow, &pending).map_err(write_err(table))?;
    }
    let meta = writer.close().map_err(write_err(table))?;
    merged.rows = merged.rows_in;
    merged.row_groups = meta.num_row_groups();
    Ok(merged)
}

/// A staged file ready to splice: as it is when it has the table's Parquet schema (the
/// processor's files), else decoded (which checks its columns) and re-encoded as the processor
/// writes it.
fn spliceable(table: Table, schema: &SchemaDescriptor, key: &str, body: Bytes) -> Result<Spliceable, MergeError> {
    let input = |e: ParquetError| MergeError::Input { key: key.to_string(), error: e.to_string() };
    let meta = ParquetMetaDataReader::new().parse_and_finish(&body).map_err(input)?;
    let why = match Spliceable::new(body.clone(), meta, &table.schema(), schema) {
        Ok(spliceable) => return Ok(spliceable),
        Err(why) => why,
    };
    tracing::debug!(key, why, "a staged file is re-encoded to be merged");
    let body = encode_batches(table, table.schema(), &batches(table, key, body)?).map_err(|e| write_err(table)(e.0))?;
    let meta = ParquetMetaDataReader::new().parse_and_finish(&body).map_err(write_err(table))?;
    Spliceable::new(body, meta, &table.schema(), schema)
        .map_err(|why| MergeError::Write { table, error: ParquetError::General(why) })
}

/// A row of an aggregate table: the window, the other key columns, the measures.
type Key = (i64, Vec<String>);

fn rollup<W: Write + Send>(
    table: Table,
    inputs: impl IntoIterator<Item = (String, Bytes)>,
    out: W,
) -> Result<Merged, MergeError> {
    let schema = table.schema();
    let kinds: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
    let strings: Vec<usize> = (0..kinds.len()).filter(|&i| *kinds[i] == DataType::Utf8).collect();
    let measures: Vec<usize> = (0..kinds.len()).filter(|&i| *kinds[i] == DataType::Int64).collect();
    let mut sums: BTreeMap<Key, Vec<i64>> = BTreeMap::new();
    let mut merged = Merged::default();
    for (key, body) in inputs {
        for batch in batches(table, &key, body)? {
            merged.rows_in += batch.num_rows() as u64;
            let window = batch.column(0).as_primitive::<TimestampMillisecondType>();
            let text: Vec<&StringArray> = strings.iter().map(|&i| batch.column(i).as_string::<i32>()).collect();
            let values: Vec<&Int64Array> =
                measures.iter().map(|&i| batch.column(i).as_primitive::<Int64Type>()).collect();
            for row in 0..batch.num_rows() {
                let k = (window.value(row), text.iter().map(|a| a.value(row).to_string()).collect());
                let acc = sums.entry(k).or_insert_with(|| vec![0; measures.len()]);
                for (j, v) in values.iter().enumerate() {
                    acc[j] = acc[j].checked_add(v.value(row)).ok_or_else(|| MergeError::Overflow {
                        table,
                        column: schema.field(measures[j]).name().clone(),
                    })?;
                }
            }
        }
    }
    let columns: Vec<ArrayRef> = (0..kinds.len())
        .map(|i| -> ArrayRef {
            if let Some(s) = strings.iter().position(|&c| c == i) {
                Arc::new(StringArray::from_iter_values(sums.keys().map(|k| k.1[s].as_str())))
            } else if let Some(m) = measures.iter().position(|&c| c == i) {
                Arc::new(Int64Array::from_iter_values(sums.values().map(|v| v[m])))
            } else {
                Arc::new(TimestampMillisecondArray::from_iter_values(sums.keys().map(|k| k.0)).with_timezone("UTC"))
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| MergeError::Write { table, error: ParquetError::General(e.to_string()) })?;
    let mut writer =
        ArrowWriter::try_new(out, schema, Some(merged_writer_properties(usize::MAX))).map_err(write_err(table))?;
    if batch.num_rows() > 0 {
        writer.write(&batch).map_err(write_err(table))?;
    }
    let meta = writer.close().map_err(write_err(table))?;
    merged.rows = batch.num_rows() as u64;
    merged.row_groups = meta.num_row_groups();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int32Type;
    use parquet::file::properties::WriterProperties;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;
    use sink::{encode_parquet, DatasetBuilder, RecordMeta};

    /// Staged files of `batches` batches of `per` orders each (every order two lines, in the
    /// same few minutes and countries), as the processor writes them: table to files.
    fn staged(batches: usize, per: usize) -> BTreeMap<Table, Vec<(String, Bytes)>> {
        let mut out: BTreeMap<Table, Vec<(String, Bytes)>> = BTreeMap::new();
        for b in 0..batches {
            let mut builder = DatasetBuilder::new();
            for i in 0..per {
                let n = b * per + i;
                let json = format!(
                    r#"{{"event_id":"e-{n}","event_type":"order_placed","event_time":"2026-11-23T12:0{}:00Z","session_id":"s-{n}","country":"{}","device":"app","order_id":"o-{n}","currency":"EUR","items":[{{"product_id":"p-{}","category":"c-{}","quantity":2,"unit_price_minor":150}},{{"product_id":"p-x","category":"c-x","quantity":1,"unit_price_minor":99}}],"total_minor":399}}"#,
                    n % 3,
                    ["DE", "FR"][n % 2],
                    n % 5,
                    n % 4
                );
                let event = model::validate(json.as_bytes(), 1_795_435_200_000).unwrap();
                let meta = RecordMeta {
                    shard_id: "s".into(),
                    sequence_number: n.to_string(),
                    sub_sequence_number: 0,
                    partition_key: "k".into(),
                    arrival_ms: 1_795_435_200_000,
                };
                builder.add_event(&event, &meta);
            }
            for tb in builder.finish().unwrap() {
                let body = encode_parquet(tb.table, tb.batch).unwrap();
                out.entry(tb.table).or_default().push((format!("{}-{b}", tb.table), body));
            }
        }
        out
    }

    fn read(body: Vec<u8>) -> (Vec<RecordBatch>, usize) {
        let body = Bytes::from(body);
        let groups = SerializedFileReader::new(body.clone()).unwrap().metadata().num_row_groups();
        let batches = ParquetRecordBatchReaderBuilder::try_new(body).unwrap().build().unwrap();
        (batches.map(|b| b.unwrap()).collect(), groups)
    }

    /// Every row of `batches`, column by column, as text (for comparing files).
    fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for b in batches {
            for r in 0..b.num_rows() {
                out.push(b.columns().iter().map(|c| format!("{:?}", c.slice(r, 1))).collect());
            }
        }
        out
    }

    #[test]
    fn detail_files_are_spliced_with_row_groups_cut_by_size() {
        let inputs = staged(20, 500);
        let items = inputs[&Table::OrderItems].clone();
        let expected: Vec<Vec<String>> = items.iter().flat_map(|(_, body)| rows(&read(body.to_vec()).0)).collect();
        let mut whole = Vec::new();
        let m = merge(Table::OrderItems, items.clone(), &mut whole, 128 << 20).unwrap();
        assert_eq!((m.rows, m.rows_in, m.row_groups), (20_000, 20_000, 1), "the whole round in one row group");
        let (batches, groups) = read(whole);
        assert_eq!(groups, 1);
        assert_eq!(batches[0].schema(), Table::OrderItems.schema());
        assert_eq!(rows(&batches), expected, "every row, in input order");
        let mut cut = Vec::new();
        let m = merge(Table::OrderItems, items, &mut cut, 8 << 10).unwrap();
        assert!(m.row_groups > 2, "{m:?}");
        let (batches, groups) = read(cut);
        assert_eq!(groups, m.row_groups);
        assert_eq!(rows(&batches), expected);
    }

    #[test]
    fn merged_chunks_are_spliced_or_re_encoded_and_carry_the_range_of_their_rows() {
        let inputs = staged(6, 50);
        let events = inputs[&Table::Events].clone();
        let batches: Vec<RecordBatch> = events.iter().flat_map(|(_, body)| read(body.to_vec()).0).collect();
        let mut out = Vec::new();
        merge(Table::Events, events, &mut out, 128 << 20).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(out)).unwrap();
        let group = reader.metadata().row_group(0);
        for (i, field) in Table::Events.schema().fields().iter().enumerate() {
            let name = field.name();
            let dictionary = group.column(i).dictionary_page_offset().is_some();
            assert_eq!(
                dictionary,
                sink::DICTIONARY_COLUMNS.contains(&name.as_str()),
                "{name}: spliced unless a dictionary"
            );
            if dictionary {
                // Its inputs' pages, indices rewritten to one dictionary (the encoder would have
                // made one page of these 300 rows).
                let mut pages = reader.get_row_group(0).unwrap().get_column_page_reader(i).unwrap();
                let mut data_pages = 0;
                while let Some(page) = pages.get_next_page().unwrap() {
                    data_pages += usize::from(page.is_data_page());
                }
                assert_eq!(data_pages, 6, "{name}");
            }
            let stats = group.column(i).statistics().unwrap_or_else(|| panic!("{name} has statistics"));
            let column: Vec<&ArrayRef> = batches.iter().map(|b| b.column(i)).collect();
            let nulls: usize = column.iter().map(|c| c.null_count()).sum();
            assert_eq!(stats.null_count_opt(), Some(nulls as u64), "{name}");
            let valid = |c: &&ArrayRef| (0..c.len()).filter(|&r| c.is_valid(r)).collect::<Vec<_>>();
            match stats {
                Statistics::Int64(s) => {
                    let v: Vec<i64> = column
                        .iter()
                        .flat_map(|c| match c.data_type() {
                            DataType::Int64 => c.as_primitive::<Int64Type>().iter().flatten().collect::<Vec<_>>(),
                            _ => c.as_primitive::<TimestampMillisecondType>().iter().flatten().collect(),
                        })
                        .collect();
                    assert_eq!((s.min_opt(), s.max_opt()), (v.iter().min(), v.iter().max()), "{name}");
                }
                Statistics::Int32(s) => {
                    let v: Vec<i32> = column
                        .iter()
                        .flat_map(|c| c.as_primitive::<Int32Type>().iter().flatten().collect::<Vec<_>>())
                        .collect();
                    assert_eq!((s.min_opt(), s.max_opt()), (v.iter().min(), v.iter().max()), "{name}");
                }
                Statistics::ByteArray(s) => {
                    let v: Vec<&[u8]> = column
                        .iter()
                        .flat_map(|c| valid(c).into_iter().map(move |r| c.as_string::<i32>().value(r).as_bytes()))
                        .collect();
                    let got = (s.min_opt().map(|b| b.data()), s.max_opt().map(|b| b.data()));
                    assert_eq!(got, (v.iter().min().copied(), v.iter().max().copied()), "{name}");
                }
                other => panic!("{name}: unexpected statistics {other:?}"),
            }
        }
    }

    #[test]
    fn files_with_dictionary_pages_are_re_encoded_then_merged() {
        let inputs = staged(3, 40);
        let mut items = inputs[&Table::OrderItems].clone();
        let expected: Vec<Vec<String>> = items.iter().flat_map(|(_, body)| rows(&read(body.to_vec()).0)).collect();
        // The middle file as an older processor wrote it: dictionary pages.
        let (batches, _) = read(items[1].1.to_vec());
        let props = WriterProperties::builder().set_dictionary_enabled(true).build();
        let mut old = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut old, Table::OrderItems.schema(), Some(props)).unwrap();
        for b in &batches {
            writer.write(b).unwrap();
        }
        writer.close().unwrap();
        let old = Bytes::from(old);
        let meta = ParquetMetaDataReader::new().parse_and_finish(&old).unwrap();
        assert!(meta.row_group(0).columns().iter().any(|c| c.dictionary_page_offset().is_some()));
        items[1].1 = old;
        let mut out = Vec::new();
        let m = merge(Table::OrderItems, items, &mut out, 128 << 20).unwrap();
        assert_eq!((m.rows, m.row_groups), (expected.len() as u64, 1));
        assert_eq!(rows(&read(out).0), expected);
    }

    #[test]
    fn aggregate_files_are_rolled_up_to_one_row_per_key() {
        let inputs = staged(10, 300);
        let sales = inputs[&Table::SalesMinute].clone();
        let mut out = Vec::new();
        let m = merge(Table::SalesMinute, sales.clone(), &mut out, 1).unwrap();
        assert!(m.rows < m.rows_in, "{m:?}");
        let (batches, groups) = read(out);
        assert_eq!(groups, 1);
        let mut seen = std::collections::BTreeSet::new();
        let (mut lines, mut revenue) = (0i64, 0i64);
        for b in &batches {
            let w = b.column(0).as_primitive::<TimestampMillisecondType>();
            let (c, cat) = (b.column(1).as_string::<i32>(), b.column(2).as_string::<i32>());
            for r in 0..b.num_rows() {
                assert!(seen.insert((w.value(r), c.value(r).to_string(), cat.value(r).to_string())), "a key twice");
                if r > 0 {
                    assert!((w.value(r - 1), c.value(r - 1)) <= (w.value(r), c.value(r)), "sorted by key");
                }
            }
            lines += b.column(4).as_primitive::<Int64Type>().iter().flatten().sum::<i64>();
            revenue += b.column(6).as_primitive::<Int64Type>().iter().flatten().sum::<i64>();
        }
        assert_eq!((lines, revenue), (3000 * 2, 3000 * 399), "sums kept");
        // Funnel too.
        let mut out = Vec::new();
        let m = merge(Table::FunnelMinute, inputs[&Table::FunnelMinute].clone(), &mut out, 1).unwrap();
        assert_eq!(m.rows, 6, "3 minutes x 2 countries x 1 device");
    }

    #[test]
    fn a_file_of_another_table_or_no_parquet_at_all_is_an_error() {
        let inputs = staged(1, 10);
        let events = inputs[&Table::Events][0].clone();
        let err = merge(Table::OrderItems, [events], Vec::new(), 1 << 20).unwrap_err();
        assert!(matches!(err, MergeError::Schema { .. }), "{err}");
        let err =
            merge(Table::Events, [("k".to_string(), Bytes::from_static(b"nope"))], Vec::new(), 1 << 20).unwrap_err();
        assert!(matches!(err, MergeError::Input { .. }), "{err}");
    }

    #[test]
    fn sums_that_overflow_are_refused() {
        let schema = Table::FunnelMinute.schema();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(vec![0]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec!["DE"])),
            Arc::new(StringArray::from(vec!["app"])),
            Arc::new(Int64Array::from(vec![i64::MAX])),
            Arc::new(Int64Array::from(vec![0])),
            Arc::new(Int64Array::from(vec![0])),
            Arc::new(Int64Array::from(vec![0])),
            Arc::new(Int64Array::from(vec![0])),
            Arc::new(Int64Array::from(vec![0])),
        ];
        let body = encode_parquet(Table::FunnelMinute, RecordBatch::try_new(schema, columns).unwrap()).unwrap();
        let err = merge(Table::FunnelMinute, [("a".to_string(), body.clone()), ("b".to_string(), body)], Vec::new(), 1)
            .unwrap_err();
        assert!(matches!(err, MergeError::Overflow { .. }), "{err}");
    }
}

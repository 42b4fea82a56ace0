use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion};
use parquet::schema::types::ColumnPath;

use crate::Table;

#[derive(Debug, thiserror::Error)]
#[error("encoding a Parquet file failed: {0}")]
pub struct EncodeError(#[from] pub ParquetError);

/// The writer settings of every file: ZSTD level 3, chunk and page statistics, Parquet 1.0 data
/// pages (the most widely readable).
fn builder() -> WriterPropertiesBuilder {
    let zstd = ZstdLevel::try_new(3).unwrap_or_default();
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(zstd))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(concat!("orderstream sink ", env!("CARGO_PKG_VERSION")).to_string())
}

/// The columns with few distinct values that queries group and filter by (event types,
/// countries, devices, categories, currencies, reason codes), where a dictionary makes a merged
/// column five times smaller. (A staged file's `shard_id` is one value: it compresses to
/// nothing without one.)
pub const DICTIONARY_COLUMNS: [&str; 6] = ["event_type", "country", "device", "category", "currency", "reason_code"];

/// The settings of a commit's staged files of `table`: one row group per file (a file is one
/// batch's partition); a dictionary for [`DICTIONARY_COLUMNS`] only, so that the publisher
/// merges the other columns by laying their chunks end to end without decoding them (each data
/// page stands alone; at a batch's size a dictionary saves little on them).
///
/// Compressed (ZSTD) only where the publisher copies the bytes as they are: the dictionary
/// columns (whose indices it rewrites, then compresses) and the aggregate tables (which it
/// decodes and rolls up) are written uncompressed. Staged files are hidden and short-lived, so
/// this costs a few bytes of S3 traffic, and saves a compression context per column chunk in the
/// processor and a decompression context per chunk in the publisher (the greater part of a
/// round's CPU for the aggregates' small files, by `perf`).
pub fn writer_properties(table: Table) -> Arc<WriterProperties> {
    static PROPS: std::sync::OnceLock<[Arc<WriterProperties>; 5]> = std::sync::OnceLock::new();
    PROPS.get_or_init(|| Table::ALL.map(staged_properties))[table as usize].clone()
}

fn staged_properties(table: Table) -> Arc<WriterProperties> {
    let mut builder = builder().set_dictionary_enabled(false);
    if table.is_aggregate() {
        builder = builder.set_compression(Compression::UNCOMPRESSED);
    }
    for name in DICTIONARY_COLUMNS {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(name), true)
            .set_column_compression(ColumnPath::from(name), Compression::UNCOMPRESSED);
    }
    Arc::new(builder.build())
}

/// The settings of a publisher's merged files: the same encoding, row groups cut at about
/// `row_group_bytes` of encoded data, never by a row count.
pub fn merged_writer_properties(row_group_bytes: usize) -> WriterProperties {
    builder().set_max_row_group_row_count(None).set_max_row_group_bytes(Some(row_group_bytes.max(1))).build()
}

/// One record batch of `table` to the bytes of a staged file: the bytes [`ArrowWriter`] writes
/// for it, encoded a column at a time, each column's Arrow array released (when `batch` held the
/// last reference to it) as soon as its chunk is in the file. `ArrowWriter` holds the whole
/// batch and every column's encoded pages until the row group closes; this holds the batch's
/// columns not yet encoded and the file so far (issue 12's B4, a full invocation in 32 MB:
/// docs/performance.md).
pub fn encode_parquet(table: Table, batch: RecordBatch) -> Result<Bytes, EncodeError> {
    // Grown as the chunks come: a staged file is a few percent of its batch's Arrow memory (a
    // reserve sized from that was most of the file's share of the peak).
    let mut buf = Vec::new();
    let (schema, columns, rows) = batch.into_parts();
    let writer = ArrowWriter::try_new(&mut buf, schema.clone(), Some((*writer_properties(table)).clone()))?;
    let (mut file, row_groups) = writer.into_serialized_writer()?;
    // As `ArrowWriter::write`: a batch without rows makes a file without row groups.
    if rows > 0 {
        let mut writers = row_groups.create_column_writers(0)?.into_iter();
        let mut row_group = file.next_row_group()?;
        for (field, column) in schema.fields().iter().zip(columns) {
            for leaf in compute_leaves(field, &column)? {
                let mut writer = writers.next().ok_or_else(|| {
                    ParquetError::General(format!("{table}: no column writer for a leaf of {}", field.name()))
                })?;
                writer.write(&leaf)?;
                writer.close()?.append_to_row_group(&mut row_group)?;
            }
        }
        row_group.close()?;
    }
    file.close()?;
    Ok(Bytes::from(buf))
}

/// Record batches of `table` (of one schema) to the bytes of one staged file (as
/// [`encode_parquet`] writes), through [`ArrowWriter`].
pub fn encode_batches(table: Table, schema: SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, EncodeError> {
    let size: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    let mut buf = Vec::with_capacity(4096 + size / 4);
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some((*writer_properties(table)).clone()))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::new_empty_array;
    use parquet::file::metadata::ParquetMetaDataReader;

    #[test]
    fn a_staged_file_is_the_bytes_arrow_writer_writes() {
        use crate::{DatasetBuilder, RecordMeta};
        let mut builder = DatasetBuilder::new();
        for n in 0..3000 {
            let json = format!(
                r#"{{"event_id":"e-{n}","event_type":"order_placed","event_time":"2026-11-23T1{}:0{}:00Z","session_id":"s-{n}","country":"{}","device":"app","order_id":"o-{n}","currency":"EUR","items":[{{"product_id":"p-{}","category":"c-{}","quantity":2,"unit_price_minor":150}}],"total_minor":300}}"#,
                n % 2,
                n % 7,
                ["DE", "FR", "PL"][n % 3],
                n % 50,
                n % 4
            );
            let meta = RecordMeta {
                shard_id: "shardId-000000000000".into(),
                sequence_number: format!("4960{n:052}"),
                sub_sequence_number: 0,
                partition_key: format!("k-{n}"),
                arrival_ms: 1_795_435_200_000 + n as i64,
            };
            builder.add_event(&model::validate(json.as_bytes(), meta.arrival_ms).unwrap(), &meta);
            if n % 100 == 0 {
                let bad = model::validate(b"{not json", meta.arrival_ms).unwrap_err();
                builder.add_rejection(&meta, &bad, b"{not json");
            }
        }
        // Without rows, a file without row groups, as `ArrowWriter` writes it.
        let schema = Table::Events.schema();
        let empty = RecordBatch::new_empty(schema.clone());
        let expected = encode_batches(Table::Events, schema, std::slice::from_ref(&empty)).unwrap();
        assert_eq!(encode_parquet(Table::Events, empty).unwrap(), expected);
        let batches = builder.finish().unwrap();
        // Both hours of the events and their items, the four other tables.
        assert_eq!(batches.len(), 2 + 2 + 2 + 2 + 1);
        for tb in batches {
            let expected = encode_batches(tb.table, tb.batch.schema(), std::slice::from_ref(&tb.batch)).unwrap();
            assert!(tb.batch.num_rows() > 0);
            assert_eq!(encode_parquet(tb.table, tb.batch).unwrap(), expected, "{}", tb.table);
        }
    }

    #[test]
    fn staged_files_compress_only_what_the_publisher_copies_as_it_is() {
        for table in Table::ALL {
            let schema = table.schema();
            let columns = schema.fields().iter().map(|f| new_empty_array(f.data_type())).collect();
            let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
            let body = encode_parquet(table, batch).unwrap();
            let meta = ParquetMetaDataReader::new().parse_and_finish(&body).unwrap();
            let props = writer_properties(table);
            for column in meta.file_metadata().schema_descr().columns() {
                let name = column.name();
                let dictionary = DICTIONARY_COLUMNS.contains(&name);
                let compression = props.compression(column.path());
                assert_eq!(props.dictionary_enabled(column.path()), dictionary, "{table}.{name}");
                if dictionary || table.is_aggregate() {
                    assert_eq!(compression, Compression::UNCOMPRESSED, "{table}.{name}");
                } else {
                    assert!(matches!(compression, Compression::ZSTD(_)), "{table}.{name}");
                }
            }
        }
        // Published files are ZSTD throughout.
        let merged = merged_writer_properties(1 << 20);
        assert!(matches!(merged.compression(&ColumnPath::from("country")), Compression::ZSTD(_)));
    }
}

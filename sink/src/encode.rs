use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion};
use parquet::schema::types::ColumnPath;

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

/// The settings of a commit's staged files: one row group per file (a file is one batch's
/// partition); a dictionary for [`DICTIONARY_COLUMNS`] only, so that the publisher merges the
/// other columns by laying their chunks end to end without decoding them (each data page stands
/// alone; at a batch's size a dictionary saves little on them).
pub fn writer_properties() -> Arc<WriterProperties> {
    static PROPS: std::sync::OnceLock<Arc<WriterProperties>> = std::sync::OnceLock::new();
    PROPS
        .get_or_init(|| {
            let builder = DICTIONARY_COLUMNS.iter().fold(builder().set_dictionary_enabled(false), |b, name| {
                b.set_column_dictionary_enabled(ColumnPath::from(*name), true)
            });
            Arc::new(builder.build())
        })
        .clone()
}

/// The settings of a publisher's merged files: the same encoding, row groups cut at about
/// `row_group_bytes` of encoded data, never by a row count.
pub fn merged_writer_properties(row_group_bytes: usize) -> WriterProperties {
    builder().set_max_row_group_row_count(None).set_max_row_group_bytes(Some(row_group_bytes.max(1))).build()
}

/// One record batch to the bytes of a Parquet file.
pub fn encode_parquet(batch: &RecordBatch) -> Result<Bytes, EncodeError> {
    encode_batches(batch.schema(), std::slice::from_ref(batch))
}

/// Record batches of one schema to the bytes of one staged file (as [`encode_parquet`] writes).
pub fn encode_batches(schema: SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, EncodeError> {
    let size: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    let mut buf = Vec::with_capacity(4096 + size / 4);
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some((*writer_properties()).clone()))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(Bytes::from(buf))
}

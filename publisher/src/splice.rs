//! Row groups assembled from staged files' column chunks, most of them without decoding.
//!
//! The processor writes most columns of a staged file without a dictionary page
//! (`sink::writer_properties`), so such a column's pages from many files, laid end to end, are
//! one valid column chunk: its metadata is the inputs' summed (sizes, value counts) and widened
//! (min and max statistics), and nothing is decompressed. The few columns that have a
//! dictionary (types, countries, currencies: few distinct values, where a dictionary makes the
//! column several times smaller) are merged into one chunk with one dictionary by rewriting
//! their pages' indices (`redict`), or, when a chunk is not as the processor writes it,
//! decoded and encoded again; they are a small share of the bytes.

use std::io::Read;
use std::sync::Arc;

use arrow_schema::Schema;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::ProjectionMask;
use parquet::basic::{Compression, EncodingMask, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, ColumnChunkMetaDataBuilder, ParquetMetaData};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::SchemaDescriptor;

use crate::redict;

/// A file whose column chunks can be spliced: its bytes and its footer, read as the table's
/// Arrow schema.
pub struct Spliceable {
    body: Bytes,
    arrow: ArrowReaderMetadata,
}

impl Spliceable {
    /// The file if it has the table's Parquet schema (`expected`, the merged file's), else why
    /// not (it is then decoded, which checks its columns, and re-encoded).
    pub fn new(
        body: Bytes,
        meta: ParquetMetaData,
        arrow: &Arc<Schema>,
        expected: &SchemaDescriptor,
    ) -> std::result::Result<Self, String> {
        if meta.file_metadata().schema_descr().root_schema() != expected.root_schema() {
            return Err("another Parquet schema".into());
        }
        let options = ArrowReaderOptions::new().with_schema(arrow.clone());
        let arrow = ArrowReaderMetadata::try_new(Arc::new(meta), options).map_err(|e| e.to_string())?;
        Ok(Spliceable { body, arrow })
    }

    fn meta(&self) -> &ParquetMetaData {
        self.arrow.metadata()
    }

    /// Encoded bytes of its row groups (what it adds to a merged row group).
    pub fn data_bytes(&self) -> u64 {
        self.meta().row_groups().iter().map(|g| g.compressed_size().max(0) as u64).sum()
    }

    pub fn rows(&self) -> u64 {
        self.meta().row_groups().iter().map(|g| g.num_rows().max(0) as u64).sum()
    }

    fn chunks(&self, column: usize) -> impl Iterator<Item = &ColumnChunkMetaData> {
        self.meta().row_groups().iter().map(move |g| g.column(column))
    }
}

/// Whether a column is spliced as it is: no chunk has a dictionary page, all are ZSTD.
fn spliceable_column(inputs: &[Spliceable], column: usize) -> bool {
    inputs
        .iter()
        .flat_map(|i| i.chunks(column))
        .all(|c| c.dictionary_page_offset().is_none() && matches!(c.compression(), Compression::ZSTD(_)))
}

/// Writes one row group of `inputs`' rows, in order: spliceable columns' chunks end to end,
/// dictionary columns with their indices rewritten to one dictionary, any other column decoded
/// and encoded again with the file's settings.
pub fn write_row_group<W: std::io::Write + Send>(
    file: &mut SerializedFileWriter<W>,
    encoders: &ArrowRowGroupWriterFactory,
    arrow: &Schema,
    inputs: &[Spliceable],
) -> Result<()> {
    let schema = &file.schema_descr().clone();
    let properties = file.properties().clone();
    let writers = encoders.create_column_writers(file.flushed_row_groups().len())?;
    // The columns not spliced each get a thread of their own (they are few, and this is where
    // a round spends its CPU) while the others are spliced, in column order.
    std::thread::scope(|scope| -> Result<()> {
        let merging: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(column, writer)| {
                let zstd = match properties.compression(schema.column(column).path()) {
                    Compression::ZSTD(level) => Some(level.compression_level()),
                    _ => None,
                };
                (!spliceable_column(inputs, column)).then(|| {
                    scope.spawn(move || {
                        let redicted = match zstd {
                            Some(level) => redictionary_column(schema, column, inputs, level)?,
                            None => None,
                        };
                        match redicted {
                            Some(chunk) => Ok(Merged::Redicted(chunk)),
                            None => encode_column(writer, arrow, schema, column, inputs).map(Merged::Encoded),
                        }
                    })
                })
            })
            .collect();
        let mut group = file.next_row_group()?;
        for (column, merging) in merging.into_iter().enumerate() {
            let Some(handle) = merging else {
                splice_column(&mut group, schema, column, inputs)?;
                continue;
            };
            match handle.join().map_err(|_| ParquetError::General("a column encoder panicked".into()))?? {
                Merged::Encoded(chunk) => chunk.append_to_row_group(&mut group)?,
                Merged::Redicted((chunk, close)) => group.append_column(&chunk, close)?,
            }
        }
        group.close()?;
        Ok(())
    })
}

/// A column chunk made on a thread of its own.
enum Merged {
    Redicted((Spliced, ColumnCloseResult)),
    Encoded(ArrowColumnChunk),
}

/// Column `column` of every input, its chunks' bytes laid end to end.
fn splice_column<W: std::io::Write + Send>(
    group: &mut SerializedRowGroupWriter<'_, W>,
    schema: &SchemaDescriptor,
    column: usize,
    inputs: &[Spliceable],
) -> Result<()> {
    let chunks: Vec<(&Spliceable, &ColumnChunkMetaData)> =
        inputs.iter().flat_map(|input| input.chunks(column).map(move |c| (input, c))).collect();
    let mut parts = Vec::with_capacity(chunks.len());
    for (input, chunk) in &chunks {
        let (start, length) = chunk.byte_range();
        let end = start.checked_add(length).filter(|&end| end <= input.body.len() as u64);
        let end =
            end.ok_or_else(|| ParquetError::General(format!("column chunk {start}+{length} is out of its file")))?;
        parts.push(input.body.slice(start as usize..end as usize));
    }
    let spliced = Spliced::new(parts);
    let codec = chunks.first().map(|(_, c)| c.compression()).unwrap_or(Compression::UNCOMPRESSED);
    if chunks.iter().any(|(_, c)| c.compression() != codec) {
        return Err(ParquetError::General(format!("column {column}'s chunks are not compressed alike")));
    }
    let close = ColumnCloseResult {
        bytes_written: spliced.len(),
        rows_written: chunks.iter().map(|(_, c)| c.num_values().max(0) as u64).sum(),
        metadata: chunk_metadata(schema, column, &chunks, codec, spliced.len())?.build()?,
        bloom_filter: None,
        column_index: None,
        offset_index: None,
    };
    group.append_column(&spliced, close)
}

/// Column `column` of every input with one dictionary (`redict`), if its chunks are as the
/// processor writes them.
fn redictionary_column(
    schema: &SchemaDescriptor,
    column: usize,
    inputs: &[Spliceable],
    zstd_level: i32,
) -> Result<Option<(Spliced, ColumnCloseResult)>> {
    let chunks: Vec<(&Spliceable, &ColumnChunkMetaData)> =
        inputs.iter().flat_map(|input| input.chunks(column).map(move |c| (input, c))).collect();
    let pages: Vec<_> = inputs
        .iter()
        .flat_map(|input| {
            input
                .meta()
                .row_groups()
                .iter()
                .map(|g| (input.body.clone(), g.column(column), g.num_rows().max(0) as usize))
        })
        .collect();
    let Some(merged) = redict::redictionary(schema.column(column).as_ref(), &pages, zstd_level)? else {
        return Ok(None);
    };
    let dictionary_bytes = merged.dictionary_page.len();
    let spliced = Spliced::new(vec![Bytes::from(merged.dictionary_page), Bytes::from(merged.data_pages)]);
    let codec = Compression::ZSTD(ZstdLevel::try_new(zstd_level)?);
    let metadata = chunk_metadata(schema, column, &chunks, codec, spliced.len())?
        .set_dictionary_page_offset(Some(0))
        .set_data_page_offset(dictionary_bytes as i64)
        .set_total_uncompressed_size(merged.uncompressed_bytes)
        .set_encodings_mask(merged.encodings)
        .build()?;
    let close = ColumnCloseResult {
        bytes_written: spliced.len(),
        rows_written: chunks.iter().map(|(_, c)| c.num_values().max(0) as u64).sum(),
        metadata,
        bloom_filter: None,
        column_index: None,
        offset_index: None,
    };
    Ok(Some((spliced, close)))
}

/// Column `column` of every input, decoded (that column only) and encoded into one chunk.
fn encode_column(
    mut writer: ArrowColumnWriter,
    arrow: &Schema,
    schema: &SchemaDescriptor,
    column: usize,
    inputs: &[Spliceable],
) -> Result<ArrowColumnChunk> {
    let field = arrow.field(column);
    for input in inputs {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(input.body.clone(), input.arrow.clone())
            .with_projection(ProjectionMask::leaves(schema, [column]))
            .with_batch_size(8192)
            .build()?;
        for batch in reader {
            let batch = batch.map_err(|e| ParquetError::General(e.to_string()))?;
            for leaf in compute_leaves(field, batch.column(0))? {
                writer.write(&leaf)?;
            }
        }
    }
    writer.close()
}

/// The metadata of `chunks` laid end to end (`compressed` bytes from offset 0), to be built.
fn chunk_metadata(
    schema: &SchemaDescriptor,
    column: usize,
    chunks: &[(&Spliceable, &ColumnChunkMetaData)],
    codec: Compression,
    compressed: u64,
) -> Result<ColumnChunkMetaDataBuilder> {
    let mut encodings = EncodingMask::default();
    let (mut uncompressed, mut values) = (0i64, 0i64);
    let mut unencoded = Some(0i64);
    for (_, c) in chunks {
        for e in c.encodings_mask().encodings() {
            encodings.insert(e);
        }
        uncompressed += c.uncompressed_size();
        values += c.num_values();
        unencoded = unencoded.zip(c.unencoded_byte_array_data_bytes()).map(|(a, b)| a + b);
    }
    let builder = ColumnChunkMetaData::builder(schema.column(column))
        .set_compression(codec)
        .set_encodings_mask(encodings)
        .set_total_compressed_size(compressed as i64)
        .set_total_uncompressed_size(uncompressed)
        .set_num_values(values)
        .set_data_page_offset(0)
        .set_unencoded_byte_array_data_bytes(unencoded);
    Ok(match merged_statistics(chunks.iter().map(|(_, c)| (c.statistics(), c.num_values()))) {
        Some(statistics) => builder.set_statistics(statistics),
        None => builder.clear_statistics(),
    })
}

/// The statistics of chunks laid end to end: the least minimum, the greatest maximum, the
/// summed null count. None when a chunk has none, or no null count, or values but no minimum
/// or maximum (a reader then reads the chunk instead of trusting a range that may be wrong).
pub fn merged_statistics<'a>(chunks: impl Iterator<Item = (Option<&'a Statistics>, i64)>) -> Option<Statistics> {
    let mut merged: Option<Statistics> = None;
    for (stats, values) in chunks {
        let stats = stats?;
        let nulls = stats.null_count_opt()?;
        let all_null = nulls == values.max(0) as u64;
        if !all_null && (stats.min_bytes_opt().is_none() || stats.max_bytes_opt().is_none()) {
            return None;
        }
        merged = Some(match merged {
            None => stats.clone(),
            Some(acc) => widen(acc, stats)?,
        });
    }
    merged
}

fn widen(acc: Statistics, next: &Statistics) -> Option<Statistics> {
    Some(match (acc, next) {
        (Statistics::Int32(a), Statistics::Int32(b)) => Statistics::from(widen_values(a, b, |x, y| x < y)?),
        (Statistics::Int64(a), Statistics::Int64(b)) => Statistics::from(widen_values(a, b, |x, y| x < y)?),
        (Statistics::ByteArray(a), Statistics::ByteArray(b)) => {
            Statistics::from(widen_values(a, b, |x: &ByteArray, y: &ByteArray| x.data() < y.data())?)
        }
        _ => return None,
    })
}

/// `a` and `b` widened; a side without minimum and maximum is all nulls (checked above).
fn widen_values<T: Clone>(
    a: ValueStatistics<T>,
    b: &ValueStatistics<T>,
    less: impl Fn(&T, &T) -> bool,
) -> Option<ValueStatistics<T>> {
    let nulls = a.null_count_opt()?.checked_add(b.null_count_opt()?)?;
    let (min, min_exact) = match (a.min_opt(), b.min_opt()) {
        (Some(x), Some(y)) if less(y, x) => (Some(y.clone()), b.min_is_exact()),
        (Some(x), _) => (Some(x.clone()), a.min_is_exact()),
        (None, y) => (y.cloned(), b.min_is_exact()),
    };
    let (max, max_exact) = match (a.max_opt(), b.max_opt()) {
        (Some(x), Some(y)) if less(x, y) => (Some(y.clone()), b.max_is_exact()),
        (Some(x), _) => (Some(x.clone()), a.max_is_exact()),
        (None, y) => (y.cloned(), b.max_is_exact()),
    };
    Some(
        ValueStatistics::new(min, max, None, Some(nulls), false)
            .with_min_is_exact(min_exact)
            .with_max_is_exact(max_exact),
    )
}

/// Byte buffers read as one: a spliced column chunk, without copying it into one buffer.
struct Spliced {
    parts: Vec<Bytes>,
    len: u64,
}

impl Spliced {
    fn new(parts: Vec<Bytes>) -> Self {
        let len = parts.iter().map(|p| p.len() as u64).sum();
        Spliced { parts, len }
    }
}

impl Length for Spliced {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader over the parts from an offset.
struct Parts {
    parts: std::collections::VecDeque<Bytes>,
}

impl Read for Parts {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(front) = self.parts.front_mut() {
            if front.is_empty() {
                self.parts.pop_front();
                continue;
            }
            let n = front.len().min(buf.len());
            buf[..n].copy_from_slice(&front.split_to(n));
            return Ok(n);
        }
        Ok(0)
    }
}

impl ChunkReader for Spliced {
    type T = Parts;

    fn get_read(&self, start: u64) -> Result<Parts> {
        let mut skip = start;
        let mut parts = std::collections::VecDeque::with_capacity(self.parts.len());
        for part in &self.parts {
            let n = part.len() as u64;
            if skip >= n {
                skip -= n;
            } else {
                parts.push_back(part.slice(skip as usize..));
                skip = 0;
            }
        }
        Ok(Parts { parts })
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        let mut out = vec![0; length];
        self.get_read(start)?.read_exact(&mut out).map_err(|e| ParquetError::EOF(e.to_string()))?;
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int64(min: Option<i64>, max: Option<i64>, nulls: Option<u64>) -> Statistics {
        Statistics::int64(min, max, None, nulls, false)
    }

    #[test]
    fn ranges_widen_and_chunks_of_nulls_only_add_their_nulls() {
        let a = int64(Some(5), Some(9), Some(0));
        let nulls = int64(None, None, Some(3));
        let c = int64(Some(2), Some(4), Some(1));
        let merged = merged_statistics([(Some(&a), 10), (Some(&nulls), 3), (Some(&c), 10)].into_iter()).unwrap();
        assert_eq!(merged, int64(Some(2), Some(9), Some(4)));
        let first_null = merged_statistics([(Some(&nulls), 3), (Some(&a), 10)].into_iter()).unwrap();
        assert_eq!(first_null, int64(Some(5), Some(9), Some(3)));
        let strings =
            |min: &str, max: &str| Statistics::byte_array(Some(min.into()), Some(max.into()), None, Some(0), false);
        let (x, y) = (strings("DE", "FR"), strings("AT", "ES"));
        let merged = merged_statistics([(Some(&x), 4), (Some(&y), 4)].into_iter()).unwrap();
        assert_eq!(merged, strings("AT", "FR"));
    }

    #[test]
    fn an_unknown_range_makes_the_merged_range_unknown() {
        let a = int64(Some(5), Some(9), Some(0));
        let unknown = int64(None, None, Some(0));
        let no_nulls = int64(Some(1), Some(2), None);
        assert_eq!(merged_statistics([(Some(&a), 10), (None, 3)].into_iter()), None);
        assert_eq!(merged_statistics([(Some(&a), 10), (Some(&unknown), 3)].into_iter()), None);
        assert_eq!(merged_statistics([(Some(&unknown), 3), (Some(&a), 10)].into_iter()), None);
        assert_eq!(merged_statistics([(Some(&a), 10), (Some(&no_nulls), 3)].into_iter()), None);
        let text = Statistics::byte_array(Some("a".into()), Some("b".into()), None, Some(0), false);
        assert_eq!(merged_statistics([(Some(&a), 10), (Some(&text), 3)].into_iter()), None, "types differ");
    }

    #[test]
    fn spliced_parts_read_as_one_from_any_offset() {
        let spliced = Spliced::new(vec![Bytes::from_static(b"abc"), Bytes::new(), Bytes::from_static(b"defg")]);
        assert_eq!(spliced.len(), 7);
        let mut all = String::new();
        spliced.get_read(0).unwrap().read_to_string(&mut all).unwrap();
        assert_eq!(all, "abcdefg");
        assert_eq!(spliced.get_bytes(2, 3).unwrap(), Bytes::from_static(b"cde"));
        assert_eq!(spliced.get_bytes(3, 4).unwrap(), Bytes::from_static(b"defg"));
        assert!(spliced.get_bytes(5, 4).is_err());
    }
}

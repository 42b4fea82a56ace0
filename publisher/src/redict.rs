//! Dictionary-encoded column chunks of many files merged into one chunk with one dictionary,
//! without decoding their values: the inputs' dictionaries united, each data page's indices
//! rewritten to the united dictionary, its definition levels copied as they are.
//!
//! This is what the few dictionary columns of a staged file (event types, countries, currencies:
//! `sink::DICTIONARY_COLUMNS`) cost a round: a page's indices decoded (staged files leave these
//! columns uncompressed), mapped through a table of a few entries, encoded again and
//! compressed. Decoding the values and encoding them again (the `parquet` crate's writer, which
//! hashes every value into its dictionary) took about half of a round's CPU.
//!
//! It takes the chunks the processor's writer makes (a dictionary page, then Parquet 1.0 data
//! pages of dictionary indices, one level of nesting at most); anything else (data pages that
//! fell back to plain values, version 2 pages, a united dictionary above the writer's page
//! limit) is answered with `None`, and the caller encodes the column again.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Encoding, EncodingMask, Type as PhysicalType};
use parquet::column::page::{CompressedPage, Page, PageReader, PageWriter};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescriptor;

use crate::rle;

/// The largest united dictionary page (the `parquet` crate writer's default limit).
const DICTIONARY_PAGE_LIMIT: usize = 1024 * 1024;

/// A merged chunk: its dictionary page and data pages, and the figures of its metadata.
pub struct Redicted {
    /// The dictionary page, then the data pages, serialized.
    pub dictionary_page: Vec<u8>,
    pub data_pages: Vec<u8>,
    pub uncompressed_bytes: i64,
    pub encodings: EncodingMask,
}

/// The chunks `chunks` (each with the rows of its row group, in order) of the column `descr`
/// as one chunk compressed with ZSTD at `zstd_level`; None when a chunk is not made as this
/// module expects (see the module's documentation).
pub fn redictionary(
    descr: &ColumnDescriptor,
    chunks: &[(Bytes, &ColumnChunkMetaData, usize)],
    zstd_level: i32,
) -> Result<Option<Redicted>> {
    if descr.physical_type() != PhysicalType::BYTE_ARRAY || descr.max_rep_level() != 0 || descr.max_def_level() > 1 {
        return Ok(None);
    }
    if chunks.iter().any(|(_, chunk, _)| chunk.dictionary_page_offset().is_none()) {
        return Ok(None);
    }
    let mut compressor = zstd::bulk::Compressor::new(zstd_level).map_err(zstd_err)?;
    let mut dictionary = Dictionary::default();
    let mut data = TrackedWrite::new(Vec::new());
    let mut uncompressed_bytes = 0i64;
    let (mut levels, mut indices, mut page) = (Vec::new(), Vec::new(), Vec::new());
    let nullable = descr.max_def_level() == 1;
    for (body, chunk, rows) in chunks {
        let mut pages = SerializedPageReader::new(Arc::new(body.clone()), chunk, *rows, None)?;
        let mut remap: Option<Vec<u32>> = None;
        while let Some(input) = pages.get_next_page()? {
            let (buf, num_values, def_level_encoding, rep_level_encoding, statistics) = match input {
                Page::DictionaryPage { buf, num_values, encoding, .. } => {
                    if !matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
                        return Ok(None);
                    }
                    remap = Some(dictionary.unite(&buf, num_values)?);
                    if dictionary.plain.len() > DICTIONARY_PAGE_LIMIT {
                        return Ok(None);
                    }
                    continue;
                }
                Page::DataPage {
                    buf,
                    num_values,
                    encoding: Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY,
                    def_level_encoding,
                    rep_level_encoding,
                    statistics,
                } if !nullable || def_level_encoding == Encoding::RLE => {
                    (buf, num_values, def_level_encoding, rep_level_encoding, statistics)
                }
                _ => return Ok(None),
            };
            let Some(remap) = &remap else { return Err(corrupt("a data page before its dictionary")) };
            // The definition levels (a 4-byte length, then the levels), copied; the indices
            // after them, one per value that is not null.
            let (level_bytes, present) = if nullable {
                let length = buf.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
                let end = length.map(|l| 4 + l).filter(|&end| end <= buf.len());
                let end = end.ok_or_else(|| corrupt("definition levels beyond the page"))?;
                levels.clear();
                rle::decode(&buf[4..end], 1, num_values as usize, &mut levels).map_err(|e| corrupt(&e.to_string()))?;
                (end, levels.iter().filter(|&&level| level == 1).count())
            } else {
                (0, num_values as usize)
            };
            indices.clear();
            // A page of nulls only may end after its levels, without the indices' bit width.
            if present > 0 {
                let width =
                    *buf.get(level_bytes).ok_or_else(|| corrupt("a data page without its indices' bit width"))?;
                rle::decode(&buf[level_bytes + 1..], width, present, &mut indices)
                    .map_err(|e| corrupt(&e.to_string()))?;
            }
            let mut max = 0;
            for index in &mut indices {
                *index = *remap.get(*index as usize).ok_or_else(|| corrupt("a dictionary index out of range"))?;
                max = max.max(*index);
            }
            page.clear();
            page.extend_from_slice(&buf[..level_bytes]);
            page.push(rle::bit_width(max));
            rle::encode(&indices, rle::bit_width(max), &mut page);
            let compressed = compressor.compress(&page).map_err(zstd_err)?;
            let out = Page::DataPage {
                buf: Bytes::from(compressed),
                num_values,
                encoding: Encoding::RLE_DICTIONARY,
                def_level_encoding,
                rep_level_encoding,
                statistics,
            };
            let spec = SerializedPageWriter::new(&mut data).write_page(CompressedPage::new(out, page.len()))?;
            uncompressed_bytes += spec.uncompressed_size as i64;
        }
    }
    let values = dictionary.plain;
    let compressed = compressor.compress(&values).map_err(zstd_err)?;
    let out = Page::DictionaryPage {
        buf: Bytes::from(compressed),
        num_values: dictionary.index.len() as u32,
        encoding: Encoding::PLAIN,
        is_sorted: false,
    };
    let mut dictionary_page = TrackedWrite::new(Vec::new());
    let spec = SerializedPageWriter::new(&mut dictionary_page).write_page(CompressedPage::new(out, values.len()))?;
    uncompressed_bytes += spec.uncompressed_size as i64;
    let mut encodings = EncodingMask::default();
    for e in [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY] {
        encodings.insert(e);
    }
    Ok(Some(Redicted {
        dictionary_page: dictionary_page.into_inner()?,
        data_pages: data.into_inner()?,
        uncompressed_bytes,
        encodings,
    }))
}

/// The united dictionary: its values PLAIN-encoded (a 4-byte length, then the bytes), in the
/// order first seen, and each value's index.
#[derive(Default)]
struct Dictionary {
    plain: Vec<u8>,
    index: HashMap<Vec<u8>, u32>,
}

impl Dictionary {
    /// Adds a page's values (PLAIN byte arrays) that are new; answers each value's index in the
    /// united dictionary, by its index in the page.
    fn unite(&mut self, page: &[u8], num_values: u32) -> Result<Vec<u32>> {
        let mut remap = Vec::with_capacity(num_values as usize);
        let mut at = 0;
        for _ in 0..num_values {
            let length = page.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            let value = length
                .and_then(|l| page.get(at + 4..at + 4 + l))
                .ok_or_else(|| corrupt("a dictionary page's value beyond its end"))?;
            let index = match self.index.get(value) {
                Some(&index) => index,
                None => {
                    let index = self.index.len() as u32;
                    self.index.insert(value.to_vec(), index);
                    self.plain.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    self.plain.extend_from_slice(value);
                    index
                }
            };
            remap.push(index);
            at += 4 + value.len();
        }
        Ok(remap)
    }
}

fn corrupt(what: &str) -> ParquetError {
    ParquetError::General(format!("a dictionary-encoded column chunk cannot be merged: {what}"))
}

fn zstd_err(e: std::io::Error) -> ParquetError {
    ParquetError::General(format!("ZSTD: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::column::writer::ColumnCloseResult;
    use parquet::file::metadata::ParquetMetaDataReader;
    use parquet::file::properties::{WriterProperties, WriterVersion};
    use parquet::file::writer::SerializedFileWriter;
    use proptest::prelude::*;

    fn schema(nullable: bool) -> Arc<Schema> {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, nullable)]))
    }

    /// A file of one text column as the processor writes a dictionary column (ZSTD, Parquet 1.0
    /// pages), `page_rows` rows a page and `group_rows` a row group.
    fn file(
        values: &[Option<String>],
        nullable: bool,
        page_rows: usize,
        group_rows: usize,
        dictionary_limit: usize,
    ) -> Bytes {
        let props = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
            .set_dictionary_enabled(true)
            .set_dictionary_page_size_limit(dictionary_limit)
            .set_data_page_row_count_limit(page_rows)
            .set_write_batch_size(page_rows)
            .set_max_row_group_row_count(Some(group_rows))
            .build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, schema(nullable), Some(props)).unwrap();
        let column: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        writer.write(&RecordBatch::try_new(schema(nullable), vec![column]).unwrap()).unwrap();
        writer.close().unwrap();
        Bytes::from(out)
    }

    /// The files' column merged by `redictionary` into a file of one row group, read back; the
    /// number of values of its dictionary page.
    fn merged(files: &[Bytes]) -> Option<(Vec<Option<String>>, u32)> {
        let metas: Vec<_> = files.iter().map(|f| ParquetMetaDataReader::new().parse_and_finish(f).unwrap()).collect();
        let chunks: Vec<_> = files
            .iter()
            .zip(&metas)
            .flat_map(|(f, m)| m.row_groups().iter().map(|g| (f.clone(), g.column(0), g.num_rows() as usize)))
            .collect();
        let descr = metas[0].file_metadata().schema_descr().column(0);
        let merged = redictionary(&descr, &chunks, 3).unwrap()?;
        let dictionary_bytes = merged.dictionary_page.len();
        let body = Bytes::from([merged.dictionary_page, merged.data_pages].concat());
        let values: i64 = chunks.iter().map(|(_, c, _)| c.num_values()).sum();
        let metadata = ColumnChunkMetaData::builder(descr.clone())
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_encodings_mask(merged.encodings)
            .set_total_compressed_size(body.len() as i64)
            .set_total_uncompressed_size(merged.uncompressed_bytes)
            .set_num_values(values)
            .set_dictionary_page_offset(Some(0))
            .set_data_page_offset(dictionary_bytes as i64)
            .build()
            .unwrap();
        let mut pages = SerializedPageReader::new(Arc::new(body.clone()), &metadata, values as usize, None).unwrap();
        let Some(Page::DictionaryPage { num_values: distinct, .. }) = pages.get_next_page().unwrap() else {
            panic!("a dictionary page first")
        };
        let mut out = Vec::new();
        let root = metas[0].file_metadata().schema_descr().root_schema_ptr();
        let mut writer = SerializedFileWriter::new(&mut out, root, Arc::new(WriterProperties::default())).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let close = ColumnCloseResult {
            bytes_written: body.len() as u64,
            rows_written: values as u64,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: None,
        };
        group.append_column(&body, close).unwrap();
        group.close().unwrap();
        writer.close().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(out)).unwrap().build().unwrap();
        let mut read = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let column = batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            read.extend((0..column.len()).map(|r| column.is_valid(r).then(|| column.value(r).to_string())));
        }
        Some((read, distinct))
    }

    fn text(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn dictionaries_in_other_orders_with_nulls_become_one() {
        let a = text(&[Some("DE"), Some("FR"), None, Some("DE"), Some("FR"), Some("FR"), Some("DE"), None, None, None]);
        let b = text(&[Some("US"), Some("DE"), Some("US"), None, Some("JP")]);
        let c = text(&[None, None, None, None, Some("FR")]);
        let files = [file(&a, true, 3, 7, 1 << 20), file(&b, true, 2, 100, 1 << 20), file(&c, true, 4, 100, 1 << 20)];
        let (values, distinct) = merged(&files).expect("merged");
        assert_eq!(values, [a, b, c].concat());
        assert_eq!(distinct, 4, "DE FR US JP once each");
    }

    #[test]
    fn a_chunk_whose_dictionary_fell_back_to_plain_values_is_left_to_the_encoder() {
        let many: Vec<Option<String>> = (0..200).map(|n| Some(format!("value-{n}"))).collect();
        let few = text(&[Some("a"), Some("b")]);
        let files = [file(&few, false, 10, 100, 1 << 20), file(&many, false, 10, 1000, 64)];
        assert!(merged(&files).is_none());
        let plain = WriterProperties::builder().set_dictionary_enabled(false).build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, schema(false), Some(plain)).unwrap();
        let column: ArrayRef = Arc::new(StringArray::from(few.clone()));
        writer.write(&RecordBatch::try_new(schema(false), vec![column]).unwrap()).unwrap();
        writer.close().unwrap();
        assert!(merged(&[file(&few, false, 10, 100, 1 << 20), Bytes::from(out)]).is_none(), "no dictionary");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn merged_columns_read_back_as_their_inputs_one_after_another(
            nullable in any::<bool>(),
            files in proptest::collection::vec(
                (proptest::collection::vec(proptest::option::weighted(0.8, 0u8..12), 1..60), 1usize..20, 1usize..80),
                1..6,
            ),
        ) {
            let files: Vec<(Vec<Option<String>>, usize, usize)> = files
                .into_iter()
                .map(|(values, page, group)| {
                    let values = values.into_iter().map(|v| match v {
                        Some(v) => Some(format!("v{v}")),
                        None if nullable => None,
                        None => Some(String::new()),
                    });
                    (values.collect(), page, group)
                })
                .collect();
            let bodies: Vec<Bytes> = files.iter().map(|(v, page, group)| file(v, nullable, *page, *group, 1 << 20)).collect();
            let expected: Vec<Option<String>> = files.iter().flat_map(|(v, _, _)| v.clone()).collect();
            let distinct: std::collections::HashSet<&Option<String>> = expected.iter().filter(|v| v.is_some()).collect();
            let (values, in_dictionary) = merged(&bodies).expect("merged");
            prop_assert_eq!(values, expected.clone());
            prop_assert_eq!(in_dictionary as usize, distinct.len());
        }
    }
}

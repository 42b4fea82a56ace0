//! The contract's output side: the five tables' Arrow schemas ([`Table`]), rows to Arrow record
//! batches grouped by Hive partition ([`DatasetBuilder`]), Parquet encoding under the contract's
//! physical rules ([`encode_parquet`]), the S3 key layout ([`layout`]), and the object stores the
//! files go to ([`store`]: S3, a local directory, memory).

mod batch;
mod encode;
pub mod layout;
mod schema;
pub mod store;

pub use batch::{DatasetBuilder, RecordMeta, TableBatch};
pub use encode::{
    encode_batches, encode_parquet, merged_writer_properties, writer_properties, EncodeError, DICTIONARY_COLUMNS,
};
pub use layout::Partition;
pub use schema::Table;

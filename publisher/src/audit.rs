//! What the visible datasets look like from a reader's side: files per table, files per table,
//! hour and round, and rows per key per round of the aggregate tables. The main job prints it;
//! the tests assert on it.

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sink::store::{ObjectStore, StoreError};
use sink::Table;

/// One table's visible files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableAudit {
    pub files: u64,
    /// Partitions (`dt`, `hr`) holding files.
    pub hours: u64,
    /// The most files one partition holds from one round of one group (the contract: 1).
    pub max_files_per_hour_and_round: u64,
    /// Aggregate tables: the most rows one key has in one file (the contract: 1 per round).
    pub max_rows_per_key: u64,
    /// Files not named like a round's (`part-<group>-<round>.parquet`).
    pub foreign_files: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    pub tables: BTreeMap<Table, TableAudit>,
}

impl Audit {
    /// Whether every table keeps the contract's promise (section 2.7).
    pub fn holds(&self) -> bool {
        self.tables.values().all(|t| t.max_files_per_hour_and_round <= 1 && t.max_rows_per_key <= 1)
    }

    pub fn files(&self) -> u64 {
        self.tables.values().map(|t| t.files).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key} is not a readable Parquet file: {error}")]
    Unreadable { key: String, error: String },
}

/// The (group, round) of a visible file's name.
fn round_of(key: &str) -> Option<(u32, u64)> {
    let name = key.rsplit('/').next()?.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (g, r) = name.split_once('-')?;
    Some((g.parse().ok()?, r.parse().ok()?))
}

/// Reads the listing of every table under `prefix`, and each aggregate file.
pub async fn audit<S: ObjectStore + ?Sized>(store: &S, prefix: &str) -> Result<Audit, AuditError> {
    audit_except(store, prefix, &BTreeSet::new()).await
}

/// The visible data files of every table under `prefix` (to leave out of a later audit).
pub async fn visible_files<S: ObjectStore + ?Sized>(store: &S, prefix: &str) -> Result<BTreeSet<String>, AuditError> {
    let mut keys = BTreeSet::new();
    for table in Table::ALL {
        keys.extend(store.list(&format!("{prefix}{table}/")).await?.into_iter().filter(|k| is_data_file(k)));
    }
    Ok(keys)
}

fn is_data_file(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    key.ends_with(".parquet") && !name.starts_with('_') && !name.starts_with('.')
}

/// [`audit`] of the files not in `earlier` (what a run published into a folder that held
/// another run's datasets).
pub async fn audit_except<S: ObjectStore + ?Sized>(
    store: &S,
    prefix: &str,
    earlier: &BTreeSet<String>,
) -> Result<Audit, AuditError> {
    let mut audit = Audit::default();
    for table in Table::ALL {
        let mut t = TableAudit::default();
        let mut per_round: BTreeMap<(String, u32, u64), u64> = BTreeMap::new();
        let mut hours = BTreeSet::new();
        for key in store.list(&format!("{prefix}{table}/")).await? {
            if !is_data_file(&key) || earlier.contains(&key) {
                continue;
            }
            let name = key.rsplit('/').next().unwrap_or(&key);
            let dir = key[..key.len() - name.len()].to_string();
            hours.insert(dir.clone());
            t.files += 1;
            match round_of(&key) {
                Some((g, r)) => *per_round.entry((dir, g, r)).or_default() += 1,
                None => t.foreign_files += 1,
            }
            if table.is_aggregate() {
                let body = store.get(&key).await?.unwrap_or_default();
                t.max_rows_per_key = t.max_rows_per_key.max(max_rows_per_key(&key, body)?);
            }
        }
        t.hours = hours.len() as u64;
        t.max_files_per_hour_and_round = per_round.values().copied().max().unwrap_or(0);
        audit.tables.insert(table, t);
    }
    Ok(audit)
}

/// The most rows sharing a key (every column that is not a measure) in one aggregate file.
fn max_rows_per_key(key: &str, body: bytes::Bytes) -> Result<u64, AuditError> {
    let unreadable = |e: &dyn std::fmt::Display| AuditError::Unreadable { key: key.to_string(), error: e.to_string() };
    let reader = ParquetRecordBatchReaderBuilder::try_new(body).map_err(|e| unreadable(&e))?.build();
    let mut counts: BTreeMap<(i64, Vec<String>), u64> = BTreeMap::new();
    for batch in reader.map_err(|e| unreadable(&e))? {
        let batch = batch.map_err(|e| unreadable(&e))?;
        let schema = batch.schema();
        let window = batch.column(0).as_primitive::<TimestampMillisecondType>();
        let text: Vec<_> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| *f.data_type() == DataType::Utf8)
            .map(|(i, _)| batch.column(i).as_string::<i32>())
            .collect();
        for row in 0..batch.num_rows() {
            let k = (window.value(row), text.iter().map(|a| a.value(row).to_string()).collect());
            *counts.entry(k).or_default() += 1;
        }
    }
    Ok(counts.values().copied().max().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::round_of;

    #[test]
    fn round_of_a_file_name() {
        assert_eq!(round_of("events/dt=2026-11-23/hr=12/part-0-00000000000000000007.parquet"), Some((0, 7)));
        assert_eq!(round_of("events/dt=2026-11-23/hr=12/part-s-shard-1.parquet"), None);
    }
}

//! Which commits a round publishes and which staged files each of its outputs merges (pure).

use std::collections::BTreeMap;

use processor::ledger::CommitSummary;
use sink::{Partition, Table};

use crate::record::ShardSpan;

/// A shard's commits not yet published, in order (the first is the one after its position).
#[derive(Debug, Clone)]
pub struct Pending {
    pub stream: String,
    pub shard_id: String,
    pub commits: Vec<CommitSummary>,
}

/// A staged file to merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub staged: String,
    pub bytes: u64,
    pub rows: u64,
}

/// A commit the round publishes, for reports and freshness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub stream: String,
    pub shard_id: String,
    pub commit: u64,
    pub records: u64,
    /// The first record's arrival (UTC ms).
    pub first_arrival_ms: i64,
    pub committed_ms: i64,
}

/// What a round merges.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub spans: Vec<ShardSpan>,
    pub taken: Vec<Taken>,
    /// Inputs per table and hour, in the order their commits were taken.
    pub outputs: BTreeMap<(Table, Partition), Vec<Input>>,
    pub input_bytes: u64,
    /// Commits left for a later round (the budget was spent).
    pub left: u64,
    /// The oldest `committed_ms` among them.
    pub oldest_left_ms: Option<i64>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("commit {commit} of {stream} {shard_id} names a file of table {table:?}, which is not one of the contract's")]
pub struct UnknownTable {
    pub stream: String,
    pub shard_id: String,
    pub commit: u64,
    pub table: String,
}

/// Takes commits oldest first (by `committed_ms`, each shard in order) while their staged bytes
/// fit in `budget_bytes` (the first always does, so that every round makes progress).
pub fn plan(pending: &[Pending], budget_bytes: u64) -> Result<Plan, UnknownTable> {
    let mut plan = Plan::default();
    let mut next = vec![0usize; pending.len()];
    let mut spans: Vec<Option<ShardSpan>> = vec![None; pending.len()];
    let mut full = false;
    loop {
        let oldest =
            pending.iter().enumerate().filter_map(|(i, p)| p.commits.get(next[i]).map(|c| (c.committed_ms, i))).min();
        let Some((_, i)) = oldest else { break };
        let (p, c) = (&pending[i], &pending[i].commits[next[i]]);
        let bytes: u64 = c.files.iter().map(|f| f.bytes).sum();
        if full || (!plan.taken.is_empty() && plan.input_bytes + bytes > budget_bytes) {
            // Everything from here waits: count it.
            full = true;
            plan.left += 1;
            plan.oldest_left_ms = Some(plan.oldest_left_ms.map_or(c.committed_ms, |o| o.min(c.committed_ms)));
            next[i] += 1;
            continue;
        }
        for f in &c.files {
            let table = Table::parse(&f.table).ok_or_else(|| UnknownTable {
                stream: p.stream.clone(),
                shard_id: p.shard_id.clone(),
                commit: c.commit,
                table: f.table.clone(),
            })?;
            plan.outputs.entry((table, Partition::of_millis(f.hour))).or_default().push(Input {
                staged: f.staged.clone(),
                bytes: f.bytes,
                rows: f.rows,
            });
        }
        plan.input_bytes += bytes;
        plan.taken.push(Taken {
            stream: p.stream.clone(),
            shard_id: p.shard_id.clone(),
            commit: c.commit,
            records: c.records,
            first_arrival_ms: c.arrival.0,
            committed_ms: c.committed_ms,
        });
        let span = spans[i].get_or_insert_with(|| ShardSpan {
            stream: p.stream.clone(),
            shard_id: p.shard_id.clone(),
            from: c.commit,
            to: c.commit,
        });
        span.to = c.commit;
        next[i] += 1;
    }
    plan.spans = spans.into_iter().flatten().collect();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use processor::ledger::record::ArrivalSpan;
    use processor::ledger::CommittedFile;

    fn commit(n: u64, at: i64, files: &[(&str, i64, u64)]) -> CommitSummary {
        CommitSummary {
            format: 2,
            stream: "s".into(),
            shard_id: "a".into(),
            commit: n,
            arrival: ArrivalSpan(at - 100, at - 50),
            committed_ms: at,
            files: files
                .iter()
                .enumerate()
                .map(|(i, (t, hour, bytes))| CommittedFile {
                    table: t.to_string(),
                    hour: *hour,
                    staged: format!("st/{n}/{i}"),
                    rows: 1,
                    bytes: *bytes,
                })
                .collect(),
            records: 2,
        }
    }

    fn pending(shard: &str, commits: Vec<CommitSummary>) -> Pending {
        Pending { stream: "s".into(), shard_id: shard.into(), commits }
    }

    const H: i64 = 3_600_000;

    #[test]
    fn one_output_per_table_and_hour_across_shards_and_commits() {
        let p = [
            pending(
                "a",
                vec![commit(4, 10, &[("events", 0, 10), ("events", H, 5)]), commit(5, 30, &[("events", 0, 10)])],
            ),
            pending("b", vec![commit(1, 20, &[("events", 0, 10), ("sales_minute", 0, 3)])]),
        ];
        let plan = plan(&p, u64::MAX).unwrap();
        assert_eq!(plan.outputs.len(), 3);
        let events0: Vec<&str> =
            plan.outputs[&(Table::Events, Partition::of_millis(0))].iter().map(|i| i.staged.as_str()).collect();
        // Oldest commit first, across shards.
        assert_eq!(events0, ["st/4/0", "st/1/0", "st/5/0"]);
        assert_eq!(plan.taken.iter().map(|t| t.commit).collect::<Vec<_>>(), [4, 1, 5]);
        assert_eq!(
            plan.spans,
            [
                ShardSpan { stream: "s".into(), shard_id: "a".into(), from: 4, to: 5 },
                ShardSpan { stream: "s".into(), shard_id: "b".into(), from: 1, to: 1 }
            ]
        );
        assert_eq!((plan.input_bytes, plan.left), (38, 0));
    }

    #[test]
    fn the_budget_cuts_a_round_but_never_stalls_it() {
        let p = [
            pending("a", vec![commit(1, 10, &[("events", 0, 100)]), commit(2, 30, &[("events", 0, 100)])]),
            pending("b", vec![commit(1, 20, &[("events", 0, 100)])]),
        ];
        let small = plan(&p, 150).unwrap();
        assert_eq!(small.taken.len(), 1, "the first commit always goes");
        assert_eq!((small.left, small.oldest_left_ms), (2, Some(20)));
        // A shard's commits are taken in order: never 2 without 1.
        let mid = plan(&p, 200).unwrap();
        assert_eq!(mid.taken.iter().map(|t| (t.shard_id.as_str(), t.commit)).collect::<Vec<_>>(), [("a", 1), ("b", 1)]);
        assert!(plan(&[], 10).unwrap().is_empty());
        let commits_without_files = [pending("a", vec![commit(1, 10, &[])])];
        let p = plan(&commits_without_files, 10).unwrap();
        assert_eq!((p.taken.len(), p.outputs.len()), (1, 0), "a commit with no files is still published");
    }

    #[test]
    fn an_unknown_table_is_an_error() {
        let p = [pending("a", vec![commit(1, 10, &[("nope", 0, 1)])])];
        assert_eq!(plan(&p, 10).unwrap_err().table, "nope");
    }
}

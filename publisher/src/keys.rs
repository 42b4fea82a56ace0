//! Where a publisher group keeps its rounds, and which shards a group owns.

use sink::layout::{self, Partition};
use sink::Table;
use xxhash_rust::xxh3::xxh3_64;

/// The folder of every group's rounds: `<prefix>_publish/<group>/`.
pub fn publish_dir(prefix: &str) -> String {
    format!("{prefix}_publish/")
}

/// The group (of `groups`) that publishes a shard: a hash of the stream and shard id, so that
/// every publisher of a deployment agrees without talking.
pub fn group_of(stream: &str, shard_id: &str, groups: u32) -> u32 {
    let h = xxh3_64(format!("{stream}/{shard_id}").as_bytes());
    (h % u64::from(groups.max(1))) as u32
}

/// The keys of one publisher group.
#[derive(Debug, Clone)]
pub struct GroupKeys {
    pub prefix: String,
    pub group: u32,
    base: String,
    staging: String,
}

impl GroupKeys {
    pub fn new(prefix: &str, group: u32) -> Self {
        GroupKeys {
            prefix: prefix.to_string(),
            group,
            base: format!("{}{group}/", publish_dir(prefix)),
            // Under `_staging/`, so that the lifecycle rule that expires a failed commit's files
            // expires a failed round's merged files too.
            staging: format!("{prefix}_staging/_publish/{group}/"),
        }
    }

    /// `head.json`: the latest round and whether it is complete (a hint).
    pub fn head(&self) -> String {
        format!("{}head.json", self.base)
    }

    pub fn rounds(&self) -> String {
        format!("{}rounds/", self.base)
    }

    /// Round record `r`: created once, with `If-None-Match: *` (the fence).
    pub fn round(&self, r: u64) -> String {
        format!("{}rounds/{r:020}.json", self.base)
    }

    /// The round number of a key under [`GroupKeys::rounds`].
    pub fn round_number(&self, key: &str) -> Option<u64> {
        key.strip_prefix(&self.rounds())?.strip_suffix(".json")?.parse().ok()
    }

    /// Where an attempt at round `r` writes a merged file before the round is decided.
    pub fn staged(&self, r: u64, attempt: &str, table: Table, partition: Partition) -> String {
        format!("{}{r:020}-{attempt}/{table}-{}.parquet", self.staging, partition.hour_start_ms)
    }

    /// The visible key of round `r`'s file of a table and hour: unique per group and round, so
    /// that rolling a round forward again writes the same file over itself.
    pub fn visible(&self, r: u64, table: Table, partition: Partition) -> String {
        layout::data_key(&self.prefix, table, partition, &format!("part-{}-{r:020}", self.group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_groups() {
        let k = GroupKeys::new("a/", 3);
        assert_eq!(k.round(7), "a/_publish/3/rounds/00000000000000000007.json");
        assert_eq!(k.round_number(&k.round(7)), Some(7));
        assert_eq!(k.round_number("a/_publish/3/head.json"), None);
        let p = Partition::of_millis(1_795_435_200_000);
        assert_eq!(
            k.visible(7, Table::Events, p),
            format!("a/events/{}/part-3-00000000000000000007.parquet", p.path())
        );
        assert!(k.staged(7, "x", Table::Events, p).starts_with("a/_staging/_publish/3/"));
        // Every shard has exactly one group, and the groups share the shards out.
        let counts = (0..1000).fold([0u32; 4], |mut c, i| {
            c[group_of("s", &format!("shardId-{i:012}"), 4) as usize] += 1;
            c
        });
        assert!(counts.iter().all(|&n| n > 180), "{counts:?}");
        assert_eq!(group_of("s", "x", 1), 0);
        assert_eq!(group_of("s", "x", 0), 0, "0 groups is read as 1");
    }
}

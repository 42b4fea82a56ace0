//! The publisher's configuration: the processor's (`ANALYTICS_BUCKET`, `ANALYTICS_PREFIX`, the
//! AWS SDK's environment) plus `PUBLISHER_GROUPS`, `PUBLISHER_GROUP`, `PUBLISH_INTERVAL_SECONDS`
//! (contract section 3) and the tuning below.

use std::time::Duration;

pub const GROUPS_VAR: &str = "PUBLISHER_GROUPS";
pub const GROUP_VAR: &str = "PUBLISHER_GROUP";
pub const INTERVAL_VAR: &str = "PUBLISH_INTERVAL_SECONDS";
/// Memory the merges may use (MB); default three quarters of the function's memory, or 1024.
pub const MEMORY_VAR: &str = "PUBLISH_MEMORY_MB";
/// Staged bytes one round merges at most (MB); default 1024.
pub const ROUND_VAR: &str = "PUBLISH_ROUND_MB";
/// Target size of a merged file's row groups (MB); default 128.
pub const ROW_GROUP_VAR: &str = "PUBLISH_ROW_GROUP_MB";

/// How a publisher runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub groups: u32,
    pub group: u32,
    /// Staged bytes one round merges at most (at least one commit always goes).
    pub round_bytes: u64,
    /// Commits of one shard read per round at most.
    pub round_commits: u64,
    /// Row groups of merged detail files are cut at about this many encoded bytes.
    pub row_group_bytes: usize,
    /// Parts of a multipart upload.
    pub part_bytes: usize,
    /// Outputs merged at once.
    pub workers: usize,
    /// A shard's `published.json` (which lets its processor fold old commit records) is
    /// rewritten once its position has moved this many commits (or every 64th round).
    pub mark_every: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::with_memory(1024 << 20, 128 << 20)
    }
}

impl Settings {
    /// Settings whose merges fit in `memory` bytes: as many outputs at once as there are cores
    /// and as the memory holds, one at least (each holds a row group's inputs, the next ones
    /// fetched ahead, the columns it encodes again and the parts being uploaded: twice a row
    /// group and six parts, measured in docs/performance.md).
    pub fn with_memory(memory: usize, row_group_bytes: usize) -> Self {
        let part_bytes = 8 << 20;
        let per_worker = 2 * row_group_bytes + 6 * part_bytes;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Settings {
            groups: 1,
            group: 0,
            round_bytes: 1 << 30,
            round_commits: 10_000,
            row_group_bytes,
            part_bytes,
            workers: (memory / per_worker.max(1)).clamp(1, cores),
            mark_every: 128,
        }
    }
}

/// A configuration the publisher cannot run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name}={value:?} is not a whole number")]
    NotANumber { name: &'static str, value: String },
    #[error("{GROUPS_VAR}={0} must be between 1 and 1024")]
    Groups(u64),
    #[error("{GROUP_VAR}={group} must be below {GROUPS_VAR}={groups} (groups are numbered from 0)")]
    Group { group: u64, groups: u64 },
    #[error("{INTERVAL_VAR}={0} must be between 1 and 600")]
    Interval(u64),
    #[error("{name}={value} must be at least {min}")]
    TooSmall { name: &'static str, value: u64, min: u64 },
}

/// The publisher function's settings and interval from an environment lookup.
pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<(Settings, Duration), ConfigError> {
    let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
        match get(name) {
            Some(v) if !v.trim().is_empty() => {
                v.trim().parse::<u64>().map(Some).map_err(|_| ConfigError::NotANumber { name, value: v })
            }
            _ => Ok(None),
        }
    };
    let groups = number(GROUPS_VAR)?.unwrap_or(1);
    if !(1..=1024).contains(&groups) {
        return Err(ConfigError::Groups(groups));
    }
    let group = number(GROUP_VAR)?.unwrap_or(0);
    if group >= groups {
        return Err(ConfigError::Group { group, groups });
    }
    let interval = number(INTERVAL_VAR)?.unwrap_or(10);
    if !(1..=600).contains(&interval) {
        return Err(ConfigError::Interval(interval));
    }
    let at_least = |name: &'static str, min: u64| -> Result<Option<u64>, ConfigError> {
        match number(name)? {
            Some(v) if v < min => Err(ConfigError::TooSmall { name, value: v, min }),
            other => Ok(other),
        }
    };
    let function_mb = number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?;
    let memory_mb = at_least(MEMORY_VAR, 64)?.or(function_mb.map(|m| m * 3 / 4)).unwrap_or(1024);
    let row_group_mb = at_least(ROW_GROUP_VAR, 1)?.unwrap_or(128);
    let mut settings = Settings::with_memory((memory_mb as usize) << 20, (row_group_mb as usize) << 20);
    settings.groups = groups as u32;
    settings.group = group as u32;
    if let Some(mb) = at_least(ROUND_VAR, 1)? {
        settings.round_bytes = mb << 20;
    }
    Ok((settings, Duration::from_secs(interval)))
}

/// [`from_env_with`] over the process's environment.
pub fn from_env() -> Result<(Settings, Duration), ConfigError> {
    from_env_with(|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<(Settings, Duration), ConfigError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_env_with(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_checks() {
        let (s, interval) = env(&[]).unwrap();
        assert_eq!((s.groups, s.group, interval), (1, 0, Duration::from_secs(10)));
        assert_eq!((s.round_bytes, s.row_group_bytes), (1 << 30, 128 << 20));
        let (s, interval) =
            env(&[(GROUPS_VAR, "4"), (GROUP_VAR, "3"), (INTERVAL_VAR, "2"), (ROUND_VAR, "64")]).unwrap();
        assert_eq!((s.groups, s.group, interval, s.round_bytes), (4, 3, Duration::from_secs(2), 64 << 20));
        assert_eq!(env(&[(GROUPS_VAR, "2"), (GROUP_VAR, "2")]), Err(ConfigError::Group { group: 2, groups: 2 }));
        assert_eq!(env(&[(GROUPS_VAR, "0")]), Err(ConfigError::Groups(0)));
        assert_eq!(env(&[(INTERVAL_VAR, "0")]), Err(ConfigError::Interval(0)));
        assert!(matches!(env(&[(GROUP_VAR, "x")]), Err(ConfigError::NotANumber { .. })));
        assert!(matches!(env(&[(MEMORY_VAR, "10")]), Err(ConfigError::TooSmall { .. })));
        // The memory setting bounds the merges run at once.
        let (small, _) = env(&[(MEMORY_VAR, "200")]).unwrap();
        assert_eq!(small.workers, 1);
    }
}

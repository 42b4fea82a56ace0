//! `publish`: publisher rounds on demand, over the data directory or a bucket, until everything
//! committed is visible; and the round that the other commands run after processing.

use std::sync::Arc;

use anyhow::Context;
use processor::config::OutputConfig;
use publisher::{Publisher, RoundReport, Settings};
use sink::store::ObjectStore;

use super::DataDir;
use crate::faults::CrashAfterWrites;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the rounds publish the bucket's commits instead of the data directory's.
    #[command(flatten)]
    output: OutputConfig,
    /// Publisher groups of the deployment (PUBLISHER_GROUPS).
    #[arg(long, env = publisher::config::GROUPS_VAR, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    groups: u32,
    /// The group to run rounds of, from 0 (PUBLISHER_GROUP).
    #[arg(long, env = publisher::config::GROUP_VAR, default_value_t = 0)]
    group: u32,
    /// At most this many rounds (default: until a round finds nothing to publish).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: Option<u64>,
    /// Staged bytes one round merges at most, in MB.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    round_mb: u64,
    /// Fault injection for crash tests: abort the process right before its N+1th store write.
    #[arg(long, hide = true)]
    crash_after_writes: Option<usize>,
}

/// The flag of the commands that publish after processing.
#[derive(clap::Args, Clone)]
pub struct AfterArgs {
    /// Only commit: leave publishing to a publisher (the deployed function, or `orderstream
    /// publish`).
    #[arg(long)]
    pub no_publish: bool,
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    anyhow::ensure!(
        a.group < a.groups,
        "--group {} must be below --groups {} (groups count from 0)",
        a.group,
        a.groups
    );
    let store = a.dir.store(&a.output).await?;
    let store: Arc<dyn ObjectStore> = match a.crash_after_writes {
        Some(n) => Arc::new(CrashAfterWrites::new(store, n)),
        None => store,
    };
    let settings = Settings { groups: a.groups, group: a.group, round_bytes: a.round_mb << 20, ..Settings::default() };
    let publisher = Publisher::new(store.clone(), &a.output.prefix, settings);
    let max = a.rounds.unwrap_or(u64::MAX);
    let mut ran = 0;
    while ran < max {
        let report = publisher
            .round()
            .await
            .with_context(|| format!("publisher group {} of {} in {}", a.group, a.groups, store.describe()))?;
        ran += 1;
        println!("{}", describe(&report));
        if report.round.is_none() || (a.rounds.is_none() && report.left == 0) {
            break;
        }
    }
    Ok(true)
}

/// One line of what a round did.
pub fn describe(r: &RoundReport) -> String {
    let rolled = r.rolled_forward.map(|n| format!(" (finished round {n} first)")).unwrap_or_default();
    let Some(round) = r.round else {
        return format!("nothing to publish{rolled}");
    };
    let mut line = format!(
        "round {round}: {} commits ({} staged files, {} bytes) into {} files ({} rows, {} bytes){rolled}",
        r.commits(),
        r.input_files,
        r.input_bytes,
        r.outputs.len(),
        r.rows(),
        r.bytes()
    );
    if r.missing_files > 0 {
        line += &format!("; {} staged files were gone (their rows are not published)", r.missing_files);
    }
    if r.left > 0 {
        line += &format!("; {} commits left for the next round", r.left);
    }
    for e in &r.shard_errors {
        line += &format!("\n  skipped {e}");
    }
    line
}

/// After a command has committed: rounds until everything is visible (unless `--no-publish`),
/// with one line of what they did. Answers whether they all succeeded.
pub async fn after(store: Arc<dyn ObjectStore>, prefix: &str, args: &AfterArgs) -> bool {
    if args.no_publish {
        return true;
    }
    let publisher = Publisher::new(store, prefix, Settings::default());
    match publisher.drain(1000).await {
        Ok(rounds) => {
            let decided: Vec<&RoundReport> = rounds.iter().filter(|r| r.round.is_some()).collect();
            let files: usize = decided.iter().map(|r| r.outputs.len()).sum();
            let commits: u64 = decided.iter().map(|r| r.commits()).sum();
            let missing: u64 = rounds.iter().map(|r| r.missing_files).sum();
            println!(
                "published: {} rounds, {commits} commits into {files} files{}",
                decided.len(),
                if missing > 0 { format!(" ({missing} staged files were gone)") } else { String::new() }
            );
            rounds.iter().all(|r| r.shard_errors.is_empty())
        }
        Err(e) => {
            eprintln!(
                "error: publishing failed ({e}); what is committed stays committed: run `orderstream publish` to retry"
            );
            false
        }
    }
}

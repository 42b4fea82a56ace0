//! `scale`: one step of the scaler (`orderstream::scaler`) from the command line, as the
//! `scaler` Lambda runs it every minute.

use crate::scaler::{Scaler, Settings};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    settings: Settings,
    /// Decide and print, but make no call.
    #[arg(long)]
    dry_run: bool,
    /// Print the step as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    let scaler = Scaler::from_env(a.settings).await?;
    let step = scaler.step(model::now_ms(), a.dry_run).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&step)?);
        return Ok(true);
    }
    let d = &step.decision;
    let scheduled = d.scheduled.map(|s| format!(", the schedule {s}")).unwrap_or_default();
    let outcome = match (d.call(), step.called) {
        (None, _) => "no call".to_string(),
        (Some(t), true) => format!("UpdateShardCount to {t}"),
        (Some(t), false) if a.dry_run => format!("would call UpdateShardCount to {t} (--dry-run)"),
        (Some(t), false) => format!("UpdateShardCount to {t} waits: the stream is not ACTIVE"),
    };
    println!("{}: {} open shards; the metrics need {}{scheduled}: {outcome}", step.stream, d.current, d.reactive);
    for reason in &d.reasons {
        println!("  - {reason}");
    }
    Ok(true)
}

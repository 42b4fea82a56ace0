//! `orderstream plan` on the producer's own traffic: a daily curve with flash sales over
//! simulated weeks, a held-out final day forecast from the days before it, and the history read
//! back from the datasets the processor wrote.

use std::path::Path;
use std::process::{Command, Output};

use producer::{Config, Faults, Storefront};

const MIDNIGHT: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

fn orderstream(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orderstream")).args(args).current_dir(dir).output().unwrap()
}

/// The storefront's simulated clock from midnight for `days` days at `peak` events a second at
/// 19:00 (flash sales every hour), each record passed to `each` until the clock passes the end.
fn storefront(days: i64, peak: f64, mut each: impl FnMut(&producer::Generated, &[u8])) {
    let mut shop = Storefront::new(Config {
        seed: 7,
        start_ms: MIDNIGHT,
        events_per_second: peak,
        faults: Faults { invalid_rate: 0.0, duplicate_rate: 0.0, late_rate: 0.0 },
        ..Config::default()
    });
    let (end, mut buf) = (MIDNIGHT + days * 86_400_000, Vec::new());
    loop {
        buf.clear();
        let g = shop.next_record(&mut buf);
        if g.event_time_ms >= end {
            return;
        }
        each(&g, &buf);
    }
}

/// Plans the last day of `per_minute` (from MIDNIGHT) from the days before it through the
/// command line; returns the JSON and the shards per hour.
fn plan_held_out_day(per_minute: &[f64], dir: &Path) -> (serde_json::Value, Vec<u64>) {
    let csv: String = std::iter::once("minute,records\n".to_string())
        .chain(per_minute.iter().enumerate().map(|(m, n)| format!("{},{n:.0}\n", MIDNIGHT + m as i64 * 60_000)))
        .collect();
    std::fs::write(dir.join("history.csv"), csv).unwrap();
    let out = orderstream(
        &[
            "plan",
            "--history",
            "history.csv",
            "--hold-out",
            "1",
            "--json",
            "--chart",
            "plan.svg",
            "--schedule",
            "calls.json",
            "--tfvars",
            "schedule.auto.tfvars.json",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shards = v["plan"]["hours"].as_array().unwrap().iter().map(|h| h["shards"].as_u64().unwrap()).collect();
    (v, shards)
}

/// The held-out day's figures, printed, and the bar: at most 15% error per hour, no
/// minute throttled, the plan cheaper than on-demand and than the peak all day.
fn check(name: &str, v: &serde_json::Value, shards: &[u64]) {
    let mape = v["check"]["hourly_mape"].as_f64().unwrap();
    let throttled = v["check"]["throttled_minutes"].as_u64().unwrap();
    let cost = |k: &str| v["costs"][k].as_f64().unwrap();
    let (planned, peak, on_demand) = (cost("planned"), cost("peak_provisioned"), cost("on_demand"));
    println!(
        "{name}: hourly MAPE {:.2}%, {throttled} minutes throttled; the stream for the day as planned ${planned:.2}, provisioned for the peak ${peak:.2}, on-demand ${on_demand:.2}; shards {shards:?}",
        mape * 100.0
    );
    assert!(mape <= 0.15, "{name}: {mape}");
    assert_eq!(throttled, 0, "{name}");
    assert!(planned < peak && planned < on_demand, "{name}: {}", v["costs"]);
    for w in shards.windows(2) {
        assert!(w[1] <= 2 * w[0] && 2 * w[1] >= w[0], "{name}: {shards:?}");
    }
}

#[test]
fn a_held_out_day_is_forecast_within_15_percent_an_hour_and_never_throttled() {
    // Fifteen days at 2 events/s at the peak, counted per minute and scaled to a 10,000/s peak
    // (the shape is the producer's; the shard counts become real ones).
    let mut minutes = vec![0u64; 15 * 1440];
    storefront(15, 2.0, |g, _| minutes[((g.event_time_ms - MIDNIGHT) / 60_000) as usize] += 1);
    let scaled: Vec<f64> = minutes.iter().map(|n| (n * 5000) as f64).collect();
    let dir = tempfile::tempdir().unwrap();
    let (v, shards) = plan_held_out_day(&scaled, dir.path());
    assert_eq!(v["history"]["days"], 14);
    // 12,000 records/s with headroom stage a few MB/s: one publisher group merges them.
    assert_eq!(v["publisher_groups"], 1);
    check("the producer's days", &v, &shards);
    // The partition strategies at the busiest minute: even keys need the planned peak or a
    // shard more; a shard weighted twice the others needs about twice the shards.
    let skew = |name: &str| {
        let s = v["skew"].as_array().unwrap().iter().find(|s| s["strategy"] == name).unwrap().clone();
        s["shards"].as_u64().unwrap()
    };
    let peak = *shards.iter().max().unwrap();
    assert_eq!(skew("round-robin"), peak);
    assert!(skew("random") <= peak + 1 && skew("session") <= peak + 3, "{}", v["skew"]);
    assert!(skew("weighted") > peak * 3 / 2, "{}", v["skew"]);
    let calls: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("calls.json")).unwrap()).unwrap();
    let calls = calls.as_array().unwrap();
    assert!(!calls.is_empty() && calls.len() <= 11, "{calls:?}");
    assert!(calls
        .iter()
        .all(|c| c["scaling_type"] == "UNIFORM_SCALING" && c["at"].as_str().unwrap().starts_with("2026-12-0")));
    // The same calls as the Terraform module's shard_schedule, which the scaler reads.
    let tfvars: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("schedule.auto.tfvars.json")).unwrap()).unwrap();
    let scheduled = orderstream::scaler::parse_schedule(&tfvars["shard_schedule"].to_string()).unwrap();
    assert_eq!(scheduled.len(), calls.len());
    for (s, c) in scheduled.iter().zip(calls) {
        assert_eq!(
            (model::format_millis(s.at_ms), s.target_shard_count as u64),
            (c["at"].as_str().unwrap().to_string(), c["target_shard_count"].as_u64().unwrap())
        );
    }
    let svg = std::fs::read_to_string(dir.path().join("plan.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 3, "forecast, actual and capacity");

    // The producer's days repeat exactly; real ones do not. The same shape with a trend (+1% a
    // day), weekends at 70%, each day's level off by up to 5% and each minute by up to 10%.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut uniform = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let day_noise: Vec<f64> = (0..15).map(|_| 1.0 + 0.05 * uniform()).collect();
    let varied: Vec<f64> = scaled
        .iter()
        .enumerate()
        .map(|(m, n)| {
            let d = m / 1440;
            // 2026-11-23 is a Monday: days 5, 6, 12, 13 are weekends.
            let weekend = if d % 7 >= 5 { 0.7 } else { 1.0 };
            n * (1.0 + 0.01 * d as f64) * weekend * day_noise[d] * (1.0 + 0.1 * uniform())
        })
        .collect();
    let (v, shards) = plan_held_out_day(&varied, dir.path());
    check("with a trend, weekends and noise", &v, &shards);
}

#[test]
fn the_history_is_read_from_the_datasets_the_processor_wrote() {
    // Three days of traffic through the handler into a data directory.
    let dir = tempfile::tempdir().unwrap();
    let (mut ndjson, mut events) = (Vec::new(), 0u64);
    storefront(3, 0.3, |_, data| {
        ndjson.extend_from_slice(data);
        ndjson.push(b'\n');
        events += 1;
    });
    std::fs::write(dir.path().join("events.ndjson"), ndjson).unwrap();
    let out = orderstream(
        &["process", "--ndjson", "events.ndjson", "--arrival", "2026-11-26T00:00:00Z", "--data-dir", "data"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = orderstream(&["plan", "--data-dir", "data", "--json"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["history"]["days"], 3);
    let forecast: f64 =
        v["plan"]["hours"].as_array().unwrap().iter().map(|h| h["mean_rate"].as_f64().unwrap() * 3600.0).sum();
    // The forecast day's records are about a day's of the history (the producer has no trend).
    let per_day = events as f64 / 3.0;
    assert!((forecast / per_day - 1.0).abs() < 0.05, "{forecast} against {per_day}");

    // The table, and one line for what cannot be planned.
    let out = orderstream(&["plan", "--data-dir", "data"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("History: 3 day(s) from 2026-11-23"), "{text}");
    assert!(text.contains("| hour (UTC) | forecast records/s |") && text.contains("UpdateShardCount calls"), "{text}");
    for (args, says) in [
        (vec!["plan", "--data-dir", "nowhere"], "no data directory nowhere"),
        (vec!["plan", "--data-dir", "data", "--hold-out", "2"], "--hold-out 2 leaves 1 day(s) of history"),
        (vec!["plan", "--history", "events.ndjson"], "events.ndjson: line 1"),
        (vec!["plan", "--history", "missing.csv"], "cannot read missing.csv"),
    ] {
        let out = orderstream(&args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says) && !err.contains("panicked"), "{args:?}: {err}");
    }
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = orderstream(&["plan", "--data-dir", "empty"], dir.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the history holds no records"), "{out:?}");
}

/// The history from CloudWatch: two days of a stream's `IncomingRecords` and `IncomingBytes`
/// put per minute in moto_server's CloudWatch (1,000 records/s, 3,000 from 18:00 to 22:00, 300
/// bytes each), read back by `plan --stream`.
#[tokio::test(flavor = "multi_thread")]
async fn the_history_is_read_from_the_streams_cloudwatch_metrics() {
    let moto = testkit::servers::start_moto();
    let cloudwatch = testkit::cloudwatch_client(&moto.endpoint());
    let today = model::now_ms() / 86_400_000 * 86_400_000;
    let rate = |minute: i64| if (18..22).contains(&(minute / 60 % 24)) { 3000.0 } else { 1000.0 };
    let minutes: Vec<(i64, f64)> =
        (0..2 * 1440i64).map(|m| (today - 2 * 86_400_000 + m * 60_000, rate(m) * 60.0)).collect();
    let bytes: Vec<(i64, f64)> = minutes.iter().map(|&(t, n)| (t, n * 300.0)).collect();
    testkit::put_stream_metric(&cloudwatch, "orders", "IncomingRecords", &minutes).await;
    testkit::put_stream_metric(&cloudwatch, "orders", "IncomingBytes", &bytes).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        testkit::aws_command(env!("CARGO_BIN_EXE_orderstream"), &moto.endpoint())
            .arg("plan")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["--stream", "orders", "--history-days", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["history"]["days"], 2, "{}", v["history"]);
    assert!(v["history"]["source"]
        .as_str()
        .unwrap()
        .contains("CloudWatch IncomingRecords of orders, 300 bytes a record"));
    assert_eq!(v["history"]["record_bytes"], 300.0);
    let hours = v["plan"]["hours"].as_array().unwrap();
    for (h, expected) in [(3, 1000.0), (19, 3000.0)] {
        let got = hours[h]["mean_rate"].as_f64().unwrap();
        assert!((got / expected - 1.0).abs() < 0.05, "hour {h}: {got} records/s, not {expected}");
    }
    // 3,000 records/s with 20% headroom: 4 shards at the peak.
    assert_eq!(hours[19]["needed"], 4);

    let out = run(&["--stream", "nothing-here", "--history-days", "3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("CloudWatch has no IncomingRecords of the stream nothing-here"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

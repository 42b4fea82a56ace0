//! What a deployment costs a month (`orderstream cost`), beside Amazon Data Firehose and a
//! Python Lambda on the same stream: pure arithmetic over a day of traffic (a rate per minute),
//! the settings of the Terraform module, AWS list prices ([`Prices`]) and the functions'
//! measured CPU time per record ([`Measured`], from the benchmark). docs/cost.md explains each
//! line and the assumptions.

pub mod inputs;

pub use inputs::{FunctionFigures, Measured, PayloadFigures, Prices};

/// AWS's billing month.
pub const HOURS_PER_MONTH: f64 = 730.0;
pub const DAYS_PER_MONTH: f64 = HOURS_PER_MONTH / 24.0;
const MINUTES_PER_DAY: usize = 1440;
/// AWS prices data in binary gigabytes.
const GB: f64 = 1_073_741_824.0;
const TB: f64 = GB * 1024.0;
/// A provisioned shard takes at most 1,000 records and 1 MiB a second.
pub const SHARD_RECORDS_PER_SECOND: f64 = 1000.0;
pub const SHARD_BYTES_PER_SECOND: f64 = 1_048_576.0;
/// The largest record Kinesis takes.
pub const MAX_RECORD_BYTES: f64 = 1_048_576.0;
/// An on-demand stream's default write limits (its account quota can be raised).
pub const ON_DEMAND_RECORDS_PER_SECOND: f64 = 200_000.0;
pub const ON_DEMAND_BYTES_PER_SECOND: f64 = 200.0 * 1_048_576.0;
/// An on-demand stream starts with this many shards (the event source mapping invokes one
/// function per shard).
const ON_DEMAND_MIN_SHARDS: u32 = 4;
/// Lambda's memory at which a function has one full vCPU; the functions are single-threaded.
const MB_PER_VCPU: f64 = 1769.0;
/// Lambda's limit on an invocation's event (JSON).
const PAYLOAD_LIMIT_BYTES: f64 = 6_291_456.0;
/// Sequential S3 round trips of a processor invocation: the staged files (in parallel), the
/// commit record, `head.json` (docs/exactly-once.md, "Cost per batch").
const S3_ROUND_TRIPS_PER_BATCH: f64 = 3.0;
/// A Lambda Kinesis event's fields per record besides its base64 data (the bench payloads: 852
/// bytes an event record holding 239 bytes of data, 320 in base64; checked by a test).
const LAMBDA_EVENT_FIELDS_BYTES: f64 = 532.0;
/// A KPL aggregate's bytes besides its user records' data: its magic number, MD5 and a
/// partition key table of one key; and per user record, its protobuf framing.
const KPL_AGGREGATE_OVERHEAD_BYTES: f64 = 60.0;
const KPL_USER_RECORD_OVERHEAD_BYTES: f64 = 8.0;
/// What Lambda itself logs per invocation (its START, END and REPORT lines).
const PLATFORM_LOG_BYTES: f64 = 300.0;
/// What the publisher logs per round: its EMF line and a log line.
const PUBLISHER_LOG_BYTES_PER_ROUND: f64 = 1000.0;
/// A publisher merges this many MB of staged Parquet per CPU second (publisher/benches/round.rs,
/// docs/performance.md: 1,082 MB in 9.7 CPU seconds).
pub const PUBLISHER_MB_PER_CPU_SECOND: f64 = 110.0;
/// Firehose closes a file at 128 MiB or 900 s, whichever comes first (its largest buffer).
const FIREHOSE_BUFFER_BYTES: f64 = 128.0 * 1_048_576.0;
const FIREHOSE_BUFFER_SECONDS: f64 = 900.0;
/// The tables of a commit and of a round's output.
const TABLES: f64 = 5.0;
/// The processor writes a checkpoint every this many commits.
const COMMITS_PER_CHECKPOINT: f64 = 256.0;
/// Alarms of the Terraform module: the processor's, and each publisher group's.
const PROCESSOR_ALARMS: f64 = 4.0;
const PUBLISHER_ALARMS_PER_GROUP: f64 = 3.0;

/// Records per second in each minute of a day.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    per_minute: Vec<f64>,
}

impl Demand {
    pub fn flat(rate: f64) -> Demand {
        Demand { per_minute: vec![rate; MINUTES_PER_DAY] }
    }

    /// The producer's day (`producer::daily_level`): `peak` records/s at 19:00 UTC, a quarter of
    /// it at 07:00, and a flash sale (`producer::FLASH_SALE_LEVEL` times the traffic) of
    /// `flash_minutes` starting every `flash_every` minutes from midnight (0: none).
    pub fn daily(peak: f64, flash_every: u32, flash_minutes: u32) -> Demand {
        let per_minute = (0..MINUTES_PER_DAY)
            .map(|m| {
                let level = producer::daily_level((m as f64 + 0.5) * 60_000.0);
                let flash = flash_every > 0 && (m as u32 % flash_every) < flash_minutes;
                peak * level * if flash { producer::FLASH_SALE_LEVEL } else { 1.0 }
            })
            .collect();
        Demand { per_minute }
    }

    pub fn mean(&self) -> f64 {
        self.per_minute.iter().sum::<f64>() / self.per_minute.len() as f64
    }

    pub fn peak(&self) -> f64 {
        self.per_minute.iter().copied().fold(0.0, f64::max)
    }

    pub fn records_per_day(&self) -> f64 {
        self.per_minute.iter().map(|r| r * 60.0).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Architecture {
    Arm64,
    #[value(name = "x86_64")]
    X86_64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamMode {
    /// This many shards, or the fewest that carry the peak minute with the headroom.
    Provisioned(Option<u32>),
    OnDemand,
}

/// A deployment: its traffic and the Terraform module's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub demand: Demand,
    /// Bytes of a record's data.
    pub record_bytes: f64,
    /// User records per Kinesis record (KPL aggregation; 1: none).
    pub kpl_records: f64,
    pub stream: StreamMode,
    /// Capacity over the peak minute when the shard count is derived.
    pub headroom: f64,
    /// The account's shard quota (Kinesis's default in us-east-1 is 500).
    pub max_shards: u32,
    pub retention_hours: f64,
    pub batch_size: f64,
    pub batching_window_s: f64,
    pub memory_mb: f64,
    pub architecture: Architecture,
    pub publish_interval_s: f64,
    pub publisher_groups: u32,
    pub publisher_memory_mb: f64,
    pub publisher_timeout_s: f64,
    /// Days of published data kept in S3.
    pub dataset_days: f64,
    pub queries_per_day: f64,
    /// Days of data one query reads, and the share of the `events` table's bytes it reads (its
    /// columns).
    pub query_days: f64,
    pub query_share: f64,
    /// One S3 request's latency as the function sees it.
    pub s3_latency_ms: f64,
    /// Currencies the shop sells in (a `RevenueMinor` metric each).
    pub currencies: u32,
    /// The Python peer's memory setting (it needs about 250 MB).
    pub peer_memory_mb: f64,
}

/// One priced line: a service, what was counted, and its monthly cost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    pub service: &'static str,
    pub detail: String,
    pub monthly: f64,
}

/// One way to run the stream's analytics, priced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Choice {
    pub name: &'static str,
    pub lines: Vec<Line>,
    /// What it does not do, or where it cannot keep up.
    pub notes: Vec<String>,
}

impl Choice {
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.monthly).sum()
    }

    /// The cost of `service`'s lines.
    pub fn service(&self, service: &str) -> f64 {
        self.lines.iter().filter(|l| l.service == service).map(|l| l.monthly).sum()
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Estimate {
    /// Shards of the stream (an on-demand stream's: about what its traffic needs, at least 4).
    pub shards: u32,
    pub mean_rate: f64,
    pub peak_rate: f64,
    pub records_per_month: f64,
    pub choices: Vec<Choice>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CostError {
    #[error("a record of {0:.0} bytes: Kinesis takes records of 1 to 1,048,576 bytes")]
    RecordSize(f64),
    #[error("KPL aggregates of {records} records of {bytes:.0} bytes are {aggregate:.0} bytes: Kinesis takes records of at most 1,048,576 bytes")]
    AggregateSize { records: f64, bytes: f64, aggregate: f64 },
    #[error("no traffic: the rate is 0 all day")]
    NoTraffic,
    #[error("{shards} shards carry at most {capacity:.0} records/s of {bytes:.0} bytes; the peak minute has {peak:.0}: use --shards {needed} or more, or --on-demand")]
    TooFewShards { shards: u32, capacity: f64, bytes: f64, peak: f64, needed: u32 },
    #[error("the peak minute ({peak:.0} records/s) needs {needed} shards, above the account's quota of {max} (--max-shards; AWS raises it on request)")]
    AboveShardQuota { peak: f64, needed: u32, max: u32 },
    #[error("an on-demand stream takes at most 200,000 records/s and 200 MiB/s by default; the peak minute has {peak:.0} records/s ({mib:.0} MiB/s): use provisioned shards")]
    AboveOnDemand { peak: f64, mib: f64 },
    #[error("{0}")]
    Setting(String),
}

/// The fewest shards that carry `rate` records/s of `bytes` each with `headroom`.
pub fn shards_for(rate: f64, bytes: f64, headroom: f64) -> u32 {
    shards_for_load(rate, rate * bytes, headroom)
}

/// The fewest shards that carry `records` records/s and `bytes` bytes/s with `headroom`.
pub fn shards_for_load(records: f64, bytes: f64, headroom: f64) -> u32 {
    let load = (records / SHARD_RECORDS_PER_SECOND).max(bytes / SHARD_BYTES_PER_SECOND);
    ((load * headroom) - 1e-9).ceil().max(1.0) as u32
}

/// Bytes of a Kinesis record: a user record of `record_bytes`, or a KPL aggregate of
/// `kpl_records` of them.
pub fn kinesis_record_bytes(record_bytes: f64, kpl_records: f64) -> f64 {
    if kpl_records > 1.0 {
        KPL_AGGREGATE_OVERHEAD_BYTES + kpl_records * (record_bytes + KPL_USER_RECORD_OVERHEAD_BYTES)
    } else {
        record_bytes
    }
}

/// Kinesis records per invocation and invocations per second of each of `shards` shards at
/// `rate` user records/s: the event source mapping waits the batching window (and polls a
/// shard once a second) for up to the batch size, within Lambda's 6 MB event.
fn batches(s: &Settings, shards: u32, rate: f64) -> Option<(f64, f64)> {
    let per_shard = rate / s.kpl_records / f64::from(shards);
    if per_shard <= 0.0 {
        return None;
    }
    let event_bytes = base64_len(kinesis_record_bytes(s.record_bytes, s.kpl_records)) + LAMBDA_EVENT_FIELDS_BYTES;
    let cap = (PAYLOAD_LIMIT_BYTES / event_bytes).floor().max(1.0);
    let batch = s.batch_size.min((per_shard * s.batching_window_s.max(1.0)).max(1.0)).min(cap);
    Some((batch, per_shard / batch))
}

/// What a processor costs over a day on `shards` shards: invocations, GB-seconds, log bytes and
/// the largest share of a shard's time it is busy (above 1 it cannot keep up).
struct FunctionDay {
    invocations: f64,
    gb_seconds: f64,
    log_bytes: f64,
    busiest: f64,
    records_per_invocation_at_peak: f64,
}

fn function_day(s: &Settings, shards: u32, us_per_record: f64, memory_mb: f64, log_bytes: f64) -> FunctionDay {
    let share = (memory_mb / MB_PER_VCPU).min(1.0);
    let mut day = FunctionDay {
        invocations: 0.0,
        gb_seconds: 0.0,
        log_bytes: 0.0,
        busiest: 0.0,
        records_per_invocation_at_peak: 0.0,
    };
    let peak = s.demand.peak();
    for &rate in &s.demand.per_minute {
        let Some((batch, per_second)) = batches(s, shards, rate) else { continue };
        let user_records = batch * s.kpl_records;
        let duration = user_records * us_per_record / 1e6 / share + S3_ROUND_TRIPS_PER_BATCH * s.s3_latency_ms / 1000.0;
        let billed = (duration * 1000.0).ceil() / 1000.0;
        let invocations = per_second * 60.0 * f64::from(shards);
        day.invocations += invocations;
        day.gb_seconds += invocations * billed * memory_mb / 1024.0;
        day.log_bytes += invocations * (log_bytes + PLATFORM_LOG_BYTES);
        day.busiest = day.busiest.max(per_second * duration);
        if rate == peak {
            day.records_per_invocation_at_peak = user_records;
        }
    }
    day
}

fn gb_second_price(p: &Prices, a: Architecture) -> f64 {
    match a {
        Architecture::Arm64 => p.lambda.gb_second_arm64,
        Architecture::X86_64 => p.lambda.gb_second_x86_64,
    }
}

fn check(s: &Settings) -> Result<(), CostError> {
    if !(s.record_bytes >= 1.0 && s.record_bytes <= MAX_RECORD_BYTES) {
        return Err(CostError::RecordSize(s.record_bytes));
    }
    let aggregate = kinesis_record_bytes(s.record_bytes, s.kpl_records);
    if aggregate > MAX_RECORD_BYTES {
        return Err(CostError::AggregateSize { records: s.kpl_records, bytes: s.record_bytes, aggregate });
    }
    if s.demand.peak() <= 0.0 {
        return Err(CostError::NoTraffic);
    }
    if s.publish_interval_s > s.publisher_timeout_s {
        return Err(CostError::Setting(format!(
            "a publish interval of {} s is longer than the publisher's timeout ({} s): it would publish once a minute",
            s.publish_interval_s, s.publisher_timeout_s
        )));
    }
    Ok(())
}

/// The monthly cost of the deployment `s` and of the two alternatives on the same stream.
pub fn estimate(
    s: &Settings,
    prices: &Prices,
    payload: &PayloadFigures,
    peer: &FunctionFigures,
) -> Result<Estimate, CostError> {
    check(s)?;
    // The stream sees Kinesis records: the user records, or their KPL aggregates.
    let (peak, bytes) = (s.demand.peak() / s.kpl_records, kinesis_record_bytes(s.record_bytes, s.kpl_records));
    let needed = shards_for(peak, bytes, s.headroom);
    let shards = match s.stream {
        StreamMode::Provisioned(Some(n)) => {
            let capacity = f64::from(n) * SHARD_RECORDS_PER_SECOND.min(SHARD_BYTES_PER_SECOND / bytes);
            if peak > capacity {
                return Err(CostError::TooFewShards {
                    shards: n,
                    capacity,
                    bytes,
                    peak,
                    needed: shards_for(peak, bytes, 1.0),
                });
            }
            n
        }
        StreamMode::Provisioned(None) if needed > s.max_shards => {
            return Err(CostError::AboveShardQuota { peak, needed, max: s.max_shards })
        }
        StreamMode::Provisioned(None) => needed,
        StreamMode::OnDemand => {
            if peak > ON_DEMAND_RECORDS_PER_SECOND || peak * bytes > ON_DEMAND_BYTES_PER_SECOND {
                return Err(CostError::AboveOnDemand { peak, mib: peak * bytes / 1_048_576.0 });
            }
            shards_for(peak, bytes, 1.0).max(ON_DEMAND_MIN_SHARDS)
        }
    };
    let records_day = s.demand.records_per_day();
    let month = |per_day: f64| per_day * DAYS_PER_MONTH;
    let records_month = month(records_day);
    let kinesis_records_month = records_month / s.kpl_records;
    let gb_in_month = kinesis_records_month * bytes / GB;

    // The stream: the same for every choice.
    let k = &prices.kinesis;
    let mut stream = Vec::new();
    let retention_days = s.retention_hours / 24.0;
    let long_term_gb = gb_in_month / DAYS_PER_MONTH * (retention_days - 7.0).max(0.0);
    match s.stream {
        StreamMode::Provisioned(_) => {
            stream.push(Line {
                service: "Kinesis",
                detail: format!("{shards} shards x {HOURS_PER_MONTH} h"),
                monthly: f64::from(shards) * HOURS_PER_MONTH * k.provisioned_shard_hour,
            });
            let units = kinesis_records_month * (bytes / k.put_payload_unit_bytes).ceil();
            stream.push(Line {
                service: "Kinesis",
                detail: format!("{:.0} million PUT payload units", units / 1e6),
                monthly: units / 1e6 * k.provisioned_put_payload_units_per_million,
            });
            if s.retention_hours > 24.0 {
                stream.push(Line {
                    service: "Kinesis",
                    detail: "extended retention (up to 7 days)".into(),
                    monthly: f64::from(shards) * HOURS_PER_MONTH * k.provisioned_extended_retention_shard_hour,
                });
            }
        }
        StreamMode::OnDemand => {
            let billed_gb = kinesis_records_month
                * (bytes / k.on_demand_record_rounding_bytes).ceil()
                * k.on_demand_record_rounding_bytes
                / GB;
            stream.push(Line {
                service: "Kinesis",
                detail: format!(
                    "on-demand: {HOURS_PER_MONTH} stream-hours, {billed_gb:.0} GB in, {gb_in_month:.0} GB read"
                ),
                monthly: HOURS_PER_MONTH * k.on_demand_stream_hour
                    + billed_gb * k.on_demand_ingest_gb
                    + gb_in_month * k.on_demand_retrieval_gb,
            });
            if s.retention_hours > 24.0 {
                let stored = gb_in_month / DAYS_PER_MONTH * (retention_days.min(7.0) - 1.0);
                stream.push(Line {
                    service: "Kinesis",
                    detail: format!("extended retention: {stored:.0} GB kept"),
                    monthly: stored * k.on_demand_extended_retention_gb_month,
                });
            }
        }
    }
    if long_term_gb > 0.0 {
        stream.push(Line {
            service: "Kinesis",
            detail: format!("long-term retention: {long_term_gb:.0} GB kept"),
            monthly: long_term_gb * k.long_term_retention_gb_month,
        });
    }

    let staged_per_record: f64 = payload.staged_bytes_per_record.values().sum();
    let events_per_record = payload.staged_bytes_per_record.get("events").copied().unwrap_or(0.0);
    let athena = athena_line(s, prices, records_day, events_per_record);

    // Ours: the processor, the publisher, their S3 requests and storage, CloudWatch.
    let ours_fn = function_day(
        s,
        shards,
        payload.processor.cpu_ms * 1000.0 / payload.user_records,
        s.memory_mb,
        payload.processor.log_bytes_per_invocation,
    );
    let lambda_line = |name: &str, day: &FunctionDay, memory: f64| Line {
        service: "Lambda processor",
        detail: format!(
            "{name}: {:.1} million invocations, {:.0} records each at the peak, {:.0} GB-s at {memory:.0} MB",
            month(day.invocations) / 1e6,
            day.records_per_invocation_at_peak,
            month(day.gb_seconds)
        ),
        monthly: month(day.gb_seconds) * gb_second_price(prices, s.architecture)
            + month(day.invocations) / 1e6 * prices.lambda.requests_per_million,
    };
    let groups = f64::from(s.publisher_groups);
    let rounds_per_invocation = (s.publisher_timeout_s / s.publish_interval_s).floor().max(1.0);
    let publisher_invocations = groups * HOURS_PER_MONTH * 60.0;
    let staged_mb_per_round_max = peak * staged_per_record * s.publish_interval_s / groups / 1e6;
    let round_s = |mb: f64| mb / (PUBLISHER_MB_PER_CPU_SECOND * (s.publisher_memory_mb / MB_PER_VCPU).min(1.0));
    let mut publisher_gb_s = 0.0;
    let (mut put, mut get) = (0.0, 0.0);
    let shards_per_group = f64::from(shards) / groups;
    for &rate in &s.demand.per_minute {
        // Each group's minute: one invocation running rounds every interval.
        let mb = rate * staged_per_record * s.publish_interval_s / groups / 1e6;
        let duration = (rounds_per_invocation - 1.0) * s.publish_interval_s + round_s(mb);
        publisher_gb_s += groups * duration.min(s.publisher_timeout_s) * s.publisher_memory_mb / 1024.0;
        let commits_per_round = batches(s, shards, rate)
            .map_or(0.0, |(_, per_second)| per_second * s.publish_interval_s * shards_per_group);
        let rounds = groups * 60.0 / s.publish_interval_s;
        // A round that takes commits: outputs PUT and COPY, the round record, head.json, 2 LISTs;
        // reads a head per shard, the commit records and the inputs.
        let round_put = if commits_per_round > 0.0 { 2.0 * TABLES + 4.0 } else { 2.0 };
        let round_get = 1.0 + 2.0 * shards_per_group + commits_per_round * (1.0 + TABLES);
        put += rounds * round_put;
        get += rounds * round_get;
    }
    let batch_put = ours_fn.invocations * (TABLES + 2.0 + 1.0 / COMMITS_PER_CHECKPOINT);
    let publisher_line = Line {
        service: "Lambda publisher",
        detail: format!(
            "{} group(s): an invocation a minute running rounds every {} s, {:.0} GB-s at {:.0} MB",
            s.publisher_groups,
            s.publish_interval_s,
            month(publisher_gb_s),
            s.publisher_memory_mb
        ),
        monthly: month(publisher_gb_s) * gb_second_price(prices, s.architecture)
            + publisher_invocations / 1e6 * prices.lambda.requests_per_million,
    };
    let s3_requests = |put_day: f64, get_day: f64| Line {
        service: "S3 requests",
        detail: format!("{:.1} million PUT/COPY/LIST, {:.1} million GET", month(put_day) / 1e6, month(get_day) / 1e6),
        monthly: month(put_day) / 1000.0 * prices.s3.put_copy_post_list_per_thousand
            + month(get_day) / 1000.0 * prices.s3.get_per_thousand,
    };
    let stored_gb = records_day * staged_per_record * s.dataset_days / GB;
    let storage = |gb: f64, what: &str| Line {
        service: "S3 storage",
        detail: format!("{gb:.0} GB: {what}, {} days", s.dataset_days),
        monthly: gb * prices.s3.standard_gb_month,
    };
    let cloudwatch = |log_day: f64, metrics: f64, alarms: f64| Line {
        service: "CloudWatch",
        detail: format!("{:.1} GB of logs, {metrics:.0} metrics, {alarms:.0} alarms", month(log_day) / GB),
        monthly: month(log_day) / GB * prices.cloudwatch.logs_ingest_gb
            + metrics * prices.cloudwatch.metric_month
            + alarms * prices.cloudwatch.alarm_month,
    };
    let metrics = (processor::metrics::SUMMARY_METRICS.len() + model::ReasonCode::ALL.len()) as f64
        + f64::from(s.currencies)
        + publisher::metrics::ROUND_METRICS.len() as f64 * groups;
    let alarms = PROCESSOR_ALARMS + PUBLISHER_ALARMS_PER_GROUP * groups;
    let publisher_logs = groups * 1440.0 * (rounds_per_invocation * PUBLISHER_LOG_BYTES_PER_ROUND + PLATFORM_LOG_BYTES);
    let round_note = (round_s(staged_mb_per_round_max) > s.publish_interval_s).then(|| {
        format!(
            "a publisher round takes {:.1} s at the peak, more than the interval: add publisher groups",
            round_s(staged_mb_per_round_max)
        )
    });
    // The pipeline with a processor whose figures are `f` and whose day is `day`: everything
    // but the processor is the same, its logs and metrics included.
    let pipeline = |name: &'static str, language: &str, day: &FunctionDay, f: &FunctionFigures, memory: f64| {
        let mut notes: Vec<String> = round_note.iter().cloned().collect();
        if day.busiest > 1.0 {
            notes.push(format!(
                "the processor needs {:.1} s per second of a shard at the peak: it falls behind (more memory, or bigger batches)",
                day.busiest
            ));
        }
        if f.peak_mib > memory {
            notes.push(format!("the processor peaked at {:.0} MiB, above its {memory:.0} MB", f.peak_mib));
        }
        let lines = [
            stream.clone(),
            vec![
                lambda_line(language, day, memory),
                publisher_line.clone(),
                s3_requests(batch_put + put, get),
                storage(stored_gb, "the five tables"),
                athena.clone(),
                cloudwatch(day.log_bytes + publisher_logs, metrics, alarms),
            ],
        ]
        .concat();
        Choice { name, lines, notes }
    };
    let ours = pipeline("orderstream", "Rust", &ours_fn, &payload.processor, s.memory_mb);
    // The same pipeline with the processor written in Python (bench/peer/), logging the same.
    let peer_fn = function_day(
        s,
        shards,
        peer.cpu_ms * 1000.0 / payload.user_records,
        s.peer_memory_mb,
        payload.processor.log_bytes_per_invocation,
    );
    let python = pipeline("Python Lambda", "Python", &peer_fn, peer, s.peer_memory_mb);

    // Amazon Data Firehose reading the stream: records billed in 5 KB steps, converted to
    // Parquet, partitioned by hour; one file per buffer.
    let f = &prices.firehose;
    let billed_gb =
        kinesis_records_month * (bytes / f.ingest_record_rounding_bytes).ceil() * f.ingest_record_rounding_bytes / GB;
    let per_hour_bytes = gb_in_month * GB / HOURS_PER_MONTH;
    let objects =
        HOURS_PER_MONTH * (per_hour_bytes / FIREHOSE_BUFFER_BYTES).ceil().max(3600.0 / FIREHOSE_BUFFER_SECONDS);
    let firehose = Choice {
        name: "Firehose",
        lines: [
            stream,
            vec![
                Line {
                    service: "Firehose",
                    detail: format!(
                        "{billed_gb:.0} GB billed in (records in {:.0}-byte steps); {gb_in_month:.0} GB converted to Parquet and partitioned",
                        f.ingest_record_rounding_bytes
                    ),
                    monthly: billed_gb * f.ingest_gb
                        + gb_in_month * (f.format_conversion_gb + f.dynamic_partitioning_gb)
                        + objects / 1000.0 * f.dynamic_partitioning_objects_per_thousand,
                },
                s3_requests(objects, 0.0),
                storage(records_day * events_per_record * s.dataset_days / GB, "events only"),
                athena,
            ],
        ]
        .concat(),
        notes: vec![
            "one table of the events as they came: no aggregates, no quarantine table with reasons".into(),
            "at least once: a retried record is written twice".into(),
        ],
    };
    Ok(Estimate {
        shards,
        mean_rate: s.demand.mean(),
        peak_rate: s.demand.peak(),
        records_per_month: records_month,
        choices: vec![ours, python, firehose],
    })
}

/// The length of `bytes` bytes in base64.
fn base64_len(bytes: f64) -> f64 {
    (bytes / 3.0).ceil() * 4.0
}

fn athena_line(s: &Settings, prices: &Prices, records_day: f64, events_per_record: f64) -> Line {
    let scanned = (s.query_days * records_day * events_per_record * s.query_share)
        .max(prices.athena.min_mb_per_query * 1_048_576.0);
    let month_tb = s.queries_per_day * DAYS_PER_MONTH * scanned / TB;
    Line {
        service: "Athena",
        detail: format!(
            "{} queries a day, {:.0} MB each ({} day(s), {:.0}% of the events table's bytes)",
            s.queries_per_day,
            scanned / 1_048_576.0,
            s.query_days,
            s.query_share * 100.0
        ),
        monthly: month_tb * prices.athena.tb_scanned,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn figures(cpu_ms: f64) -> FunctionFigures {
        FunctionFigures { cpu_ms, wall_p50_ms: 0.0, peak_mib: 40.0, log_bytes_per_invocation: 700.0 }
    }

    /// 1,000 records of 240 bytes; 10 ms of CPU for the processor (10 µs a
    /// record), 100 ms for the peer.
    fn payload() -> PayloadFigures {
        let staged = [
            ("events", 14.0),
            ("order_items", 1.0),
            ("sales_minute", 0.5),
            ("funnel_minute", 0.5),
            ("quarantine", 1.0),
        ];
        PayloadFigures {
            user_records: 1000.0,
            json_bytes_per_record: 240.0,
            processor: figures(10.0),
            peer: Some(figures(100.0)),
            staged_bytes_per_record: staged.iter().map(|(t, b)| (t.to_string(), *b)).collect::<BTreeMap<_, _>>(),
        }
    }

    fn settings(demand: Demand) -> Settings {
        Settings {
            demand,
            record_bytes: 240.0,
            kpl_records: 1.0,
            stream: StreamMode::Provisioned(None),
            headroom: 1.0,
            max_shards: 500,
            retention_hours: 24.0,
            batch_size: 1000.0,
            batching_window_s: 5.0,
            memory_mb: 1769.0,
            architecture: Architecture::Arm64,
            publish_interval_s: 10.0,
            publisher_groups: 1,
            publisher_memory_mb: 1769.0,
            publisher_timeout_s: 60.0,
            dataset_days: 30.0,
            queries_per_day: 0.0,
            query_days: 1.0,
            query_share: 0.2,
            s3_latency_ms: 0.0,
            currencies: 8,
            peer_memory_mb: 1769.0,
        }
    }

    fn run(s: &Settings) -> Result<Estimate, CostError> {
        let p = payload();
        estimate(s, &Prices::load(None).unwrap(), &p, p.peer.as_ref().unwrap())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn shards_carry_the_records_and_the_bytes_of_the_peak() {
        assert_eq!(shards_for(1000.0, 240.0, 1.0), 1);
        assert_eq!(shards_for(1001.0, 240.0, 1.0), 2);
        assert_eq!(shards_for(1000.0, 240.0, 1.2), 2);
        // 500 records/s of 4,000 bytes are 1.9 MiB/s: the bytes decide.
        assert_eq!(shards_for(500.0, 4000.0, 1.0), 2);
        assert_eq!(shards_for(0.5, 240.0, 1.0), 1);
    }

    #[test]
    fn the_daily_curve_is_the_producers() {
        let flat = Demand::daily(1000.0, 0, 0);
        assert!((flat.mean() - 625.0).abs() < 1.0, "{}", flat.mean());
        assert!((flat.peak() - 1000.0).abs() < 1.0 && flat.per_minute[7 * 60].round() == 250.0);
        // Flash sales: 5 minutes of each hour at 3 times the traffic.
        let sales = Demand::daily(1000.0, 60, 5);
        assert!((sales.peak() - 3000.0).abs() < 3.0, "{}", sales.peak());
        assert!((sales.mean() / flat.mean() - (1.0 + 2.0 * 5.0 / 60.0)).abs() < 0.01);
    }

    #[test]
    fn impossible_inputs_are_refused_with_what_would_do() {
        let mut s = settings(Demand::flat(5000.0));
        s.stream = StreamMode::Provisioned(Some(4));
        let e = run(&s).unwrap_err();
        assert!(matches!(e, CostError::TooFewShards { needed: 5, .. }), "{e}");
        assert!(e.to_string().contains("--shards 5"), "{e}");
        s.stream = StreamMode::Provisioned(None);
        s.demand = Demand::flat(600_000.0);
        assert_eq!(run(&s).unwrap_err(), CostError::AboveShardQuota { peak: 600_000.0, needed: 600, max: 500 });
        s.stream = StreamMode::OnDemand;
        assert!(matches!(run(&s).unwrap_err(), CostError::AboveOnDemand { .. }));
        s.demand = Demand::flat(0.0);
        assert_eq!(run(&s).unwrap_err(), CostError::NoTraffic);
        s.demand = Demand::flat(10.0);
        s.record_bytes = 2_000_000.0;
        assert_eq!(run(&s).unwrap_err(), CostError::RecordSize(2_000_000.0));
    }

    #[test]
    fn the_lines_are_the_prices_times_what_is_counted() {
        // 2,000 records/s all month on 2 shards: each shard 1,000 a second, batches of 1,000.
        let e = run(&settings(Demand::flat(2000.0))).unwrap();
        assert_eq!(e.shards, 2);
        let seconds = HOURS_PER_MONTH * 3600.0;
        assert!(close(e.records_per_month, 2000.0 * seconds));
        let ours = &e.choices[0];
        let p = Prices::load(None).unwrap();
        // Shard hours and one 25 KB PUT payload unit a record.
        let kinesis = 2.0 * HOURS_PER_MONTH * p.kinesis.provisioned_shard_hour
            + e.records_per_month / 1e6 * p.kinesis.provisioned_put_payload_units_per_million;
        assert!(close(ours.service("Kinesis"), kinesis), "{} {kinesis}", ours.service("Kinesis"));
        // Two invocations a second of 1,000 records, 10 ms each at one vCPU (1,769 MB).
        let invocations = 2.0 * seconds;
        let lambda = invocations * 0.010 * 1769.0 / 1024.0 * p.lambda.gb_second_arm64
            + invocations / 1e6 * p.lambda.requests_per_million;
        assert!(close(ours.service("Lambda processor"), lambda), "{} {lambda}", ours.service("Lambda processor"));
        // The peer: 100 ms an invocation, the rest the same.
        let python = &e.choices[1];
        let peer_lambda = invocations * 0.100 * 1769.0 / 1024.0 * p.lambda.gb_second_arm64
            + invocations / 1e6 * p.lambda.requests_per_million;
        assert!(close(python.service("Lambda processor"), peer_lambda));
        assert_eq!(python.service("S3 requests"), ours.service("S3 requests"));
        // Storage: 17 bytes a record, 30 days kept.
        let stored = 2000.0 * 86_400.0 * 17.0 * 30.0 / GB * p.s3.standard_gb_month;
        assert!(close(ours.service("S3 storage"), stored));
        // Firehose bills each 240-byte record's ingestion as 5 KB; conversion and partitioning
        // by the bytes; an object per 128 MiB buffered (1.6 GiB an hour: 13 objects).
        let firehose = &e.choices[2];
        let (billed_gb, gb) = (e.records_per_month * 5120.0 / GB, e.records_per_month * 240.0 / GB);
        let expected = billed_gb * p.firehose.ingest_gb
            + gb * (p.firehose.format_conversion_gb + p.firehose.dynamic_partitioning_gb)
            + HOURS_PER_MONTH * 13.0 / 1000.0 * p.firehose.dynamic_partitioning_objects_per_thousand;
        assert!(close(firehose.service("Firehose"), expected), "{} {expected}", firehose.service("Firehose"));
        assert_eq!(firehose.service("Lambda processor"), 0.0);
        assert!(ours.notes.is_empty(), "{:?}", ours.notes);
    }

    #[test]
    fn small_shards_invoke_once_a_window_and_slow_functions_are_named() {
        // 100 records/s on one shard, a 5 s window: invocations of 500 records, 0.2 a second.
        let mut s = settings(Demand::flat(100.0));
        let e = run(&s).unwrap();
        let invocations = 0.2 * HOURS_PER_MONTH * 3600.0;
        assert!(e.choices[0]
            .lines
            .iter()
            .any(|l| l.detail.contains(&format!("{:.1} million invocations", invocations / 1e6))));
        // At 128 MB the peer gets 7% of a vCPU: 1.4 s of a shard's every second at 1,000/s.
        s.demand = Demand::flat(1000.0);
        s.peer_memory_mb = 128.0;
        let e = run(&s).unwrap();
        assert!(e.choices[1].notes.iter().any(|n| n.contains("falls behind")), "{:?}", e.choices[1].notes);
        assert!(!e.choices[1].notes.iter().any(|n| n.contains("above its 128 MB")));
    }

    #[test]
    fn on_demand_bills_gigabytes_with_records_rounded_to_a_kilobyte() {
        let mut s = settings(Demand::flat(1000.0));
        s.stream = StreamMode::OnDemand;
        let e = run(&s).unwrap();
        assert_eq!(e.shards, 4, "an on-demand stream starts with 4 shards");
        let p = Prices::load(None).unwrap();
        let expected = HOURS_PER_MONTH * p.kinesis.on_demand_stream_hour
            + e.records_per_month * 1024.0 / GB * p.kinesis.on_demand_ingest_gb
            + e.records_per_month * 240.0 / GB * p.kinesis.on_demand_retrieval_gb;
        assert!(close(e.choices[0].service("Kinesis"), expected));
    }

    #[test]
    fn a_price_list_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.json");
        std::fs::write(&path, inputs::DEFAULT_PRICES.replace("\"tb_scanned\": 5.0", "\"tb_scanned\": -5")).unwrap();
        let e = Prices::load(Some(&path)).unwrap_err();
        assert!(e.contains("athena.tb_scanned is -5"), "{e}");
        std::fs::write(&path, "{}").unwrap();
        assert!(Prices::load(Some(&path)).unwrap_err().contains("is not a price list"));
        assert!(Prices::load(Some(&dir.path().join("none.json"))).unwrap_err().contains("cannot read"));
    }

    #[test]
    fn kpl_aggregates_are_the_streams_records() {
        // 10,000 records/s in aggregates of 100: 100 Kinesis records/s of 24,860 bytes, one PUT
        // payload unit each; 2.4 MiB/s need 3 shards.
        let mut s = settings(Demand::flat(10_000.0));
        s.kpl_records = 100.0;
        let e = run(&s).unwrap();
        assert_eq!(e.shards, 3);
        let ours = &e.choices[0];
        let units = ours.lines.iter().find(|l| l.detail.contains("PUT payload units")).unwrap();
        assert!(close(units.monthly, e.records_per_month / 100.0 / 1e6 * 0.014), "{units:?}");
        // A 5 s window gathers 167 aggregates of a shard (16,667 records); 10 s would gather 333,
        // but 6 MB of event hold 186 (33,680 bytes each in base64 with their fields).
        assert!(ours.lines.iter().any(|l| l.detail.contains("16667 records each at the peak")), "{:?}", ours.lines);
        s.batching_window_s = 10.0;
        let e = run(&s).unwrap();
        assert!(e.choices[0].lines.iter().any(|l| l.detail.contains("18600 records each at the peak")));
        s.kpl_records = 5000.0;
        assert!(matches!(run(&s).unwrap_err(), CostError::AggregateSize { .. }));
    }

    #[test]
    fn the_lambda_event_fields_are_the_measured_payloads() {
        let measured: serde_json::Value = serde_json::from_str(inputs::MEASURED).unwrap();
        let p = &measured["payloads"]["storefront"];
        let fields =
            p["event_bytes_per_record"].as_f64().unwrap() - base64_len(p["json_bytes_per_record"].as_f64().unwrap());
        assert!((fields - LAMBDA_EVENT_FIELDS_BYTES).abs() < 0.05 * LAMBDA_EVENT_FIELDS_BYTES, "{fields}");
    }
}

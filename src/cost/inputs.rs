//! What an estimate is computed from besides the settings: AWS list prices (one file per
//! region, each figure with the page it comes from) and the measured figures of the functions
//! (`bench/function.json`, written by `scripts/bench`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The price list `orderstream cost` uses unless given `--prices`.
pub const DEFAULT_PRICES: &str = include_str!("prices-us-east-1.json");
/// The function benchmark's recorded figures (`scripts/bench`).
pub const MEASURED: &str = include_str!("../../bench/function.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub region: String,
    pub currency: String,
    pub as_of: String,
    #[serde(default)]
    pub note: String,
    pub kinesis: KinesisPrices,
    pub lambda: LambdaPrices,
    pub s3: S3Prices,
    pub athena: AthenaPrices,
    pub cloudwatch: CloudWatchPrices,
    pub firehose: FirehosePrices,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisPrices {
    pub source: String,
    pub provisioned_shard_hour: f64,
    pub provisioned_put_payload_units_per_million: f64,
    pub put_payload_unit_bytes: f64,
    pub provisioned_extended_retention_shard_hour: f64,
    pub long_term_retention_gb_month: f64,
    pub on_demand_stream_hour: f64,
    pub on_demand_ingest_gb: f64,
    pub on_demand_record_rounding_bytes: f64,
    pub on_demand_retrieval_gb: f64,
    pub on_demand_extended_retention_gb_month: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaPrices {
    pub source: String,
    pub requests_per_million: f64,
    pub gb_second_arm64: f64,
    pub gb_second_x86_64: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Prices {
    pub source: String,
    pub standard_gb_month: f64,
    pub put_copy_post_list_per_thousand: f64,
    pub get_per_thousand: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AthenaPrices {
    pub source: String,
    pub tb_scanned: f64,
    pub min_mb_per_query: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchPrices {
    pub source: String,
    pub logs_ingest_gb: f64,
    pub metric_month: f64,
    pub alarm_month: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirehosePrices {
    pub source: String,
    pub ingest_gb: f64,
    pub ingest_record_rounding_bytes: f64,
    pub format_conversion_gb: f64,
    pub dynamic_partitioning_gb: f64,
    pub dynamic_partitioning_objects_per_thousand: f64,
}

impl Prices {
    /// Reads a price list: the default one, or a file in its format.
    pub fn load(path: Option<&Path>) -> Result<Prices, String> {
        let (text, name) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
                p.display().to_string(),
            ),
            None => (DEFAULT_PRICES.to_string(), "the built-in price list".to_string()),
        };
        let prices: Prices = serde_json::from_str(&text).map_err(|e| format!("{name} is not a price list: {e}"))?;
        prices.check().map_err(|e| format!("{name}: {e}"))?;
        Ok(prices)
    }

    /// Every price a number of at least 0, every unit size above 0.
    fn check(&self) -> Result<(), String> {
        let k = &self.kinesis;
        let figures = [
            ("kinesis.provisioned_shard_hour", k.provisioned_shard_hour),
            ("kinesis.provisioned_put_payload_units_per_million", k.provisioned_put_payload_units_per_million),
            ("kinesis.provisioned_extended_retention_shard_hour", k.provisioned_extended_retention_shard_hour),
            ("kinesis.long_term_retention_gb_month", k.long_term_retention_gb_month),
            ("kinesis.on_demand_stream_hour", k.on_demand_stream_hour),
            ("kinesis.on_demand_ingest_gb", k.on_demand_ingest_gb),
            ("kinesis.on_demand_retrieval_gb", k.on_demand_retrieval_gb),
            ("kinesis.on_demand_extended_retention_gb_month", k.on_demand_extended_retention_gb_month),
            ("lambda.requests_per_million", self.lambda.requests_per_million),
            ("lambda.gb_second_arm64", self.lambda.gb_second_arm64),
            ("lambda.gb_second_x86_64", self.lambda.gb_second_x86_64),
            ("s3.standard_gb_month", self.s3.standard_gb_month),
            ("s3.put_copy_post_list_per_thousand", self.s3.put_copy_post_list_per_thousand),
            ("s3.get_per_thousand", self.s3.get_per_thousand),
            ("athena.tb_scanned", self.athena.tb_scanned),
            ("athena.min_mb_per_query", self.athena.min_mb_per_query),
            ("cloudwatch.logs_ingest_gb", self.cloudwatch.logs_ingest_gb),
            ("cloudwatch.metric_month", self.cloudwatch.metric_month),
            ("cloudwatch.alarm_month", self.cloudwatch.alarm_month),
            ("firehose.ingest_gb", self.firehose.ingest_gb),
            ("firehose.format_conversion_gb", self.firehose.format_conversion_gb),
            ("firehose.dynamic_partitioning_gb", self.firehose.dynamic_partitioning_gb),
            (
                "firehose.dynamic_partitioning_objects_per_thousand",
                self.firehose.dynamic_partitioning_objects_per_thousand,
            ),
        ];
        if let Some((name, v)) = figures.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return Err(format!("{name} is {v}: a price is a number of at least 0"));
        }
        let units = [
            ("kinesis.put_payload_unit_bytes", k.put_payload_unit_bytes),
            ("kinesis.on_demand_record_rounding_bytes", k.on_demand_record_rounding_bytes),
            ("firehose.ingest_record_rounding_bytes", self.firehose.ingest_record_rounding_bytes),
        ];
        if let Some((name, v)) = units.iter().find(|(_, v)| !(v.is_finite() && *v >= 1.0)) {
            return Err(format!("{name} is {v}: a unit is at least 1 byte"));
        }
        Ok(())
    }
}

/// `bench/function.json`: per payload, the processor's and the Python peer's figures per
/// invocation, and the Parquet bytes staged per record and table.
#[derive(Debug, Clone, Deserialize)]
pub struct Measured {
    pub measured: String,
    pub by: String,
    pub machine: String,
    pub payloads: BTreeMap<String, PayloadFigures>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PayloadFigures {
    pub user_records: f64,
    pub json_bytes_per_record: f64,
    pub processor: FunctionFigures,
    pub peer: Option<FunctionFigures>,
    pub staged_bytes_per_record: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FunctionFigures {
    pub cpu_ms: f64,
    pub wall_p50_ms: f64,
    pub peak_mib: f64,
    pub log_bytes_per_invocation: f64,
}

impl Measured {
    pub fn recorded() -> Measured {
        serde_json::from_str(MEASURED).expect("bench/function.json is the function benchmark's record")
    }

    /// The figures of payload `name`, with the peer's (the estimate compares with it).
    pub fn payload(&self, name: &str) -> Result<(&PayloadFigures, &FunctionFigures), String> {
        let names = || self.payloads.keys().cloned().collect::<Vec<_>>().join(", ");
        let p =
            self.payloads.get(name).ok_or_else(|| format!("no measured payload {name:?} (there are: {})", names()))?;
        let peer = p.peer.as_ref().ok_or_else(|| format!("payload {name:?} was measured without the Python peer"))?;
        Ok((p, peer))
    }
}

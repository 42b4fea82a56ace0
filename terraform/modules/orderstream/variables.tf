variable "name" {
  description = "Name of the stack: prefix of every resource name."
  type        = string
  default     = "orderstream"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name: 2 to 31 lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

# --- Kinesis ---------------------------------------------------------------------------------

variable "stream_mode" {
  description = "ON_DEMAND (scales by itself, billed per GB) or PROVISIONED (shard_count shards)."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.stream_mode)
    error_message = "stream_mode: ON_DEMAND or PROVISIONED."
  }
}

variable "shard_count" {
  description = "Shards of a PROVISIONED stream (each 1 MB/s and 1,000 records/s in)."
  type        = number
  default     = 4
  validation {
    condition     = var.shard_count >= 1
    error_message = "shard_count is at least 1."
  }
}

variable "retention_hours" {
  description = "How long the stream keeps records (24 to 8760 hours): the time to fix a stuck function."
  type        = number
  default     = 24

  validation {
    condition     = var.retention_hours >= 24 && var.retention_hours <= 8760
    error_message = "retention_hours: 24 to 8760."
  }
}

# --- The processor function ---------------------------------------------------------------------

variable "lambda_zip" {
  description = "Path of the processor function's zip (scripts/build-lambda-zip: target/lambda/processor-<arch>.zip)."
  type        = string
}

variable "shard_scaling" {
  description = "Resize the PROVISIONED stream with the scaler function: every minute, the larger of what its last minutes of CloudWatch metrics need (records, bytes, write throttles, iterator age) and what shard_schedule asks for, within scaler_min_shards and scaler_max_shards (docs/cost.md). Terraform then sets shard_count only when it creates the stream. Switching it for an existing stream: move the stream's state first (terraform/README.md)."
  type        = bool
  default     = false
}

variable "scaler_zip" {
  description = "Path of the scaler function's zip (scripts/build-lambda-zip: target/lambda/scaler-<arch>.zip); needed with shard_scaling."
  type        = string
  default     = null
}

variable "scaler_min_shards" {
  description = "The scaler never asks for fewer shards."
  type        = number
  default     = 1
  validation {
    condition     = var.scaler_min_shards >= 1
    error_message = "scaler_min_shards is at least 1."
  }
}

variable "scaler_max_shards" {
  description = "The scaler never asks for more shards (and the Lambda concurrency follows the shards: one invocation per shard)."
  type        = number
  default     = 64
  validation {
    condition     = var.scaler_max_shards >= 1 && var.scaler_max_shards <= 10000
    error_message = "scaler_max_shards is 1 to 10,000."
  }
}

variable "shard_schedule" {
  description = "The planned UpdateShardCount calls the scaler follows (the larger of the schedule and the metrics wins): `orderstream plan --tfvars FILE` writes them. Each entry asks for its count from its time (RFC 3339) on."
  type = list(object({
    at                 = string
    target_shard_count = number
  }))
  default = []
  validation {
    # The function's environment holds 4 KB.
    condition     = length(var.shard_schedule) <= 60
    error_message = "shard_schedule holds at most 60 calls (a week at the planner's most): plan fewer days at a time."
  }
  validation {
    condition     = alltrue([for a in var.shard_schedule : can(formatdate("YYYY", a.at)) && a.target_shard_count >= 1])
    error_message = "Each shard_schedule entry has an RFC 3339 time (2026-12-07T19:45:00Z) and a target_shard_count of at least 1."
  }
}

variable "publisher_zip" {
  description = "Path of the publisher function's zip (scripts/build-lambda-zip: target/lambda/publisher-<arch>.zip)."
  type        = string
}

variable "publisher_groups" {
  description = "Publisher groups: each a function that publishes a fixed share of the shards (by hash of stream and shard id). One merges about 110 MB/s of staged Parquet per vCPU (docs/performance.md); add one per 37 MB/s, about 550,000 records/s of storefront traffic. Change it with the schedules disabled for a round (docs/exactly-once.md)."
  type        = number
  default     = 1
  validation {
    condition     = var.publisher_groups >= 1 && var.publisher_groups <= 64
    error_message = "publisher_groups is 1 to 64."
  }
}

variable "publish_interval_seconds" {
  description = "Seconds between a publisher's rounds: a record is visible at most this plus one batch after it is committed."
  type        = number
  default     = 10
  validation {
    condition     = var.publish_interval_seconds >= 1 && var.publish_interval_seconds <= 60
    error_message = "publish_interval_seconds is 1 to 60."
  }
}

variable "publisher_memory_size" {
  description = "Publisher memory in MB; 1769 buys one full vCPU, which its merges use (PUBLISH_MEMORY_MB is three quarters of it)."
  type        = number
  default     = 1769
  validation {
    condition     = var.publisher_memory_size >= 256 && var.publisher_memory_size <= 10240
    error_message = "publisher_memory_size is 256 to 10240 MB."
  }
}

variable "publisher_timeout" {
  description = "Publisher timeout in seconds: each minute's invocation runs rounds until about one interval before it."
  type        = number
  default     = 60
  validation {
    condition     = var.publisher_timeout >= 10 && var.publisher_timeout <= 900
    error_message = "publisher_timeout is 10 to 900 seconds."
  }
}

variable "publish_lag_alarm_seconds" {
  description = "Alarm when a committed batch has waited longer than this to be published (or when no publisher reports at all)."
  type        = number
  default     = 300
  validation {
    condition     = var.publish_lag_alarm_seconds >= 60
    error_message = "publish_lag_alarm_seconds is at least 60."
  }
}

variable "architecture" {
  description = "arm64 (Graviton, cheaper per ms) or x86_64; the zip must be built for it."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture: arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Function memory in MB (a full 6 MB batch fits in 128; more memory also buys CPU)."
  type        = number
  default     = 512
  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size is 128 to 10240 MB."
  }
}

variable "timeout" {
  description = "Function timeout in seconds."
  type        = number
  default     = 60
  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout is 1 to 900 seconds."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the function (-1: none). The mapping runs one invocation per shard at a time (parallelization factor 1), so the stream's shard count is the most it uses: set it to the shard count with room for splits (on-demand streams add shards as traffic grows: 20 covers a stream that has scaled to 20 shards; beyond that, invocations wait and the iterator age alarm says so)."
  type        = number
  default     = 20
  validation {
    condition     = var.reserved_concurrency >= -1
    error_message = "reserved_concurrency is -1 (no reservation) or more."
  }
}

variable "log_level" {
  description = "AWS_LAMBDA_LOG_LEVEL of the function (error, warn, info, debug, trace)."
  type        = string
  default     = "info"
  validation {
    condition     = contains(["error", "warn", "info", "debug", "trace"], var.log_level)
    error_message = "log_level is one of error, warn, info, debug, trace."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days is one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "analytics_prefix" {
  description = "Key prefix of every dataset in the bucket (ANALYTICS_PREFIX): empty or ending with '/'."
  type        = string
  default     = ""

  # As the functions check it at start (sink::layout::check_prefix): relative path segments.
  validation {
    condition = var.analytics_prefix == "" || (
      can(regex("^[A-Za-z0-9!_.*'()/-]*/$", var.analytics_prefix)) &&
      alltrue([for s in split("/", trimsuffix(var.analytics_prefix, "/")) : !contains(["", ".", ".."], s)])
    )
    error_message = "analytics_prefix: empty, or relative path segments of safe S3 key characters ending with '/' (no leading '/', no '//', no '.' or '..' segment), like \"analytics/\"."
  }
}

# --- Event source mapping ------------------------------------------------------------------------

variable "batch_size" {
  description = "Records per invocation at most (1 to 10000)."
  type        = number
  default     = 1000
  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size is 1 to 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long to gather records before invoking (0 to 300): larger means fewer, bigger files."
  type        = number
  default     = 5
  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds is 0 to 300."
  }
}

variable "parallelization_factor" {
  description = "Concurrent batches per shard. Must be 1: the exactly-once commit protocol keeps one ordered chain of commits per shard (docs/exactly-once.md)."
  type        = number
  default     = 1

  validation {
    condition     = var.parallelization_factor == 1
    error_message = "parallelization_factor must be 1: with more, batches of one shard commit out of order and the processor's per-shard watermark would skip records."
  }
}

variable "starting_position" {
  description = "Where a new mapping starts: TRIM_HORIZON (everything retained) or LATEST."
  type        = string
  default     = "TRIM_HORIZON"

  validation {
    condition     = contains(["TRIM_HORIZON", "LATEST"], var.starting_position)
    error_message = "starting_position: TRIM_HORIZON or LATEST."
  }
}

variable "bisect_batch_on_function_error" {
  description = "Split a failing batch in two before retrying. The processor quarantines bad records instead of failing on them, so there is no poison record to isolate: off by default."
  type        = bool
  default     = false
}

variable "maximum_retry_attempts" {
  description = "Retries of a failing batch before the mapping gives up on it and sends its location to the on-failure queue (replay it with `orderstream replay`); -1 (the default): retry until it succeeds, alarming on iterator age, so that nothing is skipped and the shard stays in order."
  type        = number
  default     = -1
  validation {
    condition     = var.maximum_retry_attempts >= -1 && var.maximum_retry_attempts <= 10000
    error_message = "maximum_retry_attempts is -1 (never give up) or 0 to 10000."
  }
}

variable "maximum_record_age_in_seconds" {
  description = "Records older than this go to the on-failure queue instead of being retried; -1 (the default): no limit (the stream's retention still applies)."
  type        = number
  default     = -1
  validation {
    condition     = var.maximum_record_age_in_seconds == -1 || (var.maximum_record_age_in_seconds >= 60 && var.maximum_record_age_in_seconds <= 604800)
    error_message = "maximum_record_age_in_seconds is -1 (no limit) or 60 to 604800."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long the on-failure queue keeps the records' locations (up to 14 days)."
  type        = number
  default     = 1209600
  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds is 60 to 1209600 (14 days)."
  }
}

# --- Bucket ------------------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the dataset bucket (default: <name>-datasets-<account id>)."
  type        = string
  default     = null
  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name is an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete a bucket that holds data."
  type        = bool
  default     = false
}

variable "quarantine_expiration_days" {
  description = "Days quarantined records are kept (0: forever)."
  type        = number
  default     = 90
  validation {
    condition     = var.quarantine_expiration_days >= 0
    error_message = "quarantine_expiration_days is 0 (forever) or more."
  }
}

variable "staging_expiration_days" {
  description = "Days after which staged files are deleted: orphans of failed attempts, and committed files no publisher has published (the publish-lag alarm fires long before)."
  type        = number
  default     = 7
  validation {
    condition     = var.staging_expiration_days >= 1
    error_message = "staging_expiration_days is at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object's old version is kept (versioning is on)."
  type        = number
  default     = 7
  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days is at least 1."
  }
}

# --- Athena, CloudWatch, ingest ------------------------------------------------------------------

variable "athena_results_expiration_days" {
  description = "Days Athena query results are kept."
  type        = number
  default     = 30
  validation {
    condition     = var.athena_results_expiration_days >= 1
    error_message = "athena_results_expiration_days is at least 1."
  }
}

variable "create_named_queries" {
  description = "Create the Athena named queries (moto cannot delete them: off for emulator runs)."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "More ARNs notified when an alarm fires or clears, besides the alarm topic."
  type        = list(string)
  default     = []
}

variable "alarm_topic_arn" {
  description = "An existing SNS topic for the alarms. When null and create_alarm_topic is true, the stack creates one (output alarm_topic_arn); subscribe your on-call to it."
  type        = string
  default     = null
}

variable "create_alarm_topic" {
  description = "Create an SNS topic (KMS-encrypted) for the alarms when alarm_topic_arn is null."
  type        = bool
  default     = true
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when the oldest record waiting in the stream is older than this (ms): records expire after retention_hours, so this must stay well below it."
  type        = number
  default     = 300000
  validation {
    condition     = var.iterator_age_alarm_ms >= 60000
    error_message = "iterator_age_alarm_ms is at least 60000 (one minute)."
  }
}

variable "failed_records_alarm_minutes" {
  description = "Alarm when the processor has reported failed records for this many minutes in a row (S3 errors, a damaged shard state, an interleaved batch)."
  type        = number
  default     = 15
  validation {
    condition     = var.failed_records_alarm_minutes >= 5 && var.failed_records_alarm_minutes % 5 == 0
    error_message = "failed_records_alarm_minutes is a multiple of 5, at least 5."
  }
}

variable "create_http_ingest" {
  description = "Create the API Gateway REST API that puts events into the stream: POST /events (browsers: browsing events only, public) and POST /orders (servers: any event, IAM-signed)."
  type        = bool
  default     = true
}

variable "http_ingest_throttle" {
  description = "Steady requests per second (and twice as many in bursts) the ingest API's stage accepts (the browser beacon, POST /events)."
  type        = number
  default     = 500
  validation {
    condition     = var.http_ingest_throttle >= 1
    error_message = "http_ingest_throttle is at least 1 request per second."
  }
}

variable "http_orders_throttle" {
  description = "Steady requests per second (and twice as many in bursts) the orders route (POST /orders, IAM-signed) accepts, apart from the browser beacon's."
  type        = number
  default     = 100
  validation {
    condition     = var.http_orders_throttle >= 1
    error_message = "http_orders_throttle is at least 1 request per second."
  }
}

variable "create_waf" {
  description = "Put the ingest API behind a WAF web ACL: a rate limit per client IP and AWS's managed rule groups (common exploits, known bad inputs); about $5 a month plus $0.60 per million requests."
  type        = bool
  default     = true
}

variable "waf_requests_per_ip" {
  description = "Requests a single client IP may make in any 5 minutes before the WAF blocks it (10 to 2000000000); a shopper's browser sends a few a minute."
  type        = number
  default     = 1000
  validation {
    condition     = var.waf_requests_per_ip >= 10 && var.waf_requests_per_ip <= 2000000000
    error_message = "waf_requests_per_ip is 10 to 2000000000."
  }
}

variable "beacon_max_body_bytes" {
  description = "Largest body the WAF lets through to the browser beacon, in bytes (1 to 16384, the most the WAF inspects for API Gateway by default); about 50 events."
  type        = number
  default     = 16384
  validation {
    condition     = var.beacon_max_body_bytes >= 1 && var.beacon_max_body_bytes <= 16384
    error_message = "beacon_max_body_bytes is 1 to 16384."
  }
}

variable "beacon_event_time_window_hours" {
  description = "The browser beacon refuses (400) a request holding an event whose event_time is more than this many hours before or after the request, to the minute (1 to 48): a stranger cannot write into past or future partitions. The orders route is not limited (the processor's contract range applies)."
  type        = number
  default     = 24
  validation {
    condition     = var.beacon_event_time_window_hours >= 1 && var.beacon_event_time_window_hours <= 48 && floor(var.beacon_event_time_window_hours) == var.beacon_event_time_window_hours
    error_message = "beacon_event_time_window_hours is a whole number from 1 to 48."
  }
}

variable "create_api_gateway_account_logging_role" {
  description = "Set the account's API Gateway CloudWatch Logs role (needed once per account and region for the ingest API's logs); off where one is set already."
  type        = bool
  default     = true
}

variable "athena_bytes_scanned_cutoff" {
  description = "Bytes a query of the Athena workgroup may scan before Athena cancels it (10 MB to any size; null: no limit). The default, 100 GB, is about $0.50 a query: a day of events queried whole scans a few hundred MB (docs/performance.md)."
  type        = number
  default     = 100000000000
  validation {
    condition     = var.athena_bytes_scanned_cutoff == null || try(var.athena_bytes_scanned_cutoff >= 10000000, false)
    error_message = "athena_bytes_scanned_cutoff is at least 10000000 (Athena's minimum), or null for no limit."
  }
}

variable "region" {
  description = "The AWS region of the stack."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of the stack: prefix of every resource name."
  type        = string
  default     = "orderstream"
}

variable "lambda_zip" {
  description = "The function's zip: scripts/build-lambda-zip writes target/lambda/processor-<arch>.zip."
  type        = string
  default     = "../../../target/lambda/processor-arm64.zip"
}

variable "publisher_zip" {
  description = "The publisher function's zip: scripts/build-lambda-zip writes target/lambda/publisher-<arch>.zip."
  type        = string
  default     = "../../../target/lambda/publisher-arm64.zip"
}

variable "publisher_groups" {
  description = "Publisher groups (one per 5 MB/s of staged Parquet, about 100,000 records/s)."
  type        = number
  default     = 1
}

variable "architecture" {
  description = "arm64 or x86_64: the zip's architecture."
  type        = string
  default     = "arm64"
}

variable "stream_mode" {
  description = "ON_DEMAND or PROVISIONED."
  type        = string
  default     = "ON_DEMAND"
}

variable "shard_count" {
  description = "Shards of a PROVISIONED stream."
  type        = number
  default     = 4
}

variable "shard_scaling" {
  description = "Resize the PROVISIONED stream with the scaler function (its metrics and shard_schedule)."
  type        = bool
  default     = false
}

variable "scaler_zip" {
  description = "The scaler function's zip: scripts/build-lambda-zip writes target/lambda/scaler-<arch>.zip."
  type        = string
  default     = "../../../target/lambda/scaler-arm64.zip"
}

variable "scaler_max_shards" {
  description = "The most shards the scaler asks for."
  type        = number
  default     = 64
}

variable "shard_schedule" {
  description = "The planned UpdateShardCount calls: `orderstream plan --tfvars schedule.auto.tfvars.json` writes them."
  type = list(object({
    at                 = string
    target_shard_count = number
  }))
  default = []
}

variable "analytics_prefix" {
  description = "Key prefix of every dataset: empty or ending with '/'."
  type        = string
  default     = ""
}

variable "alarm_actions" {
  description = "More ARNs notified by the alarms, besides the created alarm topic."
  type        = list(string)
  default     = []
}

variable "create_http_ingest" {
  description = "Create the API Gateway ingest."
  type        = bool
  default     = true
}

variable "create_named_queries" {
  description = "Create the Athena named queries."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let terraform destroy delete a bucket that holds data."
  type        = bool
  default     = false
}

variable "create_api_gateway_account_logging_role" {
  description = "Set the account's API Gateway CloudWatch Logs role (once per account and region)."
  type        = bool
  default     = true
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "endpoint" {
  description = "One endpoint for every AWS service (an emulator such as moto_server); null for AWS."
  type        = string
  default     = null
}

variable "name" {
  type    = string
  default = "orderstream"
}

variable "lambda_zip" {
  description = "The function's zip: scripts/build-lambda-zip writes target/lambda/processor-<arch>.zip."
  type        = string
  default     = "../../../target/lambda/processor-arm64.zip"
}

variable "architecture" {
  type    = string
  default = "arm64"
}

variable "stream_mode" {
  type    = string
  default = "ON_DEMAND"
}

variable "shard_count" {
  type    = number
  default = 4
}

variable "analytics_prefix" {
  type    = string
  default = ""
}

variable "alarm_actions" {
  type    = list(string)
  default = []
}

variable "enable_http_ingest" {
  type    = bool
  default = true
}

variable "create_named_queries" {
  type    = bool
  default = true
}

variable "force_destroy" {
  type    = bool
  default = false
}

variable "set_api_gateway_account_logging_role" {
  type    = bool
  default = true
}

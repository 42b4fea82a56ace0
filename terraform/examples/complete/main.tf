# The whole stack in one region. For an emulator (moto_server) set `endpoint`; the tests do.

provider "aws" {
  region = var.region

  # Against an emulator: every service at one endpoint, dummy credentials, no retries of
  # unimplemented actions.
  access_key                  = var.endpoint == null ? null : "test"
  secret_key                  = var.endpoint == null ? null : "test"
  skip_credentials_validation = var.endpoint != null
  skip_metadata_api_check     = var.endpoint != null
  skip_requesting_account_id  = false
  s3_use_path_style           = var.endpoint != null
  max_retries                 = var.endpoint == null ? null : 2

  dynamic "endpoints" {
    for_each = var.endpoint == null ? [] : [var.endpoint]
    content {
      apigateway     = endpoints.value
      athena         = endpoints.value
      cloudwatch     = endpoints.value
      cloudwatchlogs = endpoints.value
      glue           = endpoints.value
      iam            = endpoints.value
      kinesis        = endpoints.value
      kms            = endpoints.value
      lambda         = endpoints.value
      s3             = endpoints.value
      sns            = endpoints.value
      sqs            = endpoints.value
      sts            = endpoints.value
    }
  }

  default_tags {
    tags = { "managed-by" = "terraform" }
  }
}

module "orderstream" {
  source = "../../modules/orderstream"

  name                                 = var.name
  lambda_zip                           = var.lambda_zip
  architecture                         = var.architecture
  stream_mode                          = var.stream_mode
  shard_count                          = var.shard_count
  analytics_prefix                     = var.analytics_prefix
  alarm_actions                        = var.alarm_actions
  enable_http_ingest                   = var.enable_http_ingest
  create_named_queries                 = var.create_named_queries
  force_destroy                        = var.force_destroy
  set_api_gateway_account_logging_role = var.set_api_gateway_account_logging_role
}

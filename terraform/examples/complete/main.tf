# The whole stack in one region. Against an emulator, an override file (*_override.tf) points the
# provider at it: tests/terraform.rs writes one for moto_server.

provider "aws" {
  region = var.region

  default_tags {
    tags = { "managed-by" = "terraform" }
  }
}

module "orderstream" {
  source = "../../modules/orderstream"

  name                                    = var.name
  lambda_zip                              = var.lambda_zip
  publisher_zip                           = var.publisher_zip
  publisher_groups                        = var.publisher_groups
  architecture                            = var.architecture
  stream_mode                             = var.stream_mode
  shard_count                             = var.shard_count
  shard_scaling                           = var.shard_scaling
  scaler_zip                              = var.scaler_zip
  scaler_max_shards                       = var.scaler_max_shards
  shard_schedule                          = var.shard_schedule
  analytics_prefix                        = var.analytics_prefix
  alarm_actions                           = var.alarm_actions
  create_http_ingest                      = var.create_http_ingest
  create_named_queries                    = var.create_named_queries
  force_destroy                           = var.force_destroy
  create_api_gateway_account_logging_role = var.create_api_gateway_account_logging_role
}

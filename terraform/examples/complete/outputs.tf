output "stream_name" {
  description = "The Kinesis stream the storefront writes to (producer --stream)."
  value       = module.orderstream.stream_name
}

output "bucket" {
  description = "The dataset bucket (ANALYTICS_BUCKET)."
  value       = module.orderstream.bucket
}

output "function_name" {
  description = "The processor function."
  value       = module.orderstream.function_name
}

output "publisher_function_names" {
  description = "The publisher functions, one per group."
  value       = module.orderstream.publisher_function_names
}

output "glue_database" {
  description = "The Glue database of the five tables."
  value       = module.orderstream.glue_database
}

output "glue_tables" {
  description = "Table name to its columns (name and type), as Athena sees them."
  value       = module.orderstream.glue_tables
}

output "athena_workgroup" {
  description = "The Athena workgroup."
  value       = module.orderstream.athena_workgroup
}

output "on_failure_queue_url" {
  description = "Where batches given up after their retries are recorded (orderstream replay --queue-url)."
  value       = module.orderstream.on_failure_queue_url
}

output "ingest_url" {
  description = "POST browser events here (null when create_http_ingest is false)."
  value       = module.orderstream.ingest_url
}

output "orders_url" {
  description = "POST signed (SigV4) events, orders included, here from your servers."
  value       = module.orderstream.orders_url
}

output "alarm_names" {
  description = "The stack's CloudWatch alarms."
  value       = module.orderstream.alarm_names
}

output "alarm_topic_arn" {
  description = "The SNS topic the alarms notify."
  value       = module.orderstream.alarm_topic_arn
}

output "scaler_function_name" {
  description = "The scaler function (null without shard_scaling)."
  value       = module.orderstream.scaler_function_name
}

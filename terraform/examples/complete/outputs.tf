output "stream_name" {
  value = module.orderstream.stream_name
}

output "bucket" {
  value = module.orderstream.bucket
}

output "function_name" {
  value = module.orderstream.function_name
}

output "glue_database" {
  value = module.orderstream.glue_database
}

output "glue_tables" {
  value = module.orderstream.glue_tables
}

output "athena_workgroup" {
  value = module.orderstream.athena_workgroup
}

output "on_failure_queue_url" {
  value = module.orderstream.on_failure_queue_url
}

output "ingest_url" {
  value = module.orderstream.ingest_url
}

output "alarm_names" {
  value = module.orderstream.alarm_names
}

output "alarm_topic_arn" {
  description = "The SNS topic the alarms notify."
  value       = module.orderstream.alarm_topic_arn
}

output "stream_name" {
  description = "The Kinesis stream the storefront writes to (producer --stream)."
  value       = local.stream.name
}

output "stream_arn" {
  description = "The Kinesis stream's ARN (for producers' IAM policies)."
  value       = local.stream.arn
}

output "bucket" {
  description = "The dataset bucket (ANALYTICS_BUCKET)."
  value       = aws_s3_bucket.datasets.id
}

output "datasets_location" {
  description = "Where the five tables live."
  value       = "s3://${aws_s3_bucket.datasets.id}/${local.prefix}"
}

output "function_name" {
  description = "The processor function (its logs: /aws/lambda/<name>)."
  value       = aws_lambda_function.processor.function_name
}

output "publisher_function_names" {
  description = "The publisher functions, one per group (their logs: /aws/lambda/<name>)."
  value       = [for g in sort(keys(aws_lambda_function.publisher)) : aws_lambda_function.publisher[g].function_name]
}

output "on_failure_queue_url" {
  description = "Where batches given up after their retries are recorded (orderstream replay --queue-url)."
  value       = aws_sqs_queue.on_failure.url
}

output "kms_key_arn" {
  description = "The stack's KMS key (stream, bucket, queue, topic, logs, Athena results)."
  value       = aws_kms_key.this.arn
}

output "glue_database" {
  description = "The Glue database of the five tables (Athena: SELECT ... FROM <database>.events)."
  value       = aws_glue_catalog_database.this.name
}

output "glue_tables" {
  description = "Table name to its columns (name and type), as Athena sees them."
  value       = { for k, t in aws_glue_catalog_table.dataset : k => [for c in t.storage_descriptor[0].columns : { name = c.name, type = c.type }] }
}

output "athena_workgroup" {
  description = "The Athena workgroup (results encrypted, under _athena-results/)."
  value       = aws_athena_workgroup.this.name
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "ingest_url" {
  description = "POST {\"events\": [...]} of browsing events here from a browser (null when create_http_ingest is false)."
  value       = var.create_http_ingest ? "${aws_api_gateway_stage.live[0].invoke_url}/events" : null
}

output "orders_url" {
  description = "POST {\"events\": [...]} of any events, orders included, here from your servers, signed with SigV4 (execute-api:Invoke on it; null when create_http_ingest is false)."
  value       = var.create_http_ingest ? "${aws_api_gateway_stage.live[0].invoke_url}/orders" : null
}

output "alarm_names" {
  description = "The stack's CloudWatch alarms."
  value       = [for a in aws_cloudwatch_metric_alarm.this : a.alarm_name]
}

output "alarm_topic_arn" {
  description = "The SNS topic the alarms notify (null when none was given or created)."
  value       = local.alarm_topic
}

output "scaler_function_name" {
  description = "The scaler function (null without shard_scaling; its log: /aws/lambda/<name>)."
  value       = one(aws_lambda_function.scaler[*].function_name)
}

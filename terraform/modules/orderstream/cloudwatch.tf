# The dashboard and alarms: the processor's EMF metrics (namespace Orderstream, dimension
# Stream), the function's IteratorAge, errors and throttles, the on-failure queue's depth, the
# stream's incoming records, and the publishers' EMF metrics (dimension PublisherGroup).

locals {
  stream_name = local.stream.name
  emf         = "Orderstream"
  widget = {
    type   = "metric"
    width  = 12
    height = 6
  }
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat([
      merge(local.widget, { x = 0, y = 0, properties = {
        title  = "Records in the stream and through the processor"
        region = local.region, stat = "Sum", period = 60, view = "timeSeries"
        metrics = [
          ["AWS/Kinesis", "IncomingRecords", "StreamName", local.stream_name],
          [local.emf, "RecordsIn", "Stream", local.stream_name],
          [local.emf, "Events", "Stream", local.stream_name],
          [local.emf, "Quarantined", "Stream", local.stream_name],
          [local.emf, "Duplicates", "Stream", local.stream_name],
        ]
      } }),
      merge(local.widget, { x = 12, y = 0, properties = {
        title   = "Orders"
        region  = local.region, stat = "Sum", period = 60, view = "timeSeries"
        metrics = [[local.emf, "Orders", "Stream", local.stream_name]]
      } }),
      merge(local.widget, { x = 0, y = 6, properties = {
        title       = "Iterator age (ms): how far behind the processor is"
        region      = local.region, stat = "Maximum", period = 60, view = "timeSeries"
        metrics     = [["AWS/Lambda", "IteratorAge", "FunctionName", aws_lambda_function.processor.function_name]]
        annotations = { horizontal = [{ label = "alarm", value = var.iterator_age_alarm_ms }] }
      } }),
      merge(local.widget, { x = 12, y = 6, properties = {
        title  = "Batch latency (ms)"
        region = local.region, period = 60, view = "timeSeries"
        metrics = [
          [local.emf, "BatchLatency", "Stream", local.stream_name, { stat = "p50" }],
          [local.emf, "BatchLatency", "Stream", local.stream_name, { stat = "p99" }],
          ["AWS/Lambda", "Duration", "FunctionName", aws_lambda_function.processor.function_name, { stat = "Maximum" }],
        ]
      } }),
      merge(local.widget, { x = 0, y = 12, properties = {
        title  = "Errors, throttles, failed records"
        region = local.region, stat = "Sum", period = 60, view = "timeSeries"
        metrics = [
          ["AWS/Lambda", "Errors", "FunctionName", aws_lambda_function.processor.function_name],
          ["AWS/Lambda", "Throttles", "FunctionName", aws_lambda_function.processor.function_name],
          [local.emf, "FailedRecords", "Stream", local.stream_name],
          ["AWS/Kinesis", "WriteProvisionedThroughputExceeded", "StreamName", local.stream_name],
        ]
      } }),
      merge(local.widget, { x = 12, y = 12, properties = {
        title   = "On-failure queue: batches given up"
        region  = local.region, stat = "Maximum", period = 60, view = "timeSeries"
        metrics = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.on_failure.name]]
      } }),
      merge(local.widget, { x = 0, y = 18, width = 24, properties = {
        title   = "Quarantined by reason code"
        region  = local.region, stat = "Sum", period = 300, view = "timeSeries"
        metrics = [[{ expression = "SEARCH('{${local.emf},Stream,ReasonCode} Stream=\"${local.stream_name}\" MetricName=\"QuarantinedByReason\"', 'Sum', 300)", id = "q" }]]
      } }),
      merge(local.widget, { x = 0, y = 24, properties = {
        title       = "Publish lag (ms): the oldest unpublished commit, per publisher group"
        region      = local.region, stat = "Maximum", period = 60, view = "timeSeries"
        metrics     = [[{ expression = "SEARCH('{${local.emf},PublisherGroup} MetricName=\"OldestUnpublishedAge\"', 'Maximum', 60)", id = "lag" }]]
        annotations = { horizontal = [{ label = "alarm", value = var.publish_lag_alarm_seconds * 1000 }] }
      } }),
      merge(local.widget, { x = 12, y = 24, properties = {
        title   = "Files published per minute, per publisher group"
        region  = local.region, stat = "Sum", period = 60, view = "timeSeries"
        metrics = [[{ expression = "SEARCH('{${local.emf},PublisherGroup} MetricName=\"FilesPublished\"', 'Sum', 60)", id = "files" }]]
      } }),
      ], var.shard_scaling ? [
      # The plan against the day: the shards open, what the last minutes needed, what the
      # forecast's schedule asked for (the scaler's line each minute).
      merge(local.widget, { x = 0, y = 30, width = 24, properties = {
        title  = "Shards: open, needed by the load, scheduled by the forecast"
        region = local.region, stat = "Maximum", period = 60, view = "timeSeries"
        metrics = [
          [local.emf, "OpenShards", "Stream", local.stream_name],
          [local.emf, "ShardsNeeded", "Stream", local.stream_name],
          [local.emf, "ShardsScheduled", "Stream", local.stream_name],
          [local.emf, "ScalingCalls", "Stream", local.stream_name, { stat = "Sum", yAxis = "right" }],
        ]
      } }),
    ] : [])
  })
}

locals {
  function_dimensions = { FunctionName = aws_lambda_function.processor.function_name }
  emf_dimensions      = { Stream = local.stream_name }
  destination         = local.prefix == "" ? "--bucket ${aws_s3_bucket.datasets.id}" : "--bucket ${aws_s3_bucket.datasets.id} --prefix ${local.prefix}"
  alarms = {
    "iterator-age" = {
      description = "The processor is more than ${var.iterator_age_alarm_ms} ms behind the stream. Records expire after ${var.retention_hours} hours; by default the mapping retries a failing batch until it succeeds, so nothing is skipped meanwhile. Find why batches fail in the failed-records alarm and the function's error logs."
      namespace   = "AWS/Lambda", metric = "IteratorAge", dimensions = local.function_dimensions
      statistic   = "Maximum", period = 60, evaluation_periods = 5, threshold = var.iterator_age_alarm_ms, missing = "notBreaching"
    }
    "failed-records" = {
      description = "The processor has reported failed records for ${var.failed_records_alarm_minutes} minutes: Lambda retries them and nothing is lost while they stay in the stream. Its error log says why: S3 errors or permissions; a damaged shard state (the log names the object and `orderstream repair --stream STREAM --shard SHARD ${local.destination}`); an interleaved batch (set the mapping's ParallelizationFactor back to 1); a store without conditional writes."
      namespace   = local.emf, metric = "FailedRecords", dimensions = local.emf_dimensions
      statistic   = "Sum", period = 300, evaluation_periods = var.failed_records_alarm_minutes / 5, threshold = 0, missing = "notBreaching"
    }
    "processor-errors" = {
      description = "The processor failed invocations (a timeout, an init error, a crash): Lambda retries them. Look at the function's logs."
      namespace   = "AWS/Lambda", metric = "Errors", dimensions = local.function_dimensions
      statistic   = "Sum", period = 300, evaluation_periods = 1, threshold = 0, missing = "notBreaching"
    }
    "on-failure-messages" = {
      description = "The mapping gave up on batches (maximum_retry_attempts or maximum_record_age_in_seconds): their records are not in the datasets yet. Replay them, exactly once, within the stream's retention of ${var.retention_hours} hours: orderstream replay --queue-url ${aws_sqs_queue.on_failure.url} ${local.destination}"
      namespace   = "AWS/SQS", metric = "ApproximateNumberOfMessagesVisible", dimensions = { QueueName = aws_sqs_queue.on_failure.name }
      statistic   = "Maximum", period = 60, evaluation_periods = 1, threshold = 0, missing = "notBreaching"
    }
  }
  publisher_alarms = merge([for g, p in local.publisher_groups : {
    "publisher-${g}-lag" = {
      description = "Publisher group ${g}: a committed batch has waited more than ${var.publish_lag_alarm_seconds} s to become visible, or the group reports nothing (its schedule is off or it fails before its first round). Its data is safe, staged and committed; it expires with the staging lifecycle rule after ${var.staging_expiration_days} days. Look at ${p.log}."
      namespace   = local.emf, metric = "OldestUnpublishedAge", dimensions = { PublisherGroup = g }
      statistic   = "Maximum", period = 60, evaluation_periods = 3, threshold = var.publish_lag_alarm_seconds * 1000, missing = "breaching"
    }
    "publisher-${g}-errors" = {
      description = "Publisher group ${g} failed rounds: the next round rolls each one forward, so a lone error is harmless; a lasting one (S3 permissions, a damaged round record named in ${p.log}) stops publishing."
      namespace   = "AWS/Lambda", metric = "Errors", dimensions = { FunctionName = p.function }
      statistic   = "Sum", period = 300, evaluation_periods = 2, threshold = 0, missing = "notBreaching"
    }
    "publisher-${g}-missing-files" = {
      description = "Publisher group ${g} found committed staged files gone before their round (expired by the staging lifecycle rule, or erased; ${p.log} names each): their rows are not in the datasets. Restore them from their previous versions (the bucket is versioned), or process their records again from the stream."
      namespace   = local.emf, metric = "MissingFiles", dimensions = { PublisherGroup = g }
      statistic   = "Sum", period = 300, evaluation_periods = 1, threshold = 0, missing = "notBreaching"
    }
  }]...)
  scaler_alarms = { for f in aws_lambda_function.scaler : "scaler-errors" => {
    description = "The scaler failed steps: the stream keeps its count until one succeeds. Its log (${local.scaler_log}) says why: UpdateShardCount refused (Kinesis takes 10 calls a stream in 24 hours, and none while the stream is updating), or CloudWatch or Kinesis permissions."
    namespace   = "AWS/Lambda", metric = "Errors", dimensions = { FunctionName = f.function_name }
    statistic   = "Sum", period = 300, evaluation_periods = 2, threshold = 0, missing = "notBreaching"
  } }
  alarm_topic   = var.alarm_topic_arn != null ? var.alarm_topic_arn : (var.create_alarm_topic ? aws_sns_topic.alarms[0].arn : null)
  alarm_actions = concat(local.alarm_topic == null ? [] : [local.alarm_topic], var.alarm_actions)
}

resource "aws_sns_topic" "alarms" {
  count             = var.alarm_topic_arn == null && var.create_alarm_topic ? 1 : 0
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.this.id
  tags              = local.tags
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each            = merge(local.alarms, local.publisher_alarms, local.scaler_alarms)
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = each.value.missing
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

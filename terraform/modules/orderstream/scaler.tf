# The scaler (shard_scaling): a function invoked every minute that resizes the PROVISIONED stream
# with UpdateShardCount, to the larger of what its last minutes of CloudWatch metrics need and
# what shard_schedule (the planner's forecast) asks for, within scaler_min_shards and
# scaler_max_shards, at most doubling or halving per call (docs/cost.md).

locals {
  scaler_name = "${var.name}-scaler"
  scaler_log  = "/aws/lambda/${local.scaler_name}"
  scaler      = var.shard_scaling ? 1 : 0
}

resource "aws_cloudwatch_log_group" "scaler" {
  count             = local.scaler
  name              = local.scaler_log
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_iam_role" "scaler" {
  count              = local.scaler
  name               = local.scaler_name
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
  tags               = local.tags
}

data "aws_iam_policy_document" "scaler" {
  count = local.scaler

  statement {
    sid       = "ReadAndResizeItsStream"
    actions   = ["kinesis:DescribeStreamSummary", "kinesis:UpdateShardCount"]
    resources = [local.stream.arn]
  }

  # GetMetricData takes no resource-level permission: "*" is the only resource it accepts.
  statement {
    sid       = "ReadTheStreamsMetrics"
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }

  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.scaler[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "scaler" {
  count  = local.scaler
  name   = "scaler"
  role   = aws_iam_role.scaler[0].id
  policy = data.aws_iam_policy_document.scaler[0].json
}

resource "aws_lambda_function" "scaler" {
  # checkov:skip=CKV_AWS_117:The function talks only to Kinesis and CloudWatch over TLS; a VPC would add NAT gateways or endpoints and cold-start time without protecting anything.
  # checkov:skip=CKV_AWS_272:The zip is built from this repository by scripts/build-lambda-zip; code signing needs a signing profile and pipeline that each organisation sets up its own way.
  # checkov:skip=CKV_AWS_50:A step is two reads and at most one call, logged as JSON; X-Ray traces add cost without insight.
  # checkov:skip=CKV_AWS_116:A failed step is not retried (the next minute's step reads the metrics afresh); there is nothing to send to a dead-letter queue.
  count            = local.scaler
  function_name    = local.scaler_name
  description      = "orderstream: resizes ${local.stream.name} to its metrics and its schedule"
  role             = aws_iam_role.scaler[0].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.scaler_zip
  source_code_hash = var.scaler_zip == null ? null : filebase64sha256(var.scaler_zip)
  memory_size      = 128
  timeout          = 30
  # One step at a time: two would read the same count and ask twice.
  reserved_concurrent_executions = 1
  kms_key_arn                    = aws_kms_key.this.arn

  environment {
    variables = {
      STREAM_NAME       = local.stream.name
      SCALER_MIN_SHARDS = tostring(var.scaler_min_shards)
      SCALER_MAX_SHARDS = tostring(var.scaler_max_shards)
      SCALER_SCHEDULE   = jsonencode(var.shard_schedule)
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.scaler[0].name
    application_log_level = upper(var.log_level)
    system_log_level      = "WARN"
  }

  tags       = local.tags
  depends_on = [aws_iam_role_policy.scaler]

  lifecycle {
    precondition {
      condition     = var.scaler_zip != null
      error_message = "shard_scaling needs scaler_zip: build it with scripts/build-lambda-zip (target/lambda/scaler-<arch>.zip)."
    }
  }
}

resource "aws_lambda_function_event_invoke_config" "scaler" {
  count                        = local.scaler
  function_name                = aws_lambda_function.scaler[0].function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 60
}

resource "aws_cloudwatch_event_rule" "scaler" {
  count               = local.scaler
  name                = local.scaler_name
  description         = "Starts a step of the scaler every minute."
  schedule_expression = "rate(1 minute)"
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "scaler" {
  count = local.scaler
  rule  = aws_cloudwatch_event_rule.scaler[0].name
  arn   = aws_lambda_function.scaler[0].arn
}

resource "aws_lambda_permission" "scaler_schedule" {
  count         = local.scaler
  statement_id  = "AllowSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.scaler[0].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.scaler[0].arn
}

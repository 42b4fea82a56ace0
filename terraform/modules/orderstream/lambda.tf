# The processor function, its role, logs, and the event source mapping from the stream.

locals {
  function_name = "${var.name}-processor"
  # What the function writes: its commit state and its staged files. It never writes a visible
  # dataset key (the publisher does); it deletes what it folds, its probes and the staged files
  # of attempts that lost.
  writable_prefixes = ["${local.prefix}_pipeline/", "${local.prefix}_staging/"]
}

resource "aws_sqs_queue" "on_failure" {
  name                      = "${var.name}-processor-on-failure"
  kms_master_key_id         = aws_kms_key.this.arn
  message_retention_seconds = var.dlq_message_retention_seconds
  tags                      = local.tags
}

resource "aws_cloudwatch_log_group" "processor" {
  name              = local.log_groups.processor
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

# Who may assume the stack's roles: Lambda (the processor) and API Gateway (ingest, logs).
data "aws_iam_policy_document" "assume" {
  for_each = toset(["lambda", "apigateway"])
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "processor" {
  name               = local.function_name
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
  tags               = local.tags
}

data "aws_iam_policy_document" "processor" {
  statement {
    sid = "ReadItsStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
      "kinesis:SubscribeToShard",
    ]
    resources = [local.stream.arn]
  }

  # Without ListBucket a GET of a missing key is 403, not 404: the commit protocol probes for
  # the next commit record and must see "not found".
  statement {
    sid       = "ListItsBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.datasets.arn]
  }

  statement {
    sid       = "WriteItsPrefixes"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [for p in local.writable_prefixes : "${aws_s3_bucket.datasets.arn}/${p}*"]
  }

  statement {
    sid       = "UseItsKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    # Only through the services that encrypt for it, never as a bare KMS call.
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com", "sqs.${local.region}.amazonaws.com", "kinesis.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "SendToItsQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.on_failure.arn]
  }

  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.processor.arn}:*"]
  }
}

resource "aws_iam_role_policy" "processor" {
  name   = "processor"
  role   = aws_iam_role.processor.id
  policy = data.aws_iam_policy_document.processor.json
}

resource "aws_lambda_function" "processor" {
  # checkov:skip=CKV_AWS_117:The function talks only to AWS APIs (Kinesis, S3, SQS) over TLS; a VPC would add NAT gateways or endpoints and cold-start time without protecting anything.
  # checkov:skip=CKV_AWS_272:The zip is built from this repository by scripts/build-lambda-zip; code signing needs a signing profile and pipeline that each organisation sets up its own way.
  # checkov:skip=CKV_AWS_50:The function reports through EMF metrics and JSON logs; X-Ray traces of a batch consumer add cost without insight.
  function_name                  = local.function_name
  description                    = "orderstream: Kinesis storefront events to Parquet datasets, exactly once"
  role                           = aws_iam_role.processor.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  filename                       = var.lambda_zip
  source_code_hash               = filebase64sha256(var.lambda_zip)
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn

  environment {
    variables = {
      ANALYTICS_BUCKET = aws_s3_bucket.datasets.id
      ANALYTICS_PREFIX = local.prefix
      # The ledger folds commit records once the stream's retention has put them out of reach.
      STREAM_RETENTION_HOURS = tostring(var.retention_hours)
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.processor.name
    application_log_level = upper(var.log_level)
    system_log_level      = "WARN"
  }

  # For asynchronous invocations only; the stream's failures go to the mapping's destination.
  dead_letter_config {
    target_arn = aws_sqs_queue.on_failure.arn
  }

  tags       = local.tags
  depends_on = [aws_iam_role_policy.processor]
}

resource "aws_lambda_event_source_mapping" "stream" {
  event_source_arn                   = local.stream.arn
  function_name                      = aws_lambda_function.processor.arn
  starting_position                  = var.starting_position
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  parallelization_factor             = var.parallelization_factor
  bisect_batch_on_function_error     = var.bisect_batch_on_function_error
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.maximum_record_age_in_seconds
  # Required by the exactly-once protocol: retries start at the lowest failed record.
  function_response_types = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.on_failure.arn
    }
  }
}

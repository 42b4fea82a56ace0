# The publisher: one function per group, each invoked every minute by its own EventBridge
# schedule, running rounds every publish_interval_seconds until about one interval before its
# timeout. A round merges the processor's committed, staged files of the group's shards into one
# file per table and hour and makes them visible (contract section 2.7).

locals {
  publisher_name = "${var.name}-publisher"
  publisher_groups = { for g in range(var.publisher_groups) : tostring(g) => {
    function = "${local.publisher_name}-${g}"
    log      = "/aws/lambda/${local.publisher_name}-${g}"
  } }
  # What a round reads (the ledgers, staged files), and where it writes: its rounds, its merged
  # files (staged, then visible in the five tables), and each shard's published.json.
  publisher_reads = ["${local.prefix}_pipeline/", "${local.prefix}_staging/", "${local.prefix}_publish/"]
  publisher_writes = concat(
    ["${local.prefix}_publish/", "${local.prefix}_staging/_publish/"],
    [for t in keys(local.tables) : "${local.prefix}${t}/"],
  )
}

resource "aws_cloudwatch_log_group" "publisher" {
  for_each          = local.publisher_groups
  name              = each.value.log
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_iam_role" "publisher" {
  name               = local.publisher_name
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
  tags               = local.tags
}

data "aws_iam_policy_document" "publisher" {
  # Listing finds the shards and a lost head.json's latest round; without it a GET of a missing
  # key is 403, not 404.
  statement {
    sid       = "ListItsBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.datasets.arn]
  }

  statement {
    sid       = "ReadLedgersAndStagedFiles"
    actions   = ["s3:GetObject"]
    resources = [for p in local.publisher_reads : "${aws_s3_bucket.datasets.arn}/${p}*"]
  }

  statement {
    sid       = "WriteRoundsAndDatasets"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [for p in local.publisher_writes : "${aws_s3_bucket.datasets.arn}/${p}*"]
  }

  # The mark that lets a processor fold its ledger: one object per shard, nothing else there.
  statement {
    sid       = "MarkShardsPublished"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.datasets.arn}/${local.prefix}_pipeline/*/published.json"]
  }

  # Published inputs, merged files once copied, and round records past their keep.
  statement {
    sid       = "DeletePublishedStagedFilesAndOldRounds"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.datasets.arn}/${local.prefix}_staging/*", "${aws_s3_bucket.datasets.arn}/${local.prefix}_publish/*"]
  }

  statement {
    sid       = "UseItsKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    # Only through the services that encrypt for it, never as a bare KMS call.
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in aws_cloudwatch_log_group.publisher : "${g.arn}:*"]
  }
}

resource "aws_iam_role_policy" "publisher" {
  name   = "publisher"
  role   = aws_iam_role.publisher.id
  policy = data.aws_iam_policy_document.publisher.json
}

resource "aws_lambda_function" "publisher" {
  # checkov:skip=CKV_AWS_117:The function talks only to S3 over TLS; a VPC would add NAT gateways or endpoints and cold-start time without protecting anything.
  # checkov:skip=CKV_AWS_272:The zip is built from this repository by scripts/build-lambda-zip; code signing needs a signing profile and pipeline that each organisation sets up its own way.
  # checkov:skip=CKV_AWS_50:The function reports through EMF metrics and JSON logs; X-Ray traces of a scheduled job add cost without insight.
  # checkov:skip=CKV_AWS_116:A failed invocation is not retried (the next minute's schedule rolls its round forward); there is nothing to send to a dead-letter queue.
  for_each         = local.publisher_groups
  function_name    = each.value.function
  description      = "orderstream: publisher group ${each.key} of ${var.publisher_groups}, committed files merged into the visible datasets"
  role             = aws_iam_role.publisher.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.publisher_zip
  source_code_hash = filebase64sha256(var.publisher_zip)
  memory_size      = var.publisher_memory_size
  timeout          = var.publisher_timeout
  # One round of a group at a time: a second would only lose the race for each round.
  reserved_concurrent_executions = 1
  kms_key_arn                    = aws_kms_key.this.arn

  environment {
    variables = {
      ANALYTICS_BUCKET         = aws_s3_bucket.datasets.id
      ANALYTICS_PREFIX         = local.prefix
      PUBLISHER_GROUPS         = tostring(var.publisher_groups)
      PUBLISHER_GROUP          = each.key
      PUBLISH_INTERVAL_SECONDS = tostring(var.publish_interval_seconds)
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.publisher[each.key].name
    application_log_level = upper(var.log_level)
    system_log_level      = "WARN"
  }

  tags       = local.tags
  depends_on = [aws_iam_role_policy.publisher]
}

# Asynchronous invocations: no retries (the next minute's invocation does the work) and no
# queueing beyond a minute.
resource "aws_lambda_function_event_invoke_config" "publisher" {
  for_each                     = local.publisher_groups
  function_name                = aws_lambda_function.publisher[each.key].function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 60
}

resource "aws_cloudwatch_event_rule" "publisher" {
  for_each            = local.publisher_groups
  name                = each.value.function
  description         = "Starts publisher group ${each.key}'s rounds every minute."
  schedule_expression = "rate(1 minute)"
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "publisher" {
  for_each = local.publisher_groups
  rule     = aws_cloudwatch_event_rule.publisher[each.key].name
  arn      = aws_lambda_function.publisher[each.key].arn
}

resource "aws_lambda_permission" "publisher_schedule" {
  for_each      = local.publisher_groups
  statement_id  = "AllowSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.publisher[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.publisher[each.key].arn
}

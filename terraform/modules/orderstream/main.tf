data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  bucket    = coalesce(var.bucket_name, "${var.name}-datasets-${local.account}")
  prefix    = var.analytics_prefix
  tags      = merge({ "app" = "orderstream", "stack" = var.name }, var.tags)
  # The log groups the stack's key encrypts: named here once, for them and for the key policy.
  log_groups = merge(
    {
      processor = "/aws/lambda/${local.function_name}"
      ingest    = "/aws/apigateway/${var.name}-ingest"
      waf       = "aws-waf-logs-${var.name}-ingest"
    },
    { for g, p in local.publisher_groups : "publisher-${g}" => p.log },
  )
}

# One customer-managed key for the stream, the bucket, the queue, the logs and Athena's results.
resource "aws_kms_key" "this" {
  description             = "${var.name}: Kinesis stream, datasets, on-failure queue, logs, Athena results"
  deletion_window_in_days = 30
  enable_key_rotation     = true
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_111:A key policy's "*" resource is the key itself; the account statement is what lets IAM policies grant use of the key at all.
  # checkov:skip=CKV_AWS_356:A key policy's "*" resource is the key itself (no narrower resource exists in a key policy).
  # checkov:skip=CKV_AWS_109:The account (root) must administer its key, or the key becomes unmanageable; IAM policies narrow who may.
  # The account administers the key; IAM policies grant each role its use of it.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  # CloudWatch alarms publish to the alarm topic, which the key encrypts.
  statement {
    sid       = "AlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }

  # CloudWatch Logs encrypts the stack's log groups, and only those.
  statement {
    sid       = "LogsEncryptTheStackLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [for name in values(local.log_groups) : "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:${name}"]
    }
  }
}

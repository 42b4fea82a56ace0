# The dataset bucket: the five tables under <prefix><table>/dt=.../hr=.../, the processor's commit
# state under <prefix>_pipeline/, staged files under <prefix>_staging/, and Athena's results
# under _athena-results/.
resource "aws_s3_bucket" "datasets" {
  # checkov:skip=CKV_AWS_18:Access logs need a second bucket and a log pipeline of their own; CloudTrail data events are the recommended audit trail for this bucket.
  # checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; versioning protects against deletes, and each organisation chooses its own disaster-recovery region.
  # checkov:skip=CKV2_AWS_62:Nothing consumes object events: Athena reads the tables through partition projection.
  bucket        = local.bucket
  force_destroy = var.force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_ownership_controls" "datasets" {
  bucket = aws_s3_bucket.datasets.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "datasets" {
  bucket                  = aws_s3_bucket.datasets.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Versioning: on. Data files are written once (the processor never overwrites a visible key), so
# versions only accumulate for deleted staging objects and replaced head.json records; they
# expire after noncurrent_version_expiration_days. In exchange an accidental delete or overwrite
# of a dataset (by a person or a tool) can be undone.
resource "aws_s3_bucket_versioning" "datasets" {
  bucket = aws_s3_bucket.datasets.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "datasets" {
  bucket = aws_s3_bucket.datasets.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "datasets" {
  bucket = aws_s3_bucket.datasets.id

  rule {
    id     = "staging"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}_staging/"
    }
    expiration {
      days = var.staging_expiration_days
    }
  }

  # A publisher killed during a multipart upload of a merged file leaves its parts behind.
  rule {
    id     = "incomplete-uploads"
    status = "Enabled"
    filter {
      prefix = local.prefix
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "quarantine"
    status = var.quarantine_expiration_days > 0 ? "Enabled" : "Disabled"
    filter {
      prefix = "${local.prefix}quarantine/"
    }
    expiration {
      days = max(var.quarantine_expiration_days, 1)
    }
  }

  rule {
    id     = "athena-results"
    status = "Enabled"
    filter {
      prefix = "_athena-results/"
    }
    expiration {
      days = var.athena_results_expiration_days
    }
  }

  # The ledger replaces head.json at every commit and deletes folded commit records: their old
  # versions go after a day (long enough to restore a damaged object, see docs/exactly-once.md).
  rule {
    id     = "ledger-old-versions"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}_pipeline/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  rule {
    id     = "old-versions-and-uploads"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    expiration {
      expired_object_delete_marker = true
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.datasets]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.datasets.arn, "${aws_s3_bucket.datasets.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "datasets" {
  bucket     = aws_s3_bucket.datasets.id
  policy     = data.aws_iam_policy_document.bucket.json
  depends_on = [aws_s3_bucket_public_access_block.datasets]
}

# The stream: `this` as shard_count (or on-demand) says, or `scaled` when the scaler function
# sizes it (shard_scaling), whose shard count Terraform sets only when it creates the stream. One
# of the two exists; switching an existing stack from one to the other, move the state first
# (terraform/README.md), or Terraform replaces the stream and its records.

locals {
  stream = one(concat(aws_kinesis_stream.this, aws_kinesis_stream.scaled))
}

resource "aws_kinesis_stream" "this" {
  count            = var.shard_scaling ? 0 : 1
  name             = "${var.name}-events"
  shard_count      = var.stream_mode == "PROVISIONED" ? var.shard_count : null
  retention_period = var.retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.this.arn

  stream_mode_details {
    stream_mode = var.stream_mode
  }

  tags = local.tags
}

moved {
  from = aws_kinesis_stream.this
  to   = aws_kinesis_stream.this[0]
}

resource "aws_kinesis_stream" "scaled" {
  count            = var.shard_scaling ? 1 : 0
  name             = "${var.name}-events"
  shard_count      = var.shard_count
  retention_period = var.retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.this.arn

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }

  tags = local.tags

  lifecycle {
    # The scaler's UpdateShardCount calls change it; a plan must not undo them.
    ignore_changes = [shard_count]
    precondition {
      condition     = var.stream_mode == "PROVISIONED"
      error_message = "shard_scaling resizes a PROVISIONED stream: set stream_mode = \"PROVISIONED\" (an ON_DEMAND stream scales by itself)."
    }
  }
}

resource "aws_kinesis_stream" "this" {
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

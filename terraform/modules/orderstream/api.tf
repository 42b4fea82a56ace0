# HTTP ingest: POST /events with {"events": [ {...storefront event...}, ... ]} (up to 500) puts
# each event into the stream (PutRecords through put_records.vtl: partition key from the
# session_id, or the request id for an event without one; the processor quarantines invalid
# events, nothing is refused here), with no server: API Gateway calls Kinesis directly.
# Browsers may call it from any origin (CORS).

locals {
  api_count = var.create_http_ingest ? 1 : 0
  cors = {
    "method.response.header.Access-Control-Allow-Origin"  = "'*'"
    "method.response.header.Access-Control-Allow-Headers" = "'Content-Type'"
    "method.response.header.Access-Control-Allow-Methods" = "'OPTIONS,POST'"
  }
  put_records_template = templatefile("${path.module}/put_records.vtl", { stream_name = aws_kinesis_stream.this.name })
}

resource "aws_iam_role" "ingest" {
  count              = local.api_count
  name               = "${var.name}-ingest"
  assume_role_policy = data.aws_iam_policy_document.assume["apigateway"].json
  tags               = local.tags
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid       = "PutIntoItsStream"
    actions   = ["kinesis:PutRecords"]
    resources = [aws_kinesis_stream.this.arn]
  }
  statement {
    sid       = "EncryptWithItsKey"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    # Only through the services that encrypt for it, never as a bare KMS call.
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["kinesis.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "ingest" {
  count  = local.api_count
  name   = "put-records"
  role   = aws_iam_role.ingest[0].id
  policy = data.aws_iam_policy_document.ingest.json
}

resource "aws_api_gateway_rest_api" "ingest" {
  count       = local.api_count
  name        = "${var.name}-ingest"
  description = "Storefront events from browsers into ${aws_kinesis_stream.this.name}"
  endpoint_configuration {
    types = ["REGIONAL"]
  }
  lifecycle {
    create_before_destroy = true
  }
  tags = local.tags
}

resource "aws_api_gateway_resource" "events" {
  count       = local.api_count
  rest_api_id = aws_api_gateway_rest_api.ingest[0].id
  parent_id   = aws_api_gateway_rest_api.ingest[0].root_resource_id
  path_part   = "events"
}

resource "aws_api_gateway_request_validator" "body" {
  count                 = local.api_count
  rest_api_id           = aws_api_gateway_rest_api.ingest[0].id
  name                  = "body"
  validate_request_body = true
}

resource "aws_api_gateway_model" "events" {
  count        = local.api_count
  rest_api_id  = aws_api_gateway_rest_api.ingest[0].id
  name         = "Events"
  content_type = "application/json"
  # The envelope only: each event is validated by the processor, and a bad one is quarantined
  # rather than refused, so that nothing a browser sent is lost.
  schema = jsonencode({
    "$schema" = "http://json-schema.org/draft-04/schema#"
    type      = "object"
    required  = ["events"]
    properties = {
      events = { type = "array", minItems = 1, maxItems = 500, items = { type = "object" } }
    }
  })
}

resource "aws_api_gateway_method" "post" {
  # checkov:skip=CKV_AWS_59:A public ingest endpoint for browsers by design (like an analytics beacon); it is throttled by the stage, validates the envelope, and can only append to the stream.
  # checkov:skip=CKV2_AWS_53:The request body is validated (aws_api_gateway_request_validator.body); checkov does not follow the validator reference.
  count                = local.api_count
  rest_api_id          = aws_api_gateway_rest_api.ingest[0].id
  resource_id          = aws_api_gateway_resource.events[0].id
  http_method          = "POST"
  authorization        = "NONE"
  request_validator_id = aws_api_gateway_request_validator.body[0].id
  request_models       = { "application/json" = aws_api_gateway_model.events[0].name }
}

resource "aws_api_gateway_integration" "put_records" {
  count                   = local.api_count
  rest_api_id             = aws_api_gateway_rest_api.ingest[0].id
  resource_id             = aws_api_gateway_resource.events[0].id
  http_method             = aws_api_gateway_method.post[0].http_method
  type                    = "AWS"
  integration_http_method = "POST"
  uri                     = "arn:${local.partition}:apigateway:${local.region}:kinesis:action/PutRecords"
  credentials             = aws_iam_role.ingest[0].arn
  passthrough_behavior    = "NEVER"
  request_parameters = {
    "integration.request.header.Content-Type" = "'application/x-amz-json-1.1'"
  }
  request_templates = { "application/json" = local.put_records_template }
}

resource "aws_api_gateway_method" "options" {
  # checkov:skip=CKV_AWS_59:CORS preflight: browsers send it without credentials.
  # checkov:skip=CKV2_AWS_53:A preflight has no body to validate.
  count         = local.api_count
  rest_api_id   = aws_api_gateway_rest_api.ingest[0].id
  resource_id   = aws_api_gateway_resource.events[0].id
  http_method   = "OPTIONS"
  authorization = "NONE"
}

resource "aws_api_gateway_integration" "options" {
  count             = local.api_count
  rest_api_id       = aws_api_gateway_rest_api.ingest[0].id
  resource_id       = aws_api_gateway_resource.events[0].id
  http_method       = aws_api_gateway_method.options[0].http_method
  type              = "MOCK"
  request_templates = { "application/json" = "{\"statusCode\": 200}" }
}

# The 200 answer of both methods, with the CORS headers; POST passes PutRecords' answer on (it
# says, per record, which were throttled: the page retries those).
locals {
  ingest_answers = var.create_http_ingest ? {
    POST    = { "application/json" = "$input.json('$')" }
    OPTIONS = {}
  } : {}
}

resource "aws_api_gateway_method_response" "ok" {
  for_each            = local.ingest_answers
  rest_api_id         = aws_api_gateway_rest_api.ingest[0].id
  resource_id         = aws_api_gateway_resource.events[0].id
  http_method         = each.key
  status_code         = "200"
  response_parameters = { for k, _ in local.cors : k => true }
  depends_on          = [aws_api_gateway_method.post, aws_api_gateway_method.options]
}

resource "aws_api_gateway_integration_response" "ok" {
  for_each            = local.ingest_answers
  rest_api_id         = aws_api_gateway_rest_api.ingest[0].id
  resource_id         = aws_api_gateway_resource.events[0].id
  http_method         = each.key
  status_code         = aws_api_gateway_method_response.ok[each.key].status_code
  response_parameters = local.cors
  response_templates  = each.value
  depends_on          = [aws_api_gateway_integration.put_records, aws_api_gateway_integration.options]
}

resource "aws_api_gateway_deployment" "ingest" {
  count       = local.api_count
  rest_api_id = aws_api_gateway_rest_api.ingest[0].id
  triggers = {
    redeploy = sha1(jsonencode([
      aws_api_gateway_integration.put_records[0].request_templates,
      aws_api_gateway_model.events[0].schema,
      aws_api_gateway_integration_response.ok["POST"].response_parameters,
      aws_api_gateway_integration.options[0].id,
    ]))
  }
  lifecycle {
    create_before_destroy = true
  }
  depends_on = [aws_api_gateway_integration_response.ok]
}

resource "aws_cloudwatch_log_group" "ingest" {
  count             = local.api_count
  name              = local.log_groups.ingest
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_api_gateway_stage" "live" {
  # checkov:skip=CKV_AWS_120:Responses are per request (PutRecords results); nothing to cache.
  # checkov:skip=CKV2_AWS_29:A WAF web ACL is a per-organisation choice (and cost); the stage throttles requests and the body is validated.
  # checkov:skip=CKV2_AWS_51:Browsers cannot present client certificates.
  # checkov:skip=CKV_AWS_73:X-Ray traces of a pass-through to Kinesis add cost without insight; access logs record each request.
  count                = local.api_count
  rest_api_id          = aws_api_gateway_rest_api.ingest[0].id
  deployment_id        = aws_api_gateway_deployment.ingest[0].id
  stage_name           = "live"
  xray_tracing_enabled = false
  depends_on           = [aws_api_gateway_account.this]
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.ingest[0].arn
    format = jsonencode({
      requestId = "$context.requestId", ip = "$context.identity.sourceIp", status = "$context.status",
      latency   = "$context.responseLatency", integrationStatus = "$context.integration.status"
    })
  }
  tags = local.tags
}

resource "aws_api_gateway_method_settings" "all" {
  # checkov:skip=CKV_AWS_225:Nothing to cache (see the stage).
  count       = local.api_count
  rest_api_id = aws_api_gateway_rest_api.ingest[0].id
  stage_name  = aws_api_gateway_stage.live[0].stage_name
  method_path = "*/*"
  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    throttling_rate_limit  = var.http_ingest_throttle
    throttling_burst_limit = 2 * var.http_ingest_throttle
  }
}

# API Gateway writes access and error logs through one role per account and region. Turn this
# off where the account already has one (it is an account-wide setting).
resource "aws_iam_role" "apigateway_logs" {
  count              = var.create_http_ingest && var.create_api_gateway_account_logging_role ? 1 : 0
  name               = "${var.name}-apigateway-logs"
  assume_role_policy = data.aws_iam_policy_document.assume["apigateway"].json
  tags               = local.tags
}

# What AWS's managed AmazonAPIGatewayPushToCloudWatchLogs allows, narrowed from "*" to this
# account's log groups in this region (the role is account-wide: any API's logs use it).
data "aws_iam_policy_document" "apigateway_logs" {
  statement {
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DescribeLogGroups",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
      "logs:GetLogEvents",
      "logs:FilterLogEvents",
    ]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*"]
  }
}

resource "aws_iam_role_policy" "apigateway_logs" {
  count  = length(aws_iam_role.apigateway_logs)
  name   = "push-to-cloudwatch-logs"
  role   = aws_iam_role.apigateway_logs[0].id
  policy = data.aws_iam_policy_document.apigateway_logs.json
}

resource "aws_api_gateway_account" "this" {
  count               = length(aws_iam_role.apigateway_logs)
  cloudwatch_role_arn = aws_iam_role.apigateway_logs[0].arn
  depends_on          = [aws_iam_role_policy.apigateway_logs]
}

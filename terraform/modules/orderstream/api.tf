# HTTP ingest, two routes with no server behind them (API Gateway calls Kinesis directly; each
# event one PutRecords record through put_records.vtl, keyed by its session_id):
#
# - POST /events, the browser beacon: public (a page cannot hold a secret) and callable from any
#   origin (CORS), so it takes browsing events only: an order_placed, or any event type not a
#   browsing one, is refused with 400 by the body model before it reaches the stream, and a
#   request with an event_time more than beacon_event_time_window_hours from the request is
#   refused with 400 by the mapping template;
# - POST /orders, the server route: IAM-signed requests only (SigV4), any event type, with a
#   throttle of its own.
#
# Both sit behind a WAF web ACL (a rate limit per client IP and AWS's managed rule groups) and a
# stage throttle; the processor still validates every event (contract reason codes). Errors reach
# the caller as errors: Kinesis's 4xx as 400, its 5xx as 502, and API Gateway's own 4xx/5xx
# (429 when throttled) with the CORS headers so that a page can read them and back off.

locals {
  api_count = var.create_http_ingest ? 1 : 0
  waf_count = var.create_http_ingest && var.create_waf ? 1 : 0
  # What a browser may send: everything but an order.
  browsing_events = ["page_view", "product_view", "add_to_cart", "remove_from_cart", "checkout_started"]
  cors = {
    "method.response.header.Access-Control-Allow-Origin"  = "'*'"
    "method.response.header.Access-Control-Allow-Headers" = "'Content-Type'"
    "method.response.header.Access-Control-Allow-Methods" = "'OPTIONS,POST'"
  }
  # The mapping template per route: the beacon's refuses event times more than
  # beacon_event_time_window_hours from the request; the orders route's checks none (a server
  # may send late events; the processor's contract range applies).
  put_records_templates = { for route, window in { events = var.beacon_event_time_window_hours * 60, orders = 0 } : route => templatefile("${path.module}/put_records.vtl", {
    stream_name               = local.stream.name
    event_time_window_minutes = window
  }) }
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
    resources = [local.stream.arn]
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
  description = "Storefront events from browsers into ${local.stream.name}"
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

resource "aws_api_gateway_resource" "orders" {
  count       = local.api_count
  rest_api_id = aws_api_gateway_rest_api.ingest[0].id
  parent_id   = aws_api_gateway_rest_api.ingest[0].root_resource_id
  path_part   = "orders"
}

resource "aws_api_gateway_request_validator" "body" {
  count                 = local.api_count
  rest_api_id           = aws_api_gateway_rest_api.ingest[0].id
  name                  = "body"
  validate_request_body = true
}

# The envelope, and for the beacon the event type: each event is validated by the processor, and
# a bad one is quarantined rather than refused, so that nothing a browser sent is lost; but an
# order never comes from a browser.
resource "aws_api_gateway_model" "events" {
  # Item schemas as JSON text: a map's values must share one type.
  for_each = { for k, v in {
    Events = jsonencode({ type = "object" })
    BrowserEvents = jsonencode({
      type       = "object"
      required   = ["event_type"]
      properties = { event_type = { enum = local.browsing_events } }
    })
  } : k => v if var.create_http_ingest }
  rest_api_id  = aws_api_gateway_rest_api.ingest[0].id
  name         = each.key
  content_type = "application/json"
  schema = jsonencode({
    "$schema"  = "http://json-schema.org/draft-04/schema#"
    type       = "object"
    required   = ["events"]
    properties = { events = { type = "array", minItems = 1, maxItems = 500, items = jsondecode(each.value) } }
  })
}

locals {
  # The two POST routes' resources.
  ingest_routes = var.create_http_ingest ? {
    events = { resource = aws_api_gateway_resource.events[0].id }
    orders = { resource = aws_api_gateway_resource.orders[0].id }
  } : {}
}

# The browser beacon: public, browsing events only.
resource "aws_api_gateway_method" "beacon" {
  # checkov:skip=CKV_AWS_59:The browser beacon is public by design (a page cannot hold a secret): its body model takes browsing events only (orders are refused with 400), behind the WAF's per-IP rate rule and the stage throttle, and it can only append to the stream. Orders go to /orders, which requires IAM.
  # checkov:skip=CKV2_AWS_53:The request body is validated (aws_api_gateway_request_validator.body); checkov does not follow the validator reference.
  count                = local.api_count
  rest_api_id          = aws_api_gateway_rest_api.ingest[0].id
  resource_id          = aws_api_gateway_resource.events[0].id
  http_method          = "POST"
  authorization        = "NONE"
  request_validator_id = aws_api_gateway_request_validator.body[0].id
  request_models       = { "application/json" = aws_api_gateway_model.events["BrowserEvents"].name }
}

# The server route: SigV4-signed requests of principals allowed execute-api:Invoke, any event.
resource "aws_api_gateway_method" "orders" {
  # checkov:skip=CKV2_AWS_53:The request body is validated (aws_api_gateway_request_validator.body); checkov does not follow the validator reference.
  count                = local.api_count
  rest_api_id          = aws_api_gateway_rest_api.ingest[0].id
  resource_id          = aws_api_gateway_resource.orders[0].id
  http_method          = "POST"
  authorization        = "AWS_IAM"
  request_validator_id = aws_api_gateway_request_validator.body[0].id
  request_models       = { "application/json" = aws_api_gateway_model.events["Events"].name }
}

locals {
  post_methods = var.create_http_ingest ? { events = aws_api_gateway_method.beacon[0], orders = aws_api_gateway_method.orders[0] } : {}
}

resource "aws_api_gateway_integration" "put_records" {
  for_each                = local.ingest_routes
  rest_api_id             = aws_api_gateway_rest_api.ingest[0].id
  resource_id             = each.value.resource
  http_method             = local.post_methods[each.key].http_method
  type                    = "AWS"
  integration_http_method = "POST"
  uri                     = "arn:${local.partition}:apigateway:${local.region}:kinesis:action/PutRecords"
  credentials             = aws_iam_role.ingest[0].arn
  passthrough_behavior    = "NEVER"
  request_parameters = {
    "integration.request.header.Content-Type" = "'application/x-amz-json-1.1'"
  }
  request_templates = { "application/json" = local.put_records_templates[each.key] }
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

# The answers: 200 passes PutRecords' answer on (it says, per record, which were throttled: the
# caller retries those); Kinesis's 4xx (a throttled or refused request) become 400 and its 5xx
# 502, with Kinesis's error type and message. The beacon's carry the CORS headers.
locals {
  ingest_answers = merge(
    { for route, r in local.ingest_routes : "${route} 200" => { route = route, method = "POST", status = "200", pattern = null, template = "$input.json('$')" } },
    { for route, r in local.ingest_routes : "${route} 400" => { route = route, method = "POST", status = "400", pattern = "4\\d{2}", template = local.kinesis_error } },
    { for route, r in local.ingest_routes : "${route} 502" => { route = route, method = "POST", status = "502", pattern = "5\\d{2}", template = local.kinesis_error } },
    var.create_http_ingest ? { "events preflight" = { route = "events", method = "OPTIONS", status = "200", pattern = null, template = null } } : {},
  )
  kinesis_error = "{\"message\": $input.json('$.message'), \"type\": $input.json('$.__type')}"
}

resource "aws_api_gateway_method_response" "ingest" {
  for_each            = local.ingest_answers
  rest_api_id         = aws_api_gateway_rest_api.ingest[0].id
  resource_id         = local.ingest_routes[each.value.route].resource
  http_method         = each.value.method
  status_code         = each.value.status
  response_parameters = each.value.route == "events" ? { for k, _ in local.cors : k => true } : {}
  depends_on          = [aws_api_gateway_method.beacon, aws_api_gateway_method.orders, aws_api_gateway_method.options]
}

resource "aws_api_gateway_integration_response" "ingest" {
  for_each            = local.ingest_answers
  rest_api_id         = aws_api_gateway_rest_api.ingest[0].id
  resource_id         = local.ingest_routes[each.value.route].resource
  http_method         = each.value.method
  status_code         = aws_api_gateway_method_response.ingest[each.key].status_code
  selection_pattern   = each.value.pattern
  response_parameters = each.value.route == "events" ? local.cors : {}
  response_templates  = each.value.template == null ? {} : { "application/json" = each.value.template }
  depends_on          = [aws_api_gateway_integration.put_records, aws_api_gateway_integration.options]
}

# API Gateway's own refusals (a body the model refuses: 400; no or a bad signature: 403; the
# throttle: 429; its errors: 5xx) with the CORS headers, so that a page can read them.
resource "aws_api_gateway_gateway_response" "cors" {
  for_each      = var.create_http_ingest ? toset(["DEFAULT_4XX", "DEFAULT_5XX"]) : toset([])
  rest_api_id   = aws_api_gateway_rest_api.ingest[0].id
  response_type = each.key
  response_parameters = {
    "gatewayresponse.header.Access-Control-Allow-Origin"  = "'*'"
    "gatewayresponse.header.Access-Control-Allow-Headers" = "'Content-Type'"
  }
  response_templates = { "application/json" = "{\"message\": $context.error.messageString}" }
}

resource "aws_api_gateway_deployment" "ingest" {
  count       = local.api_count
  rest_api_id = aws_api_gateway_rest_api.ingest[0].id
  triggers = {
    redeploy = sha1(jsonencode([
      [for i in aws_api_gateway_integration.put_records : i.request_templates],
      [for m in aws_api_gateway_model.events : m.schema],
      [for m in values(local.post_methods) : [m.authorization, m.request_models]],
      [for r in aws_api_gateway_integration_response.ingest : [r.selection_pattern, r.response_parameters, r.response_templates]],
      [for r in aws_api_gateway_gateway_response.cors : r.response_parameters],
      aws_api_gateway_integration.options[0].id,
    ]))
  }
  lifecycle {
    create_before_destroy = true
  }
  depends_on = [aws_api_gateway_integration_response.ingest, aws_api_gateway_gateway_response.cors]
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
  # checkov:skip=CKV2_AWS_51:Browsers cannot present client certificates.
  # checkov:skip=CKV_AWS_73:X-Ray traces of a pass-through to Kinesis add cost without insight; access logs record each request.
  # checkov:skip=CKV2_AWS_77:The web ACL has the Log4j protection (AWSManagedRulesKnownBadInputsRuleSet); the AnonymousIpList group this check also demands would block the orders route's own servers (hosting-provider addresses) and shoppers on VPNs.
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
      latency   = "$context.responseLatency", integrationStatus = "$context.integration.status",
      caller    = "$context.identity.caller", wafStatus = "$context.waf.status"
    })
  }
  tags = local.tags
}

# Throttles: the stage's for the beacon, and one of its own for orders, so that a flood of
# browser traffic cannot starve the orders (and the other way round).
resource "aws_api_gateway_method_settings" "all" {
  # checkov:skip=CKV_AWS_225:Nothing to cache (see the stage).
  for_each = var.create_http_ingest ? {
    "*/*"         = var.http_ingest_throttle
    "orders/POST" = var.http_orders_throttle
  } : {}
  rest_api_id = aws_api_gateway_rest_api.ingest[0].id
  stage_name  = aws_api_gateway_stage.live[0].stage_name
  method_path = each.key
  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    throttling_rate_limit  = each.value
    throttling_burst_limit = 2 * each.value
  }
}

# The WAF: a rate limit per client IP (a single source cannot use up the stage's throttle for
# everyone), and AWS's managed rules for common exploits and known bad inputs. Sampled requests
# and metrics in CloudWatch; full logs to a log group of its own.
resource "aws_wafv2_web_acl" "ingest" {
  count = local.waf_count
  name  = "${var.name}-ingest"
  scope = "REGIONAL"
  default_action {
    allow {}
  }
  rule {
    name     = "rate-per-ip"
    priority = 0
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf_requests_per_ip
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-per-ip"
      sampled_requests_enabled   = true
    }
  }
  rule {
    name     = "AWSManagedRulesCommonRuleSet"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-AWSManagedRulesCommonRuleSet"
      sampled_requests_enabled   = true
    }
  }
  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-AWSManagedRulesKnownBadInputsRuleSet"
      sampled_requests_enabled   = true
    }
  }
  # A browser sends a few events at a time: a beacon body over beacon_max_body_bytes (or past
  # what the WAF can inspect) is blocked; the orders route is bounded by the body model (500
  # events) and API Gateway's 10 MB.
  rule {
    name     = "beacon-body-size"
    priority = 3
    action {
      block {}
    }
    statement {
      and_statement {
        statement {
          byte_match_statement {
            search_string         = "/events"
            positional_constraint = "ENDS_WITH"
            field_to_match {
              uri_path {}
            }
            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
        statement {
          size_constraint_statement {
            comparison_operator = "GT"
            size                = var.beacon_max_body_bytes
            field_to_match {
              body {
                oversize_handling = "MATCH"
              }
            }
            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-beacon-body-size"
      sampled_requests_enabled   = true
    }
  }
  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-ingest"
    sampled_requests_enabled   = true
  }
  tags = local.tags
}

resource "aws_wafv2_web_acl_association" "ingest" {
  count        = local.waf_count
  resource_arn = aws_api_gateway_stage.live[0].arn
  web_acl_arn  = aws_wafv2_web_acl.ingest[0].arn
}

# WAF logs must go to a log group named aws-waf-logs-*.
resource "aws_cloudwatch_log_group" "waf" {
  count             = local.waf_count
  name              = local.log_groups.waf
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "ingest" {
  count                   = local.waf_count
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]
  resource_arn            = aws_wafv2_web_acl.ingest[0].arn
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

# Plan-time checks of the module's guard rails, offline: `terraform test` with a mocked AWS
# provider (run by tests/terraform.rs). The zips are only hashed at plan, so any file will do.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  mock_data "aws_region" {
    defaults = {
      name = "eu-west-1"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
}

variables {
  lambda_zip    = "tests/hardening.tftest.hcl"
  publisher_zip = "tests/hardening.tftest.hcl"
}

run "a_prefix_the_functions_refuse_is_refused_here" {
  command = plan
  variables {
    analytics_prefix = "a//b/"
  }
  expect_failures = [var.analytics_prefix]
}

run "a_leading_slash_is_refused" {
  command = plan
  variables {
    analytics_prefix = "/analytics/"
  }
  expect_failures = [var.analytics_prefix]
}

run "a_dot_dot_segment_is_refused" {
  command = plan
  variables {
    analytics_prefix = "analytics/../other/"
  }
  expect_failures = [var.analytics_prefix]
}

run "a_prefix_without_its_trailing_slash_is_refused" {
  command = plan
  variables {
    analytics_prefix = "analytics"
  }
  expect_failures = [var.analytics_prefix]
}

run "an_athena_limit_below_athenas_minimum_is_refused" {
  command = plan
  variables {
    athena_bytes_scanned_cutoff = 1000
  }
  expect_failures = [var.athena_bytes_scanned_cutoff]
}

run "the_defaults_plan_with_the_guard_rails_in_place" {
  command = plan
  variables {
    analytics_prefix = "shop-1/analytics/"
  }

  assert {
    condition     = aws_athena_workgroup.this.configuration[0].bytes_scanned_cutoff_per_query == 100000000000
    error_message = "the workgroup limits the bytes a query scans"
  }
  assert {
    condition     = alltrue([for t in aws_glue_catalog_table.dataset : t.parameters["projection.dt.range"] == "2000-01-01,NOW+1DAYS"])
    error_message = "every table projects the days of every event time the contract accepts"
  }
  assert {
    condition     = local.writable_prefixes == ["shop-1/analytics/_pipeline/", "shop-1/analytics/_staging/"]
    error_message = "the processor writes and deletes only its ledger and its staged files"
  }
  assert {
    condition     = toset(one([for s in data.aws_iam_policy_document.processor.statement : one(s.condition).values if s.sid == "UseItsKey"])) == toset(["s3.eu-west-1.amazonaws.com", "sqs.eu-west-1.amazonaws.com", "kinesis.eu-west-1.amazonaws.com"])
    error_message = "the processor uses its key only through S3, SQS and Kinesis"
  }
  assert {
    condition     = toset(one([for s in data.aws_iam_policy_document.publisher.statement : one(s.condition).values if s.sid == "UseItsKey"])) == toset(["s3.eu-west-1.amazonaws.com"])
    error_message = "the publisher uses its key only through S3"
  }
  assert {
    condition     = toset(one([for s in data.aws_iam_policy_document.ingest.statement : one(s.condition).values if s.sid == "EncryptWithItsKey"])) == toset(["kinesis.eu-west-1.amazonaws.com"])
    error_message = "the ingest API uses the key only through Kinesis"
  }
}

run "no_limit_when_asked" {
  command = plan
  variables {
    athena_bytes_scanned_cutoff = null
  }
  assert {
    condition     = aws_athena_workgroup.this.configuration[0].bytes_scanned_cutoff_per_query == null
    error_message = "null turns the limit off"
  }
}

run "browsers_cannot_send_orders_and_orders_need_a_signature" {
  command = plan

  assert {
    condition     = !contains(jsondecode(aws_api_gateway_model.events["BrowserEvents"].schema).properties.events.items.properties.event_type.enum, "order_placed")
    error_message = "the beacon's body model refuses order_placed (API Gateway answers 400)"
  }
  assert {
    condition     = contains(jsondecode(aws_api_gateway_model.events["BrowserEvents"].schema).properties.events.items.required, "event_type")
    error_message = "an event without a type does not pass the beacon either"
  }
  assert {
    condition     = alltrue([for m in concat(aws_api_gateway_method.beacon, aws_api_gateway_method.orders) : m.authorization != "NONE" || m.request_models["application/json"] == "BrowserEvents"])
    error_message = "no unauthenticated method takes orders"
  }
  assert {
    condition     = aws_api_gateway_method.orders[0].authorization == "AWS_IAM"
    error_message = "the orders route takes SigV4-signed requests only"
  }
  assert {
    condition     = aws_api_gateway_method_settings.all["orders/POST"].settings[0].throttling_rate_limit == 100
    error_message = "the orders route has a throttle of its own"
  }
  assert {
    condition = toset([for r in aws_api_gateway_integration_response.ingest : "${r.status_code} ${coalesce(r.selection_pattern, "-")}" if r.http_method == "POST"]) == toset([
      "200 -", "400 4\\d{2}", "502 5\\d{2}"
    ])
    error_message = "Kinesis's errors reach the caller as 400 and 502, not 200"
  }
  assert {
    condition     = length(aws_api_gateway_gateway_response.cors) == 2 && alltrue([for r in aws_api_gateway_gateway_response.cors : r.response_parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"])
    error_message = "API Gateway's own 4xx and 5xx (429 included) carry the CORS headers"
  }
  assert {
    condition     = length(aws_wafv2_web_acl_association.ingest) == 1 && one([for r in aws_wafv2_web_acl.ingest[0].rule : one(one(r.statement).rate_based_statement).limit if r.name == "rate-per-ip"]) == 1000
    error_message = "the stage is behind the WAF, with a rate limit per client IP"
  }
  assert {
    condition     = one([for r in aws_wafv2_web_acl.ingest[0].rule : [for st in one(one(r.statement).and_statement).statement : length(st.size_constraint_statement) > 0 ? one(st.size_constraint_statement).size : 0] if r.name == "beacon-body-size"]) == [0, 16384]
    error_message = "the beacon's bodies are limited in size (the orders route's are not)"
  }
  assert {
    condition     = alltrue([for route, window in { events = 1440, orders = 0 } : aws_api_gateway_integration.put_records[route].request_templates["application/json"] == templatefile("put_records.vtl", { stream_name = "orderstream-events", event_time_window_minutes = window })])
    error_message = "both routes put events through put_records.vtl (which render_vtl.py checks), the beacon's refusing event times over 24 hours from the request, the orders route's none"
  }
}

run "a_beacon_window_past_two_days_is_refused" {
  command = plan
  variables {
    beacon_event_time_window_hours = 49
  }
  expect_failures = [var.beacon_event_time_window_hours]
}

run "the_waf_can_be_left_out" {
  command = plan
  variables {
    create_waf = false
  }
  assert {
    condition     = length(aws_wafv2_web_acl.ingest) == 0 && length(aws_wafv2_web_acl_association.ingest) == 0
    error_message = "create_waf = false: no web ACL"
  }
}

run "the_scaler_is_off_by_default" {
  command = plan
  assert {
    condition     = length(aws_lambda_function.scaler) == 0 && length(aws_kinesis_stream.scaled) == 0 && length(aws_kinesis_stream.this) == 1
    error_message = "shard_scaling defaults to off: the stream as shard_count says, no scaler"
  }
  assert {
    condition     = !strcontains(aws_cloudwatch_dashboard.this.dashboard_body, "ShardsScheduled")
    error_message = "no scaler, no shards widget"
  }
}

run "the_scaler_resizes_only_a_provisioned_stream" {
  command = plan
  variables {
    shard_scaling = true
    scaler_zip    = "tests/hardening.tftest.hcl"
  }
  expect_failures = [aws_kinesis_stream.scaled]
}

run "the_scaler_needs_its_zip" {
  command = plan
  variables {
    shard_scaling = true
    stream_mode   = "PROVISIONED"
  }
  expect_failures = [aws_lambda_function.scaler]
}

run "a_schedule_entry_needs_a_time_and_a_count" {
  command = plan
  variables {
    shard_schedule = [{ at = "Friday evening", target_shard_count = 8 }]
  }
  expect_failures = [var.shard_schedule]
}

run "the_scaler_follows_the_schedule_within_its_limits" {
  command = plan
  variables {
    shard_scaling     = true
    stream_mode       = "PROVISIONED"
    scaler_zip        = "tests/hardening.tftest.hcl"
    scaler_max_shards = 16
    shard_schedule    = [{ at = "2026-12-04T18:45:00Z", target_shard_count = 8 }]
  }
  assert {
    condition     = length(aws_kinesis_stream.this) == 0 && length(aws_kinesis_stream.scaled) == 1
    error_message = "shard_scaling: the stream whose shard count Terraform leaves to the scaler"
  }
  assert {
    condition = (
      aws_lambda_function.scaler[0].environment[0].variables.SCALER_SCHEDULE == "[{\"at\":\"2026-12-04T18:45:00Z\",\"target_shard_count\":8}]"
      && aws_lambda_function.scaler[0].environment[0].variables.SCALER_MAX_SHARDS == "16"
      && aws_lambda_function.scaler[0].reserved_concurrent_executions == 1
    )
    error_message = "the scaler's environment carries the schedule and its limits; one step at a time"
  }
  assert {
    condition     = aws_cloudwatch_event_rule.scaler[0].schedule_expression == "rate(1 minute)"
    error_message = "a step every minute"
  }
  assert {
    condition     = strcontains(aws_cloudwatch_dashboard.this.dashboard_body, "ShardsScheduled")
    error_message = "the dashboard draws the open shards against the load and the schedule"
  }
}

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

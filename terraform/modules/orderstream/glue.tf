# The Glue catalog over the datasets: one table per dataset, columns from tables.json (generated
# from the sink's Arrow schemas, and checked against them by tests/terraform.rs), Hive partitions
# dt/hr found by partition projection, so that no crawler or MSCK REPAIR is ever needed.

locals {
  tables   = jsondecode(file("${path.module}/tables.json"))
  database = replace(var.name, "-", "_")
  location = "s3://${aws_s3_bucket.datasets.id}/${local.prefix}"
  # Every partition the processor can write: event times back to 2000-01-01 (contract 1.2), and
  # up to 5 minutes ahead of the clock, which is tomorrow's dt for 5 minutes before midnight.
  # Athena only lists the days a query's dt filter names: filter by dt.
  projection_days = "2000-01-01,NOW+1DAYS"
  results_key     = "_athena-results/"
  table_comment = {
    events        = "One row per valid storefront event (contract 2.1)"
    order_items   = "One row per line of an order_placed event (contract 2.2)"
    sales_minute  = "Additive sales aggregates per minute: sum the measures (contract 2.3)"
    funnel_minute = "Additive funnel counts per minute: sum the measures (contract 2.4)"
    quarantine    = "One row per rejected record, with its exact bytes (contract 2.5)"
  }
}

resource "aws_glue_catalog_database" "this" {
  name        = local.database
  description = "orderstream datasets in s3://${aws_s3_bucket.datasets.id}/${local.prefix}"
}

resource "aws_glue_catalog_table" "dataset" {
  for_each      = local.tables
  database_name = aws_glue_catalog_database.this.name
  name          = each.key
  description   = local.table_comment[each.key]
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                    = "TRUE"
    "classification"              = "parquet"
    "parquet.compression"         = "ZSTD"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = local.projection_days
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "projection.hr.type"          = "integer"
    "projection.hr.range"         = "0,23"
    "projection.hr.digits"        = "2"
    "storage.location.template"   = "${local.location}${each.key}/dt=$${dt}/hr=$${hr}"
  }

  partition_keys {
    name    = "dt"
    type    = "string"
    comment = "UTC date of the partition column (yyyy-MM-dd)"
  }
  partition_keys {
    name    = "hr"
    type    = "string"
    comment = "UTC hour of the partition column (00-23)"
  }

  storage_descriptor {
    location      = "${local.location}${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = each.value.columns
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = var.name
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    result_configuration {
      output_location = "s3://${aws_s3_bucket.datasets.id}/${local.results_key}"
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.this.arn
      }
    }
  }

  tags = local.tags
}

locals {
  db = aws_glue_catalog_database.this.name
  named_queries = {
    "revenue-per-hour-and-currency" = {
      description = "Revenue per hour and currency (minor units), last 7 days"
      query       = <<-SQL
        SELECT date_trunc('hour', window_start) AS hour, currency,
               sum(order_lines) AS order_lines, sum(units) AS units, sum(revenue_minor) AS revenue_minor
        FROM "${local.db}"."sales_minute"
        WHERE dt >= date_format(current_date - interval '7' day, '%Y-%m-%d')
        GROUP BY 1, 2
        ORDER BY 1 DESC, 5 DESC
      SQL
    }
    "funnel-conversion" = {
      description = "Funnel conversion per country and device, last 7 days"
      query       = <<-SQL
        SELECT country, device, sum(page_views) AS page_views, sum(product_views) AS product_views,
               sum(add_to_carts) AS add_to_carts, sum(checkouts) AS checkouts, sum(orders) AS orders,
               round(100.0 * sum(orders) / nullif(sum(checkouts), 0), 2) AS checkout_to_order_pct
        FROM "${local.db}"."funnel_minute"
        WHERE dt >= date_format(current_date - interval '7' day, '%Y-%m-%d')
        GROUP BY 1, 2
        ORDER BY orders DESC
      SQL
    }
    "top-products" = {
      description = "Top 20 products by units sold, with revenue per currency, last 7 days"
      query       = <<-SQL
        SELECT product_id, category, currency, sum(quantity) AS units, sum(line_total_minor) AS revenue_minor
        FROM "${local.db}"."order_items"
        WHERE dt >= date_format(current_date - interval '7' day, '%Y-%m-%d')
        GROUP BY 1, 2, 3
        ORDER BY units DESC
        LIMIT 20
      SQL
    }
    "quarantine-by-reason" = {
      description = "Rejected records per reason code and day"
      query       = <<-SQL
        SELECT dt, reason_code, count(*) AS records, arbitrary(reason) AS example
        FROM "${local.db}"."quarantine"
        GROUP BY 1, 2
        ORDER BY 1 DESC, 3 DESC
      SQL
    }
  }
}

resource "aws_athena_named_query" "this" {
  for_each    = var.create_named_queries ? local.named_queries : {}
  name        = each.key
  description = each.value.description
  workgroup   = aws_athena_workgroup.this.id
  database    = aws_glue_catalog_database.this.name
  query       = each.value.query
}

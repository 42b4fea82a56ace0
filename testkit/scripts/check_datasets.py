#!/usr/bin/env python3
"""Reads the five datasets with readers independent of the Rust code (pyarrow, DuckDB) and
prints a JSON report for the Rust tests to assert on.

    check_datasets.py --dir DATA_DIR [--prefix P]
    check_datasets.py --s3-endpoint URL --bucket B [--prefix P]   (downloads through boto3)

The report holds, per table: the Parquet physical and logical type of every column, the codecs,
whether every column chunk has statistics and whether they are true to its rows, the row and file counts; then, through DuckDB with
hive partitioning: that dt/hr equal each row's UTC hour, that the aggregates equal the detail
tables, and the rows that identify events and quarantined records.
"""
import argparse
import json
import os
import sys
import tempfile

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq

TABLES = {
    "events": "event_time",
    "order_items": "event_time",
    "sales_minute": "window_start",
    "funnel_minute": "window_start",
    "quarantine": "arrival_time",
}


def visible_files(root, table):
    out = []
    for d, _, files in os.walk(os.path.join(root, table)):
        for f in files:
            if f.endswith(".parquet") and not f.startswith(("_", ".")):
                out.append(os.path.join(d, f))
    return sorted(out)


def download(endpoint, bucket, prefix, dest):
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix):]
            path = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            s3.download_file(bucket, obj["Key"], path)


def wrong_statistics(pf):
    """Column chunks whose min, max or null count differ from their rows' (read by pyarrow):
    a reader that prunes by statistics (Athena, DuckDB) would skip or keep the wrong rows."""
    wrong = []
    md = pf.metadata
    for rg in range(md.num_row_groups):
        table = pf.read_row_group(rg)
        for i in range(md.num_columns):
            c = md.row_group(rg).column(i)
            if not c.is_stats_set:
                continue
            st, col = c.statistics, table.column(i)
            if st.null_count != col.null_count:
                wrong.append(f"{c.path_in_schema} row group {rg}: null count {st.null_count}, rows {col.null_count}")
            if st.has_min_max:
                # Bounds may be truncated (long strings) but must contain every value.
                lo, hi = pc.min_max(col).values()
                lo, hi = lo.as_py(), hi.as_py()
                if not (st.min <= lo and hi <= st.max):
                    wrong.append(f"{c.path_in_schema} row group {rg}: range {st.min!r}..{st.max!r}, rows {lo!r}..{hi!r}")
            elif col.null_count != len(col):
                wrong.append(f"{c.path_in_schema} row group {rg}: values but no range")
    return wrong


def physical(files):
    columns, codecs, stats, wrong = {}, set(), True, []
    for f in files:
        pf = pq.ParquetFile(f)
        wrong += [f"{os.path.basename(f)}: {w}" for w in wrong_statistics(pf)]
        md = pf.metadata
        schema = md.schema
        for i in range(md.num_columns):
            col = schema.column(i)
            seen = {"physical": col.physical_type, "logical": str(col.logical_type)}
            if columns.setdefault(col.name, seen) != seen:
                columns[col.name] = {"physical": "MIXED", "logical": "MIXED"}
        for rg in range(md.num_row_groups):
            for i in range(md.num_columns):
                c = md.row_group(rg).column(i)
                codecs.add(c.compression)
                stats = stats and c.is_stats_set
    return columns, sorted(codecs), stats, wrong


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir")
    ap.add_argument("--s3-endpoint")
    ap.add_argument("--bucket")
    ap.add_argument("--prefix", default="")
    a = ap.parse_args()
    tmp = None
    if a.s3_endpoint:
        tmp = tempfile.TemporaryDirectory()
        download(a.s3_endpoint, a.bucket, a.prefix, tmp.name)
        root = tmp.name
    else:
        root = os.path.join(a.dir, a.prefix)

    report = {"tables": {}, "checks": {}}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for table, part_col in TABLES.items():
        files = visible_files(root, table)
        cols, codecs, stats, wrong = physical(files)
        entry = {"files": len(files), "columns": cols, "codecs": codecs, "statistics": stats,
                 "wrong_statistics": wrong[:10], "rows": 0}
        if files:
            glob = os.path.join(root, table, "**", "*.parquet")
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
            entry["rows"] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            bad = con.execute(
                f"SELECT count(*) FROM {table} WHERE dt <> strftime({part_col}, '%Y-%m-%d') "
                f"OR CAST(hr AS INTEGER) <> hour({part_col})").fetchone()[0]
            entry["rows_outside_their_partition"] = bad
        else:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM (SELECT 1) WHERE false")
        report["tables"][table] = entry

    t = report["tables"]
    if t["order_items"]["rows"] or t["sales_minute"]["rows"]:
        report["checks"]["sales_mismatches"] = con.execute("""
            WITH d AS (SELECT date_trunc('minute', event_time) w, country, category, currency,
                              count(*) l, sum(quantity) u, sum(line_total_minor) r
                       FROM order_items GROUP BY ALL),
                 a AS (SELECT window_start w, country, category, currency,
                              sum(order_lines) l, sum(units) u, sum(revenue_minor) r
                       FROM sales_minute GROUP BY ALL)
            SELECT count(*) FROM d FULL JOIN a USING (w, country, category, currency)
            WHERE d.l IS DISTINCT FROM a.l OR d.u IS DISTINCT FROM a.u OR d.r IS DISTINCT FROM a.r
        """).fetchone()[0]
    if t["events"]["rows"]:
        report["checks"]["funnel_mismatches"] = con.execute("""
            WITH d AS (SELECT date_trunc('minute', event_time) w, country, device,
                              count(*) FILTER (event_type = 'page_view') pv,
                              count(*) FILTER (event_type = 'product_view') prv,
                              count(*) FILTER (event_type = 'add_to_cart') ac,
                              count(*) FILTER (event_type = 'remove_from_cart') rc,
                              count(*) FILTER (event_type = 'checkout_started') co,
                              count(*) FILTER (event_type = 'order_placed') o
                       FROM events GROUP BY ALL),
                 a AS (SELECT window_start w, country, device, sum(page_views) pv, sum(product_views) prv,
                              sum(add_to_carts) ac, sum(remove_from_carts) rc, sum(checkouts) co, sum(orders) o
                       FROM funnel_minute GROUP BY ALL)
            SELECT count(*) FROM d FULL JOIN a USING (w, country, device)
            WHERE (d.pv, d.prv, d.ac, d.rc, d.co, d.o) IS DISTINCT FROM (a.pv, a.prv, a.ac, a.rc, a.co, a.o)
        """).fetchone()[0]
        report["events"] = [
            {"event_id": r[0], "sequence_number": r[1], "event_type": r[2], "partition": r[3],
             "event_time": r[4]}
            for r in con.execute("""SELECT event_id, sequence_number, event_type, 'dt=' || dt || '/hr=' || hr,
                                           strftime(event_time, '%Y-%m-%dT%H:%M:%S.%gZ')
                                    FROM events ORDER BY event_id, sequence_number""").fetchall()
        ]
        report["line_totals"] = dict(con.execute(
            "SELECT currency, sum(line_total_minor)::BIGINT FROM order_items GROUP BY 1").fetchall())
    if t["quarantine"]["rows"]:
        report["quarantine"] = [
            {"sequence_number": r[0], "reason_code": r[1], "bytes": r[2]}
            for r in con.execute("""SELECT sequence_number, reason_code, octet_length(data)
                                    FROM quarantine ORDER BY sequence_number""").fetchall()
        ]
    json.dump(report, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()

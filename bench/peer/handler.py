"""The Python peer of the processor: the same contract written the way AWS samples write a
Kinesis-to-Parquet Lambda function (json.loads per record, pandas and pyarrow, boto3), so that
scripts/bench measures both on the same payloads through the same local Runtime API.

What it does, per invocation: de-aggregates KPL records (aws_kinesis_agg, AWS's own library),
validates each record against the contract (docs/contract.md: every reason code, in order),
drops repeated event_ids of a shard within the batch (the first by sequence number), and writes
the five tables, one Parquet file (ZSTD, statistics) per table and hour, under
ANALYTICS_PREFIX in ANALYTICS_BUCKET. What it leaves out, to its advantage: the processor's
exactly-once ledger (commit records, staged files, the 10-minute de-duplication window across
invocations) and its metrics.
"""

import base64
import datetime as dt
import io
import json
import os
import re
import uuid

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from aws_kinesis_agg.deaggregator import deaggregate_records

s3 = boto3.client("s3")
BUCKET = os.environ["ANALYTICS_BUCKET"]
PREFIX = os.environ.get("ANALYTICS_PREFIX", "analytics/")

EVENT_TYPES = {"page_view", "product_view", "add_to_cart", "remove_from_cart", "checkout_started", "order_placed"}
FUNNEL = {"page_view": "page_views", "product_view": "product_views", "add_to_cart": "add_to_carts",
          "remove_from_cart": "remove_from_carts", "checkout_started": "checkouts", "order_placed": "orders"}
EARLIEST_MS = 946_684_800_000
TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z")
SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
INT64 = (-(2**63), 2**63 - 1)

TS = pa.timestamp("ms", tz="UTC")
SCHEMAS = {
    "events": pa.schema([
        ("event_id", pa.string()), ("event_type", pa.string()), ("event_time", TS), ("session_id", pa.string()),
        ("customer_id", pa.string()), ("country", pa.string()), ("device", pa.string()), ("page", pa.string()),
        ("product_id", pa.string()), ("category", pa.string()), ("quantity", pa.int32()),
        ("unit_price_minor", pa.int64()), ("cart_value_minor", pa.int64()), ("order_id", pa.string()),
        ("units", pa.int32()), ("total_minor", pa.int64()), ("currency", pa.string()), ("shard_id", pa.string()),
        ("sequence_number", pa.string()), ("sub_sequence_number", pa.int32()), ("arrival_time", TS)]),
    "order_items": pa.schema([
        ("order_id", pa.string()), ("event_id", pa.string()), ("event_time", TS), ("line_number", pa.int32()),
        ("customer_id", pa.string()), ("country", pa.string()), ("product_id", pa.string()),
        ("category", pa.string()), ("quantity", pa.int32()), ("unit_price_minor", pa.int64()),
        ("line_total_minor", pa.int64()), ("currency", pa.string())]),
    "sales_minute": pa.schema([
        ("window_start", TS), ("country", pa.string()), ("category", pa.string()), ("currency", pa.string()),
        ("order_lines", pa.int64()), ("units", pa.int64()), ("revenue_minor", pa.int64())]),
    "funnel_minute": pa.schema([
        ("window_start", TS), ("country", pa.string()), ("device", pa.string())]
        + [(c, pa.int64()) for c in FUNNEL.values()]),
    "quarantine": pa.schema([
        ("shard_id", pa.string()), ("sequence_number", pa.string()), ("sub_sequence_number", pa.int32()),
        ("partition_key", pa.string()), ("arrival_time", TS), ("reason_code", pa.string()),
        ("reason", pa.string()), ("data", pa.binary())]),
}
PARTITION = {"events": "event_time", "order_items": "event_time", "sales_minute": "window_start",
             "funnel_minute": "window_start", "quarantine": "arrival_time"}


class Rejected(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code


def schema(reason):
    return Rejected("schema_violation", reason)


def parse_time(text):
    """RFC 3339 to UTC milliseconds and the nanoseconds below them."""
    m = TIME.match(text) if isinstance(text, str) else None
    if not m:
        raise schema(f"`event_time` {text!r} is not RFC 3339")
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    if int(h) > 23 or int(mi) > 59 or int(s) > 59 or (not z and (int(oh) > 23 or int(om) > 59)):
        raise schema(f"`event_time` {text!r} is out of range")
    try:
        day = dt.date(int(y), int(mo), int(d))
    except ValueError:
        raise schema(f"`event_time` {text!r} is not a calendar date") from None
    seconds = (day - dt.date(1970, 1, 1)).days * 86400 + int(h) * 3600 + int(mi) * 60 + int(s)
    if not z:
        seconds -= (1 if sign == "+" else -1) * (int(oh) * 3600 + int(om) * 60)
    nanos = int((frac or "").ljust(9, "0") or 0)
    return seconds * 1000 + nanos // 1_000_000, nanos % 1_000_000


def string(obj, field, lo, hi, path=""):
    if field not in obj:
        raise schema(f"missing required field `{path}{field}`")
    v = obj[field]
    if not isinstance(v, str):
        raise schema(f"`{path}{field}` must be a string")
    if not lo <= len(v) <= hi:
        raise schema(f"`{path}{field}` must be {lo}-{hi} characters, got {len(v)}")
    return v


def code(obj, field, n):
    v = obj.get(field)
    if not isinstance(v, str) or len(v) != n or not (v.isascii() and v.isupper() and v.isalpha()):
        raise schema(f"`{field}` must be {n} upper-case ASCII letters")
    return v


def integer(obj, field, lo, hi, path="", default=None):
    if field not in obj:
        if default is not None:
            return default
        raise schema(f"missing required field `{path}{field}`")
    v = obj[field]  # json reads -0 as the integer 0, and 1.0 or 1e3 as floats
    if isinstance(v, bool) or not isinstance(v, int):
        raise schema(f"`{path}{field}` must be an integer")
    if not INT64[0] <= v <= INT64[1]:
        raise schema(f"`{path}{field}` does not fit a signed 64-bit integer")
    if not lo <= v <= hi:
        raise schema(f"`{path}{field}` must be in {lo}..={hi}")
    return v


def not_json(constant):
    raise ValueError(f"{constant} is not JSON")


def depth(v, level=1):
    if isinstance(v, dict):
        return max([level] + [depth(x, level + 1) for x in v.values()])
    if isinstance(v, list):
        return max([level] + [depth(x, level + 1) for x in v])
    return level - 1


def validate(data, arrival_ms):
    """One record's bytes to an event dict, or Rejected (contract 1.3, in order)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Rejected("invalid_encoding", f"data is not valid UTF-8 at byte {e.start}") from None
    try:
        obj = json.loads(text, parse_constant=not_json)
        if SURROGATE.search(text):
            json.dumps(obj, ensure_ascii=False).encode("utf-8")  # a lone surrogate does not encode
    except (ValueError, RecursionError) as e:
        raise Rejected("invalid_json", f"not parseable as JSON: {e}") from None
    if not isinstance(obj, dict):
        raise Rejected("invalid_json", "expected a JSON object")
    if depth(obj) > 32:
        raise Rejected("invalid_json", "JSON nests deeper than 32 levels")
    if "event_type" not in obj:
        raise schema("missing required field `event_type`")
    kind = obj["event_type"]
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise Rejected("unknown_event_type", f"`event_type` {kind!r} is not one of the six event types")
    event_id = string(obj, "event_id", 1, 64)
    if not EVENT_ID.match(event_id):
        raise schema("`event_id` may only contain A-Z a-z 0-9 _ -")
    if "event_time" not in obj:
        raise schema("missing required field `event_time`")
    time_ms, sub_ms = parse_time(obj["event_time"])
    e = {"event_id": event_id, "event_type": kind, "event_time": time_ms,
         "session_id": string(obj, "session_id", 1, 128)}
    customer = obj.get("customer_id")
    e["customer_id"] = None if customer is None else string(obj, "customer_id", 1, 128)
    e["country"] = code(obj, "country", 2)
    e["device"] = string(obj, "device", 1, 32)
    if kind == "page_view":
        e["page"] = string(obj, "page", 1, 2048)
    elif kind in ("product_view", "add_to_cart", "remove_from_cart"):
        e["product_id"] = string(obj, "product_id", 1, 128)
        e["category"] = string(obj, "category", 1, 128)
        e["unit_price_minor"] = integer(obj, "unit_price_minor", 0, INT64[1])
        e["currency"] = code(obj, "currency", 3)
        if kind != "product_view":
            e["quantity"] = integer(obj, "quantity", 1, 10_000)
    elif kind == "checkout_started":
        e["cart_value_minor"] = integer(obj, "cart_value_minor", 0, INT64[1])
        e["currency"] = code(obj, "currency", 3)
    else:
        e["order_id"] = string(obj, "order_id", 1, 128)
        e["currency"] = code(obj, "currency", 3)
        items = obj.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 500:
            raise schema("`items` must be an array of 1-500 items")
        lines = []
        for i, item in enumerate(items):
            path = f"items[{i}]."
            if not isinstance(item, dict):
                raise schema(f"`items[{i}]` must be an object")
            lines.append({"product_id": string(item, "product_id", 1, 128, path),
                          "category": string(item, "category", 1, 128, path),
                          "quantity": integer(item, "quantity", 1, 10_000, path),
                          "unit_price_minor": integer(item, "unit_price_minor", 0, INT64[1], path)})
        total = integer(obj, "total_minor", 0, INT64[1])
        adjust = [-integer(obj, "discount_minor", 0, INT64[1], default=0),
                  integer(obj, "shipping_minor", 0, INT64[1], default=0),
                  integer(obj, "tax_minor", 0, INT64[1], default=0)]
        running = 0
        for line in lines:
            line["line_total_minor"] = line["quantity"] * line["unit_price_minor"]
            running += line["line_total_minor"]
            if not INT64[0] <= line["line_total_minor"] <= INT64[1] or not INT64[0] <= running <= INT64[1]:
                raise Rejected("inconsistent_total", "the line totals overflow a signed 64-bit integer")
        for step in adjust:
            running += step
            if not INT64[0] <= running <= INT64[1]:
                raise Rejected("inconsistent_total", "the total overflows a signed 64-bit integer")
        if running != total:
            raise Rejected("inconsistent_total", f"`total_minor` is {total} but the items add up to {running}")
        e.update(total_minor=total, units=sum(line["quantity"] for line in lines), lines=lines)
    if time_ms < EARLIEST_MS:
        raise Rejected("event_time_out_of_range", "`event_time` is before 2000-01-01T00:00:00Z")
    limit = arrival_ms + 300_000
    if time_ms > limit or (time_ms == limit and sub_ms > 0):
        raise Rejected("event_time_out_of_range", "`event_time` is more than 5 minutes after the record's arrival")
    return e


def user_records(record):
    """A Lambda Kinesis record's user records (one, or a KPL aggregate's), with their data."""
    kinesis = record["kinesis"]
    shard = record.get("eventID", "unknown-shard:").split(":")[0] or "unknown-shard"
    arrival_ms = round(kinesis["approximateArrivalTimestamp"] * 1000)
    try:
        raw = base64.b64decode(kinesis["data"], validate=True)
    except ValueError:
        yield shard, kinesis, 0, kinesis["partitionKey"], arrival_ms, kinesis["data"].encode(), "data is not base64"
        return
    if raw[:4] != b"\xf3\x89\x9a\xc2":
        yield shard, kinesis, 0, kinesis["partitionKey"], arrival_ms, raw, None
        return
    # The library hands a corrupt aggregate (checksum, protobuf) back as it is: quarantined whole.
    records = deaggregate_records([record])
    if len(records) == 1 and records[0]["kinesis"]["data"] == kinesis["data"]:
        yield shard, kinesis, 0, kinesis["partitionKey"], arrival_ms, raw, "corrupt KPL aggregate"
        return
    for i, user in enumerate(records):
        data = base64.b64decode(user["kinesis"]["data"])
        nested = "a KPL aggregate inside a KPL aggregate" if data[:4] == b"\xf3\x89\x9a\xc2" else None
        yield shard, kinesis, i, user["kinesis"]["partitionKey"], arrival_ms, data, nested


def write(table, frame):
    """One Parquet file per hour of the table's partition column."""
    if frame.empty:
        return
    column = PARTITION[table]
    frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    for (day, hour), part in frame.groupby([frame[column].dt.strftime("%Y-%m-%d"), frame[column].dt.strftime("%H")]):
        buf = io.BytesIO()
        arrow = pa.Table.from_pandas(part, schema=SCHEMAS[table], preserve_index=False)
        pq.write_table(arrow, buf, compression="zstd", write_statistics=True)
        key = f"{PREFIX}{table}/dt={day}/hr={hour}/{uuid.uuid4()}.parquet"
        s3.put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue())


def handler(event, context):
    events, items, quarantine, seen = [], [], [], set()
    for record in event["Records"]:
        for shard, kinesis, sub, key, arrival_ms, data, error in user_records(record):
            coordinates = {"shard_id": shard, "sequence_number": kinesis["sequenceNumber"],
                           "sub_sequence_number": sub}
            try:
                if error:
                    raise Rejected("invalid_encoding", error)
                e = validate(data, arrival_ms)
            except Rejected as r:
                quarantine.append({**coordinates, "partition_key": key, "arrival_time": arrival_ms,
                                   "reason_code": r.code, "reason": str(r), "data": data})
                continue
            if (shard, e["event_id"]) in seen:
                continue
            seen.add((shard, e["event_id"]))
            for n, line in enumerate(e.pop("lines", [])):
                items.append({"order_id": e["order_id"], "event_id": e["event_id"], "event_time": e["event_time"],
                              "line_number": n, "customer_id": e["customer_id"], "country": e["country"],
                              "currency": e["currency"], **line})
            events.append({**e, **coordinates, "arrival_time": arrival_ms})

    events_df = pd.DataFrame(events, columns=SCHEMAS["events"].names)
    items_df = pd.DataFrame(items, columns=SCHEMAS["order_items"].names)
    if not items_df.empty:
        items_df["window_start"] = items_df["event_time"] // 60_000 * 60_000
        sales = (items_df.groupby(["window_start", "country", "category", "currency"], as_index=False)
                 .agg(order_lines=("line_number", "size"), units=("quantity", "sum"),
                      revenue_minor=("line_total_minor", "sum")))
        items_df = items_df.drop(columns="window_start")
    else:
        sales = pd.DataFrame(columns=SCHEMAS["sales_minute"].names)
    if not events_df.empty:
        events_df["window_start"] = events_df["event_time"] // 60_000 * 60_000
        funnel = (pd.crosstab([events_df["window_start"], events_df["country"], events_df["device"]],
                              events_df["event_type"]).reindex(columns=list(FUNNEL), fill_value=0)
                  .rename(columns=FUNNEL).reset_index())
        events_df = events_df.drop(columns="window_start")
    else:
        funnel = pd.DataFrame(columns=SCHEMAS["funnel_minute"].names)
    for table, frame in [("events", events_df), ("order_items", items_df), ("sales_minute", sales),
                         ("funnel_minute", funnel),
                         ("quarantine", pd.DataFrame(quarantine, columns=SCHEMAS["quarantine"].names))]:
        write(table, frame)
    return {"batchItemFailures": []}

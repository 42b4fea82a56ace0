#!/usr/bin/env python3
"""Reads Kinesis records with AWS's own KPL library (aws_kinesis_agg, PyPI): an independent
reader of the aggregates the producer's --aggregate writes.

usage: kpl_deaggregate.py < records.jsonl > user_records.json
Each input line is {"partition_key": ..., "data": base64} (one Kinesis record). Prints, per
Kinesis record, {"aggregated": bool, "user_records": [{"partition_key", "data" (base64)}]};
a record whose magic or MD5 does not hold is read as a plain record (aggregated false), as
the library reads it.
"""
import base64
import json
import sys

from aws_kinesis_agg.deaggregator import iter_deaggregate_records

out = []
for n, line in enumerate(sys.stdin):
    r = json.loads(line)
    record = {"kinesis": {"kinesisSchemaVersion": "1.0", "sequenceNumber": str(n + 1),
                          "approximateArrivalTimestamp": 0, "partitionKey": r["partition_key"],
                          "data": r["data"]}}
    users = list(iter_deaggregate_records(record))
    out.append({
        "aggregated": all(u["kinesis"].get("aggregated", False) for u in users),
        "user_records": [{"partition_key": u["kinesis"]["partitionKey"],
                          "data": u["kinesis"]["data"].decode("ascii")
                          if isinstance(u["kinesis"]["data"], bytes) else u["kinesis"]["data"]}
                         for u in users],
    })
json.dump(out, sys.stdout)

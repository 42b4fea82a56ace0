"""Aggregates user records with AWS's own KPL library (aws_kinesis_agg, PyPI) into a Lambda
Kinesis event: an independent implementation for the processor's de-aggregation to read.

usage: kpl_aggregate.py MAX_BYTES < records.jsonl > event.json
Each input line is {"partition_key": ..., "data": ...} (data as UTF-8 text). Records go into
aggregates of at most MAX_BYTES (the KPL's limit is 1 MiB), in order; each aggregate is one
Kinesis record of shard shardId-000000000000 with the next sequence number, arriving at
2026-11-23T13:05:00Z. Prints {"event": <the Lambda event>, "user_records": [count per aggregate]}.
"""
import base64
import json
import sys

from aws_kinesis_agg.aggregator import RecordAggregator

max_bytes = int(sys.argv[1])
aggregates = []
agg = RecordAggregator(max_size=max_bytes)
for line in sys.stdin:
    r = json.loads(line)
    full = agg.add_user_record(r["partition_key"], r["data"].encode("utf-8"))
    if full is not None:
        aggregates.append(full)
last = agg.clear_and_get()
if last is not None and last.get_num_user_records() > 0:
    aggregates.append(last)

records = []
for n, a in enumerate(aggregates):
    pk, _ehk, data = a.get_contents()
    sequence = "%056d" % (n + 1)
    records.append({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": pk,
            "sequenceNumber": sequence,
            "data": base64.b64encode(data).decode("ascii"),
            "approximateArrivalTimestamp": 1795439100.0,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": "shardId-000000000000:" + sequence,
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/processor",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/kpl",
    })
json.dump({"event": {"Records": records}, "user_records": [a.get_num_user_records() for a in aggregates]}, sys.stdout)

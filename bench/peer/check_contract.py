#!/usr/bin/env python3
"""Checks the Python peer against the contract's samples (tests/fixtures/contract/): every valid
event accepted, every invalid record given its reason code, the KPL event's user records read.
scripts/bench runs it before measuring, so that the peer it compares with is a complete one.

usage: check_contract.py   (from the repository's root; exits 1 on a mismatch)
"""
import base64
import json
import os
import sys

os.environ.setdefault("ANALYTICS_BUCKET", "unused")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import handler  # noqa: E402 (after the path)

SAMPLES = "tests/fixtures/contract"
VALID_ARRIVAL_S = 1_795_439_100  # 2026-11-23T13:05:00Z
INVALID_ARRIVAL_S = 1_795_437_000  # 2026-11-23T12:30:00Z


def outcome(data, arrival_s):
    """The reason codes of a record's user records (`valid` for an accepted one)."""
    record = {"eventID": "shardId-000000000000:1", "kinesis": {
        "data": base64.b64encode(data).decode(), "sequenceNumber": "1", "partitionKey": "k",
        "approximateArrivalTimestamp": arrival_s}}
    codes = []
    for _, _, _, _, arrival_ms, user_data, error in handler.user_records(record):
        try:
            if error:
                raise handler.Rejected("invalid_encoding", error)
            handler.validate(user_data, arrival_ms)
            codes.append("valid")
        except handler.Rejected as r:
            codes.append(r.code)
    return codes


def main():
    wrong = []
    with open(f"{SAMPLES}/valid.ndjson", encoding="utf-8") as f:
        for line in f:
            if (got := outcome(line.strip().encode(), VALID_ARRIVAL_S)) != ["valid"]:
                wrong.append(f"valid sample {line.strip()[:60]}...: {got}")
    with open(f"{SAMPLES}/invalid.ndjson", encoding="utf-8") as f:
        for line in f:
            s = json.loads(line)
            data = base64.b64decode(s["data_base64"]) if "data_base64" in s else s["data"].encode()
            if (got := outcome(data, INVALID_ARRIVAL_S)) != [s["reason_code"]]:
                wrong.append(f"{s['note']}: {got}, not {s['reason_code']}")
    with open(f"{SAMPLES}/kpl-event.json", encoding="utf-8") as f:
        kpl = json.load(f)
    # As the samples' README says: three user records, a corrupt aggregate, a plain record, and
    # an aggregate of two (the second a schema violation).
    got = []
    for record in kpl["Records"]:
        for _, _, sub, key, arrival_ms, data, error in handler.user_records(record):
            try:
                if error:
                    raise handler.Rejected("invalid_encoding", error)
                handler.validate(data, arrival_ms)
                got.append((sub, "valid"))
            except handler.Rejected as r:
                got.append((sub, r.code))
    expected = [(0, "valid"), (1, "valid"), (2, "valid"), (0, "invalid_encoding"), (0, "valid"), (0, "valid"),
                (1, "schema_violation")]
    if got != expected:
        wrong.append(f"kpl-event.json: {got}, not {expected}")
    for w in wrong:
        print(f"peer mismatch: {w}", file=sys.stderr)
    print(f"the peer against the contract samples: {len(wrong)} mismatches", file=sys.stderr)
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()

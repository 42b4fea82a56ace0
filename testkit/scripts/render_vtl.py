"""Renders an API Gateway mapping template (VTL) the way API Gateway does, for the parts our
templates use: $input.path / $input.json on the request body, $util.base64Encode,
$context.requestId and $context.requestTimeEpoch, and the Java String methods length, matches
(the whole string), substring and the Map/List methods get, add and size. Velocity itself is
airspeed (PyPI); its integer `/` floors where Java truncates, which the templates' arithmetic
never meets (it divides non-negative numbers only). moto_server accepts the template but does not
run it.

usage: render_vtl.py [--lines] TEMPLATE REQUEST_ID REQUEST_TIME_EPOCH_MS NAME=VALUE... < BODY.json

The template is a Terraform templatefile: each ${NAME} is replaced by VALUE first. With --lines,
each line of the input is a body and each line of the output its rendered request (as compact
JSON): many requests in one run.
"""

import base64
import json
import re
import sys

import airspeed

# Java's String.matches matches the whole string (airspeed's own matches a prefix).
airspeed.__additional_methods__[str]["matches"] = lambda s, pattern: re.fullmatch(pattern, s) is not None
airspeed.__additional_methods__[str]["substring"] = lambda s, begin, end: s[begin:end]


def json_path(doc, path):
    """`$`, `$.a.b` and `$.a[3]` (what the templates use)."""
    if not path.startswith("$"):
        raise ValueError(f"unsupported JSONPath {path!r}")
    value = doc
    for name, index in re.findall(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]", path[1:]):
        value = value[name] if name else value[int(index)]
    return value


class Input:
    def __init__(self, body):
        self.body = body

    def path(self, p):
        return json_path(self.body, p)

    def json(self, p):
        return json.dumps(json_path(self.body, p), ensure_ascii=False, separators=(",", ":"))


class Util:
    def base64Encode(self, s):  # noqa: N802 (API Gateway's name)
        return base64.b64encode(str(s).encode("utf-8")).decode("ascii")


def main():
    args = sys.argv[1:]
    lines = args[:1] == ["--lines"]
    if lines:
        args = args[1:]
    if len(args) < 3:
        sys.exit("usage: render_vtl.py [--lines] TEMPLATE REQUEST_ID REQUEST_TIME_EPOCH_MS NAME=VALUE... < BODY.json")
    template_path, request_id, request_time = args[0], args[1], int(args[2])
    text = open(template_path, encoding="utf-8").read()
    for assignment in args[3:]:
        name, value = assignment.split("=", 1)
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        sys.exit(f"render_vtl.py: a template variable is not given: {text[text.index('${'):][:40]!r}")
    template = airspeed.Template(text)
    context = {"requestId": request_id, "requestTimeEpoch": request_time}

    def render(body):
        return template.merge({"input": Input(body), "util": Util(), "context": context})

    if lines:
        for line in sys.stdin:
            sys.stdout.write(json.dumps(json.loads(render(json.loads(line))), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render(json.load(sys.stdin)))


if __name__ == "__main__":
    main()

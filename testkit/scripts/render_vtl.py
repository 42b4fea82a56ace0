"""Renders an API Gateway mapping template (VTL) the way API Gateway does, for the parts our
templates use: $input.path / $input.json on the request body, $util.base64Encode and
$context.requestId. Velocity itself is airspeed (PyPI). moto_server accepts the template but
does not run it.

usage: render_vtl.py TEMPLATE STREAM_NAME REQUEST_ID < BODY.json

The template is a Terraform templatefile: ${stream_name} is replaced first.
"""

import base64
import json
import re
import sys

import airspeed


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
    template_path, stream, request_id = sys.argv[1], sys.argv[2], sys.argv[3]
    text = open(template_path, encoding="utf-8").read().replace("${stream_name}", stream)
    body = json.load(sys.stdin)
    rendered = airspeed.Template(text).merge(
        {"input": Input(body), "util": Util(), "context": {"requestId": request_id}}
    )
    sys.stdout.write(rendered)


if __name__ == "__main__":
    main()

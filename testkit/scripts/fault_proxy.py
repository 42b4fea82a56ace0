#!/usr/bin/env python3
"""A small HTTP proxy in front of moto_server that injects S3 errors.

    fault_proxy.py LISTEN_PORT UPSTREAM_PORT

Forwards every request to 127.0.0.1:UPSTREAM_PORT unchanged, except that
`POST /__fault__?after=K&fail=N&status=503&mode=M&writes=W` makes it pass K more requests and
then fail the N after them:

- mode `refuse` (the default): answer with that status (an S3 error body) without forwarding,
  as a throttled or failing S3 would;
- mode `apply`: forward the request, so that S3 applies it, then answer 500 instead of S3's
  answer: the write happened, its reply is lost;
- mode `reset`: forward the request, then reset the connection without answering;
- mode `hang`: forward the request, then never answer (the client is killed meanwhile: a
  Lambda function stopped by its timeout in the middle of a write).

With `writes=1` only writes count and fail (PUT, POST, DELETE: uploads, copies, conditional
creates, deletes); reads pass. `POST /__fault__?...&drop_conditions=1` also strips
`If-None-Match` from every request, as a store without conditional writes ignores it.
`GET /__fault__` returns how many requests are still to fail and how many were failed in all.
"""
import http.client
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
STATE = {"after": 0, "fail": 0, "status": 503, "failed": 0, "mode": "refuse", "writes": False, "drop_conditions": False}
UPSTREAM = ("127.0.0.1", 0)

ERROR_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
LOST_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)
WRITES = ("PUT", "POST", "DELETE")


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def take_fault(self):
        """(mode, status) to fail this request with, or None to forward it."""
        with LOCK:
            if STATE["fail"] <= 0:
                return None
            if STATE["writes"] and self.command not in WRITES:
                return None
            if STATE["after"] > 0:
                STATE["after"] -= 1
                return None
            STATE["fail"] -= 1
            STATE["failed"] += 1
            return STATE["mode"], STATE["status"]

    def reset(self):
        """Closes the connection with a TCP reset, answering nothing."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def forward(self, body):
        """The upstream's answer: (status, body, headers)."""
        drop = {"transfer-encoding"}
        if STATE["drop_conditions"]:
            drop |= {"if-none-match", "if-match"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in drop}
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(*UPSTREAM, timeout=60)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            passed = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "content-length", "connection")]
            return resp.status, data, passed
        finally:
            conn.close()

    def handle_any(self):
        body = self.read_body()
        url = urlsplit(self.path)
        if url.path == "/__fault__":
            with LOCK:
                if self.command == "POST":
                    q = parse_qs(url.query)
                    STATE["after"] = int(q.get("after", ["0"])[0])
                    STATE["fail"] = int(q.get("fail", ["0"])[0])
                    STATE["status"] = int(q.get("status", ["503"])[0])
                    STATE["mode"] = q.get("mode", ["refuse"])[0]
                    STATE["writes"] = q.get("writes", ["0"])[0] == "1"
                    STATE["drop_conditions"] = q.get("drop_conditions", ["0"])[0] == "1"
                answer = f'{{"fail": {STATE["fail"]}, "failed": {STATE["failed"]}}}'.encode()
            return self.reply(200, answer, [("Content-Type", "application/json")])
        fault = self.take_fault()
        if fault is not None and fault[0] == "refuse":
            return self.reply(fault[1], ERROR_BODY, [("Content-Type", "application/xml")])
        status, data, headers = self.forward(body)
        if fault is None:
            return self.reply(status, data, headers)
        if fault[0] == "reset":
            return self.reset()
        if fault[0] == "hang":
            time.sleep(60)
            return self.reset()
        # Applied upstream; the reply is lost.
        self.reply(500, LOST_BODY, [("Content-Type", "application/xml")])

    do_GET = do_PUT = do_POST = do_DELETE = handle_any

    def do_HEAD(self):
        """A HEAD reply has headers only."""
        self.read_body()
        fault = self.take_fault()
        if fault is not None:
            self.send_response(fault[1] if fault[0] == "refuse" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        conn = http.client.HTTPConnection(*UPSTREAM, timeout=60)
        try:
            conn.request("HEAD", self.path, headers=dict(self.headers.items()))
            resp = conn.getresponse()
            resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection"):
                    self.send_header(k, v)
            self.end_headers()
        finally:
            conn.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that hangs up mid-request (a cancelled SDK call) is not an error here."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    global UPSTREAM
    listen, upstream = int(sys.argv[1]), int(sys.argv[2])
    UPSTREAM = ("127.0.0.1", upstream)
    server = Server(("127.0.0.1", listen), Proxy)
    print(f"fault proxy on 127.0.0.1:{listen} -> 127.0.0.1:{upstream}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

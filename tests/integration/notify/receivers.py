"""Loopback stand-ins for the receivers: an HTTP server in a thread that records every request and answers what the
test scripts (WeCom/DingTalk JSON with an errcode, an HTTP status, or a webhook's 200)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """Answers come from `script` in order (then `default`): (HTTP status, JSON body or None)."""

    script: list[tuple[int, Any]] = field(default_factory=list)
    default: tuple[int, Any] = (200, {"errcode": 0, "errmsg": "ok"})
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self) -> tuple[int, Any]:
        return self.script.pop(0) if self.script else self.default

    def bodies(self) -> list[Any]:
        return [r.body for r in self.received]


@contextmanager
def serving(receiver: Receiver, path: str = "/hook") -> Iterator[Receiver]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urllib.parse.urlsplit(self.path)
            with lock:
                receiver.received.append(Received(url.path, dict(urllib.parse.parse_qsl(url.query)),
                                                  {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
                status, body = receiver.answer()
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()

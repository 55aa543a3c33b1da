"""Scripted loopback servers for the interface probes (after urllib3's dummyserver): a server in a thread with
ready/quit events, answering what the test scripts. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.interface.mllp import MllpDecoder, frame

Script = Callable[[socket.socket, threading.Event], None]
"""What the server does with one accepted connection; it should return soon after the quit event is set."""


class LoopbackServer:
    """A TCP listener on 127.0.0.1:<free port>; each connection is handled by `script` in its own thread."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.ready = threading.Event()
        self.quit = threading.Event()
        self.connections = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._serve, name="loopback-accept", daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self._acceptor.start()
        assert self.ready.wait(5), "loopback server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.quit.set()
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        self.ready.set()
        while not self.quit.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            worker = threading.Thread(target=self._handle, args=(conn,), name="loopback-conn", daemon=True)
            self._threads.append(worker)
            worker.start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return
            self.script(conn, self.quit)
        except OSError:
            pass
        finally:
            conn.close()


def close_at_once(conn: socket.socket, quit: threading.Event) -> None:
    """A TCP listener that accepts and hangs up: enough for `tcp`."""


def stay_silent(conn: socket.socket, quit: threading.Event) -> None:
    """A hung service: accepts, reads what comes, never answers until the test ends."""
    conn.settimeout(0.05)
    while not quit.is_set():
        try:
            if conn.recv(65536) == b"":
                return
        except TimeoutError:
            continue


def send_bytes(data: bytes) -> Script:
    """Answer anything with `data` (garbage, a bad frame) and hang up."""

    def script(conn: socket.socket, quit: threading.Event) -> None:
        conn.recv(65536)
        conn.sendall(data)

    return script


def mllp_responder(reply: Callable[[str], bytes], chunk: int = 0) -> Script:
    """Read one MLLP frame, answer with reply(message) as raw bytes; `chunk` > 0 sends it in pieces of that size."""

    def script(conn: socket.socket, quit: threading.Event) -> None:
        decoder = MllpDecoder()
        frames: list[bytes] = []
        while not frames:
            data = conn.recv(65536)
            if not data:
                return
            frames = decoder.feed(data)
        answer = reply(frames[0].decode("utf-8"))
        if chunk <= 0:
            conn.sendall(answer)
            return
        for start in range(0, len(answer), chunk):
            conn.sendall(answer[start : start + chunk])

    return script


def hl7_ack(message: str, code: str, text: str = "", control_id: str | None = None) -> bytes:
    """An MLLP-framed ACK for `message` (the ACK's MSA-2 is its MSH-10 unless `control_id` overrides it)."""
    msh = message.split("\r", 1)[0].split("|")
    msg_control_id = msh[9] if control_id is None else control_id
    ack = "\r".join([
        f"MSH|^~\\&|{msh[4]}|{msh[5]}|{msh[2]}|{msh[3]}|20260101000000||ACK^A19|ACK{msg_control_id}|P|2.4",
        f"MSA|{code}|{msg_control_id}|{text}",
    ]) + "\r"
    return frame(ack.encode("utf-8"))


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_until_quit: bool = False
    """Hold the answer until the server stops (a slow service that trips the probe's timeout)."""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Callable[[Seen], Reply]


class HttpServer:
    """A threaded HTTP(S) server on 127.0.0.1 whose answers are scripted per path; requests are recorded."""

    def __init__(self, routes: dict[str, Reply | Route], tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.seen: list[Seen] = []
        self.quit = threading.Event()
        self.ready = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, dict(self.headers.items()), body)
                outer.seen.append(seen)
                route = outer.routes.get(self.path.split("?", 1)[0])
                reply = Reply(404, b"no such page") if route is None else route if isinstance(route, Reply) else route(seen)
                if reply.delay_until_quit:
                    outer.quit.wait(30)
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_HEAD = do_OPTIONS = _answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self._serve, name="http-loopback", daemon=True)

    def _serve(self) -> None:
        self.ready.set()
        self.httpd.serve_forever(poll_interval=0.05)

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HttpServer:
        self._thread.start()
        assert self.ready.wait(5), "HTTP server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.quit.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path
    not_after: dt.datetime

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


def self_signed_certificate(directory: Path, valid_for: dt.timedelta, name: str = "localhost") -> CertificateFiles:
    """A fresh self-signed certificate for `name` and 127.0.0.1 that expires `valid_for` from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    not_after = now + valid_for
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return CertificateFiles(cert_path, key_path, cert.not_valid_after_utc)


@contextmanager
def dicom_scp(ae_title: str = "PACS", *, require_calling: list[str] | None = None) -> Iterator[int]:
    """A pynetdicom Verification SCP on 127.0.0.1 that rejects a wrong called AE title; yields its port."""
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(Verification)
    ae.require_called_aet = True
    if require_calling is not None:
        ae.require_calling_aet = require_calling
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_ECHO, lambda event: 0x0000)]
    )
    assert server is not None
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def full_backlog() -> Iterator[int]:
    """A listener that never accepts and whose queue is full: the kernel drops new SYNs, so connects hang."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()

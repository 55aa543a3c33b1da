"""A server that poses as PostgreSQL or MySQL, declines TLS and asks for the password in cleartext gets nothing
under the default `tls.plaintext_password: refuse`; with the explicit opt-out it would (which proves the fake
works), and the opt-out is logged. Real drivers (psycopg, psqlODBC, PyMySQL) against scripted loopback servers."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from checks.result import Outcome
from checks.sql.dialects import open_connection
from checks.sql.errors import classify
from checks.sql.target import Target

PASSWORD = "S3cret-monitoring-pw"
pytestmark = pytest.mark.integration


class FakeServer:
    """One-shot loopback server: `speak(conn)` scripts the protocol; every byte received after the password
    request is kept in `after_request`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.after_request = b""
        self.asked = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        self.thread.join(5)

    def _serve(self) -> None:
        self.sock.settimeout(10)
        try:
            while True:
                conn, _ = self.sock.accept()
                with conn:
                    conn.settimeout(3)
                    with contextlib.suppress(OSError):
                        (self._postgres if self.kind == "postgres" else self._mysql)(conn)
        except OSError:
            return

    def _collect(self, conn: socket.socket) -> None:
        self.asked.set()
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            self.after_request += data

    def _postgres(self, conn: socket.socket) -> None:
        length, code = struct.unpack("!II", _recv(conn, 8))
        if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: no
            conn.sendall(b"N")
            length, _ = struct.unpack("!II", _recv(conn, 8))
        _recv(conn, length - 8)  # the startup message
        conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        self._collect(conn)

    def _mysql(self, conn: socket.socket) -> None:
        caps = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000
        salt = b"abcdefghijklmnopqrst"
        body = (b"\x0a5.7.44-fake\x00" + struct.pack("<I", 7) + salt[:8] + b"\x00" + struct.pack("<H", caps & 0xFFFF)
                + b"\x21" + struct.pack("<H", 2) + struct.pack("<H", caps >> 16) + bytes([21]) + b"\x00" * 10
                + salt[8:] + b"\x00" + b"mysql_native_password\x00")
        conn.sendall(_mysql_packet(0, body))
        header = _recv(conn, 4)
        _recv(conn, int.from_bytes(header[:3], "little"))  # the handshake response
        conn.sendall(_mysql_packet(header[3] + 1, b"\xfemysql_clear_password\x00"))
        self._collect(conn)


def _mysql_packet(seq: int, body: bytes) -> bytes:
    return len(body).to_bytes(3, "little") + bytes([seq & 0xFF]) + body


def _recv(conn: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise OSError("closed")
        out += chunk
    return out


@pytest.fixture
def fake_pg() -> Iterator[FakeServer]:
    with FakeServer("postgres") as server:
        yield server


@pytest.fixture
def fake_mysql() -> Iterator[FakeServer]:
    with FakeServer("mysql") as server:
        yield server


def target(dialect: str, port: int, **extra: Any) -> Target:
    return Target.model_validate({"name": "his_db", "dialect": dialect, "host": "127.0.0.1", "port": port,
                                  "database": "his", "user": "xunjian_mon", **extra})


def attempt(t: Target) -> BaseException:
    with pytest.raises(Exception) as info:
        open_connection(t, PASSWORD, 5).close()
    return info.value


@pytest.mark.parametrize("driver", ["native", "odbc"])
def test_fake_postgres_asking_for_a_cleartext_password_receives_nothing(fake_pg: FakeServer, driver: str) -> None:
    exc = attempt(target("postgres", fake_pg.port, driver=driver))
    assert PASSWORD.encode() not in fake_pg.after_request
    assert fake_pg.after_request == b""
    assert classify(exc) in (Outcome.AUTH_FAILED, Outcome.TLS_ERROR)


def test_the_opt_out_sends_it_and_is_logged(fake_pg: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    """The fake is real enough: with the explicit opt-out libpq does send the password."""
    attempt(target("postgres", fake_pg.port, tls={"plaintext_password": "allow"}))
    assert fake_pg.asked.wait(5)
    assert PASSWORD.encode() in fake_pg.after_request
    assert "tls.plaintext_password: allow" in caplog.text


def test_fake_mysql_switching_to_clear_password_receives_nothing(fake_mysql: FakeServer) -> None:
    exc = attempt(target("mysql", fake_mysql.port))
    assert fake_mysql.asked.wait(5)
    assert PASSWORD.encode() not in fake_mysql.after_request
    assert classify(exc) == Outcome.AUTH_FAILED and "nothing was sent" in str(exc)


def test_fake_mysql_gets_it_with_the_opt_out(fake_mysql: FakeServer) -> None:
    attempt(target("mysql", fake_mysql.port, tls={"plaintext_password": "allow"}))
    assert fake_mysql.asked.wait(5)
    assert PASSWORD.encode() in fake_mysql.after_request


def test_no_password_no_restriction_trust_auth_on_this_machines_postgres() -> None:
    """The shared test PostgreSQL uses trust authentication: nothing to protect, so nothing refused."""
    from tests.conftest import require

    conn = None
    try:
        conn = open_connection(Target.model_validate({"name": "local", "dialect": "postgres", "host": "127.0.0.1",
                                                      "port": 5432, "database": "test", "user": "postgres"}),
                               None, 5)
    except Exception as exc:
        require(False, f"PostgreSQL on 127.0.0.1:5432: {exc}")
    assert conn is not None
    conn.close()

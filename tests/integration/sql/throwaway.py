"""Throwaway server instances with settings the shared servers must not be changed to (preloaded
pg_stat_statements; MariaDB with performance_schema and user statistics on), started and removed by tests."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import require


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_service_user(user: str) -> list[str]:
    """Database servers refuse to run as root; when the tests are root, run them as the packaged service user."""
    if os.geteuid() != 0:
        return []
    require(shutil.which("runuser") is not None, "runuser (util-linux) to start a throwaway server as a service user")
    return ["runuser", "-u", user, "--"]


def _workdir(user: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="xj-throwaway-"))
    if os.geteuid() == 0:
        shutil.chown(path, user, user)
    return path


def _wait_port(port: int, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{what} did not start listening on {port}")


@contextmanager
def postgres_cluster(*settings: str) -> Iterator[int]:
    """initdb + pg_ctl start of a private cluster on a free port (trust auth, 127.0.0.1 only); yields the port."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    require(bool(bins), "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl)")
    bindir = Path(bins[-1]).parent
    prefix = _as_service_user("postgres")
    work = _workdir("postgres")
    data = work / "data"
    port = free_port()
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True)
        options = " ".join([f"-p {port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={work}",
                            "-c fsync=off", *(f"-c {s}" for s in settings)])
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(work / "log"), "-w", "start"],
                       check=True, capture_output=True)
        yield port
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def mariadb_instance(*options: str) -> Iterator[int]:
    """mariadb-install-db + mariadbd on a free port with `options`; root without password on 127.0.0.1."""
    install = shutil.which("mariadb-install-db")
    server = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else None)
    require(install is not None and server is not None, "MariaDB server binaries (mariadb-install-db, mariadbd)")
    assert install is not None and server is not None
    prefix = _as_service_user("mysql")
    work = _workdir("mysql")
    data = work / "data"
    port = free_port()
    user = ["--user=mysql"] if os.geteuid() == 0 else []
    proc = None
    try:
        subprocess.run([*prefix, install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
                        "--skip-test-db", *user], check=True, capture_output=True)
        proc = subprocess.Popen(
            [*prefix, server, "--no-defaults", f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1",
             f"--socket={work}/mysqld.sock", f"--pid-file={work}/mysqld.pid", "--skip-log-bin", "--innodb-buffer-pool-size=16M",
             *user, *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_port(port, "throwaway mariadbd")
        yield port
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)

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


def _pg_bindir() -> Path:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    require(bool(bins), "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl)")
    return Path(bins[-1]).parent


class PgCluster:
    """One private cluster in `work` on its own port, started and stopped by the test (trust auth, 127.0.0.1)."""

    def __init__(self, work: Path, name: str, settings: tuple[str, ...] = ()) -> None:
        self.bindir = _pg_bindir()
        self.prefix = _as_service_user("postgres")
        self.work = work
        self.data = work / name
        self.log = work / f"{name}.log"
        self.port = free_port()
        self.settings = settings

    def run(self, program: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.prefix, str(self.bindir / program), *args], check=True, capture_output=True,
                              timeout=timeout)

    def initdb(self) -> PgCluster:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        return self

    def start(self) -> PgCluster:
        options = " ".join([f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.work}",
                            "-c fsync=off", *(f"-c {s}" for s in self.settings)])
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                       capture_output=True, timeout=120)

    def conninfo(self, dbname: str = "postgres") -> dict[str, object]:
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres", "dbname": dbname}


def scratch(user: str = "postgres") -> Path:
    """A temporary directory the database server's user may write (removed by the caller)."""
    return _workdir(user)


def give(path: Path, user: str = "postgres") -> Path:
    """Hand a file or directory the test made to the server's user (when the tests run as root)."""
    if os.geteuid() == 0:
        shutil.chown(path, user, user)
    return path


@contextmanager
def postgres_cluster(*settings: str) -> Iterator[int]:
    """initdb + pg_ctl start of a private cluster on a free port (trust auth, 127.0.0.1 only); yields the port."""
    work = _workdir("postgres")
    cluster = PgCluster(work, "data", settings)
    try:
        cluster.initdb().start()
        yield cluster.port
    finally:
        cluster.stop("immediate")
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def mariadb_instance(*options: str) -> Iterator[int]:
    """mariadb-install-db + mariadbd on a free port with `options`; root without password on 127.0.0.1.

    Each instance gets its own tmpdir: every mariadbd start (mariadb-install-db's bootstrap included) deletes
    all `#sql*` files in its tmpdir, and in /tmp those are the internal temporary tables of the machine's
    shared MariaDB still in use. A MariaDB 10.11 that finds a temporary table it just created gone crashes
    (signal 11 in ha_maria::drop_table; docs/databases.md, "MariaDB information_schema and views")."""
    install = shutil.which("mariadb-install-db")
    server = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else None)
    require(install is not None and server is not None, "MariaDB server binaries (mariadb-install-db, mariadbd)")
    assert install is not None and server is not None
    prefix = _as_service_user("mysql")
    work = _workdir("mysql")
    data = work / "data"
    tmpdir = work / "tmp"
    tmpdir.mkdir()
    give(tmpdir, "mysql")
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    port = free_port()
    user = ["--user=mysql"] if os.geteuid() == 0 else []
    proc = None
    try:
        subprocess.run([*prefix, install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
                        "--skip-test-db", f"--tmpdir={tmpdir}", *user], check=True, capture_output=True, env=env)
        proc = subprocess.Popen(
            [*prefix, server, "--no-defaults", f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1",
             f"--socket={work}/mysqld.sock", f"--pid-file={work}/mysqld.pid", f"--tmpdir={tmpdir}",
             *(() if any(o.startswith("--log-bin") for o in options) else ("--skip-log-bin",)),
             "--innodb-buffer-pool-size=16M",
             *user, *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
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

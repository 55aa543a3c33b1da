"""Real collector and agent processes over real TLS: enrollment with single-use tokens, streaming over mTLS,
renewal across restarts, refused tokens and revoked certificates, the server certificate rotated while agents
stream, a reinstalled agent's backlog delivered, audit verify catching an edited row, and no secret anywhere."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.harness import Collector, Fleet, free_port, steady_pack, wait_for

pytestmark = pytest.mark.e2e


def secure_collector(fleet: Fleet, *, agent_ttl: str = "1h", history: str = "all") -> Collector:
    enroll = free_port()
    c = fleet.collector(history=history, lost_after="30s",
                        tls=f"{{dir: {fleet.root / 'pki'}, server_names: [127.0.0.1, localhost], "
                            f"agent_cert_ttl: {agent_ttl}}}",
                        http_auth="{auth: tokens}", extra="ingest: {hello_timeout: 5s}\n")
    assert c.config is not None
    text = c.config.read_text().replace('listen: {', f'listen: {{enroll: "127.0.0.1:{enroll}", ', 1)
    c.config.write_text(text)
    c.cli("ca", "init", "--config", str(c.config))
    c.token = c.cli("tokens", "create", "--name", "e2e-admin", "--role", "admin", "--config", str(c.config)).stdout.strip()
    c.enroll = f"127.0.0.1:{enroll}"
    return c


def enroll(c: Collector, agent_id: str, *extra: str) -> str:
    assert c.config is not None
    return c.cli("agents", "enroll", agent_id, *extra).stdout.strip()


def secure_agent(fleet: Fleet, c: Collector, agent_id: str, token: str, *, pack: str | None = None):  # type: ignore[no-untyped-def]
    adir = fleet.root / agent_id
    adir.mkdir(exist_ok=True)
    (adir / "enroll.token").write_text(token + "\n")
    shutil.copy(fleet.root / "pki" / "ca.crt", adir / "ca.crt")
    return fleet.agent(agent_id, [c.grpc], pack or steady_pack(3, "200ms"),
                       tls=f"{{enroll_address: \"{c.enroll}\"}}")


def seqs_contiguous(c: Collector, agent_id: str) -> list[int]:
    seqs = [int(r["seq"]) for r in c.results(agent_id)]
    assert seqs == list(range(1, len(seqs) + 1)), f"lost or doubled: {sorted(set(range(1, len(seqs) + 1)) - set(seqs))[:10]}"
    return seqs


def test_enrolled_agents_stream_over_mtls_renew_across_restarts_and_survive_rotation(fleet: Fleet) -> None:
    c = secure_collector(fleet, agent_ttl="24s")
    c.start()
    c.wait_healthy()
    agent = secure_agent(fleet, c, "his-app-01", enroll(c, "his-app-01")).start()
    wait_for(lambda: c.high_water("his-app-01") > 20, timeout=30, what="results over mTLS")
    assert "agent his-app-01 enrolled" in c.output()

    # renewal over mTLS at about 2/3 of the certificate's life, then the agent restarts on its renewed certificate
    wait_for(lambda: any(r["how"] == "renew" for r in c.get("/api/v1/certificates")), timeout=40,
             what="a renewal")
    agent.stop()
    agent.start()
    mark = c.high_water("his-app-01")
    wait_for(lambda: c.high_water("his-app-01") > mark + 10, timeout=30, what="streaming after the agent's restart")
    assert "his-app-01 enrolled:" not in agent.output().split("agent his-app-01 renewed")[-1], "it enrolled again"
    c.stop()
    c.start()
    c.wait_healthy()
    mark = c.high_water("his-app-01")
    wait_for(lambda: c.high_water("his-app-01") > mark + 10, timeout=30, what="streaming after the collector's restart")

    # the server certificate rotated while the agent streams: taken at the next handshake, nothing lost
    before = ssl.get_server_certificate((c.enroll.split(":")[0], int(c.enroll.split(":")[1])))
    assert c.config is not None
    c.cli("ca", "rotate-server", "--config", str(c.config))
    mark = c.high_water("his-app-01")
    wait_for(lambda: c.high_water("his-app-01") > mark + 10, timeout=30, what="streaming across the rotation")
    after = ssl.get_server_certificate((c.enroll.split(":")[0], int(c.enroll.split(":")[1])))
    assert after != before, "the new server certificate is served without a restart"
    assert "server certificate reloaded" in c.output()
    agent.stop()
    agent.start()  # a fresh handshake against the rotated certificate
    mark = c.high_water("his-app-01")
    wait_for(lambda: c.high_water("his-app-01") > mark + 10, timeout=30, what="a new connection after the rotation")
    agent.stop()
    seqs_contiguous(c, "his-app-01")


def test_reused_and_expired_tokens_and_revoked_certificates_are_refused(fleet: Fleet) -> None:
    c = secure_collector(fleet)
    c.start()
    c.wait_healthy()
    token = enroll(c, "his-app-01")
    first = secure_agent(fleet, c, "his-app-01", token).start()
    wait_for(lambda: c.high_water("his-app-01") > 5, timeout=30, what="the first agent streaming")

    # the same token again, by another host claiming the same id
    reuse = fleet.root / "reuse"
    reuse.mkdir()
    second = secure_agent(fleet, c, "reuse", token)
    (fleet.root / "reuse" / "agent.yaml").write_text((fleet.root / "reuse" / "agent.yaml").read_text()
                                                     .replace("id: reuse", "id: his-app-01"))
    second.start()
    wait_for(lambda: "already used" in second.output(), timeout=30, what="the reused token refused")

    # an expired token
    late = enroll(c, "lis-app-02", "--expires", "1s")
    time.sleep(1.5)
    third = secure_agent(fleet, c, "lis-app-02", late).start()
    wait_for(lambda: "has expired" in third.output(), timeout=30, what="the expired token refused")

    # revoked: the running agent's next stream is refused, and so is its renewal
    c.cli("agents", "revoke", "his-app-01", "--reason", "host reinstalled by an unknown party")
    first.stop()
    first.start()
    wait_for(lambda: "revoked" in first.output().split("agent his-app-01 started")[-1], timeout=30,
             what="the revoked certificate refused")
    actions = [e["action"] for e in c.get("/api/v1/audit?limit=100")]
    assert {"agent.enroll", "agent.enrolled", "agent.enroll_refused", "agent.revoke"} <= set(actions)
    for p in (first, second, third):
        p.stop()


def test_a_reinstalled_agent_delivers_its_whole_backlog(fleet: Fleet) -> None:
    """Regression: a new spool under the same id restarted at seq 1 and its queued results were dropped."""
    c = secure_collector(fleet)
    c.start()
    c.wait_healthy()
    agent = secure_agent(fleet, c, "his-app-01", enroll(c, "his-app-01")).start()
    wait_for(lambda: c.high_water("his-app-01") > 30, timeout=30, what="the first life's results")
    agent.stop()
    c.stop()
    spool = fleet.root / "his-app-01" / "spool.db"
    for f in spool.parent.glob("spool.db*"):
        f.unlink()
    agent.start()  # reinstalled: same identity, new spool; results queue while the collector is down

    def queued() -> int:
        if not spool.exists():
            return 0
        with sqlite3.connect(spool) as db:
            try:
                return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    wait_for(lambda: queued() >= 20, timeout=30, what="a backlog in the new spool")
    agent.stop()
    with sqlite3.connect(spool) as db:
        backlog = int(db.execute("SELECT MAX(seq) FROM results").fetchone()[0])
    c.start()
    c.wait_healthy()
    agent.start()
    wait_for(lambda: "has a new spool" in c.output(), timeout=30, what="the new incarnation recognised")
    wait_for(lambda: c.high_water("his-app-01") >= backlog, timeout=30, what="the whole backlog delivered")
    agent.stop()
    history = c.results("his-app-01")
    assert len({r["seq"] for r in history}) == len(history), "two results share a stored seq"


def test_audit_verify_detects_an_edited_row_and_no_secret_leaks(fleet: Fleet) -> None:
    """After runs with failing DB passwords, tokens and robot-key-like secrets, none of them is in the logs, the
    store, the API's answers or /metrics; `xunjian audit verify` names an edited row."""
    db_password = "Zz9-db-password-never-shown"
    robot_key = "c0ffee00-robot-key-never-shown"
    c = secure_collector(fleet)
    c.start()
    c.wait_healthy()
    token = enroll(c, "his-app-01")
    pack = (
        "pack: leak\nchecks:\n"
        "  - {id: leak.db, kind: sql.metric, target: his_db, interval: 500ms, query: {postgres: 'SELECT 1 AS value'}}\n"
        f"  - {{id: leak.web, kind: http, url: 'http://127.0.0.1:9/hook?key={robot_key}', interval: 500ms}}\n"
    )
    agent = secure_agent(fleet, c, "his-app-01", token, pack=pack)
    cfg = fleet.root / "his-app-01" / "agent.yaml"
    port = free_port()
    cfg.write_text(cfg.read_text() + (
        f"targets:\n  his_db: {{dialect: postgres, host: 127.0.0.1, port: {port}, database: his, user: xunjian_mon,"
        " password_env: XJ_LEAK_PW}\n"))
    os.environ["XJ_LEAK_PW"] = db_password
    try:
        agent.start()
        wait_for(lambda: c.high_water("his-app-01") > 6, timeout=40, what="failing checks reported")
    finally:
        os.environ.pop("XJ_LEAK_PW", None)
    viewer = c.cli("tokens", "create", "--name", "wall", "--role", "viewer").stdout.strip()
    c.cli("tokens", "revoke", "wall")
    agent.stop()
    answers = "".join(c.text(p) for p in ("/api/v1/checks", "/api/v1/agents", "/api/v1/incidents?status=all",
                                          "/api/v1/audit?limit=1000", "/api/v1/tokens", "/metrics"))
    store = b"".join(f.read_bytes() for f in fleet.root.glob("collector.db*"))
    logs = c.output() + agent.output()
    for secret in (db_password, viewer, c.token, token):
        assert secret not in answers and secret.encode() not in store and secret not in logs, secret[:6]
    assert robot_key not in c.text("/api/v1/checks") + c.text("/metrics")

    assert c.cli("audit", "verify").returncode == 0
    c.stop()
    db = sqlite3.connect(fleet.root / "collector.db")
    db.execute("UPDATE audit SET actor = 'someone-else' WHERE action = 'token.revoke'")
    db.commit()
    db.close()
    c.start()
    c.wait_healthy()
    broken = c.cli("audit", "verify", check=False)
    assert broken.returncode == 1 and "was edited" in broken.stdout
    export = c.cli("audit", "export").stdout.splitlines()
    assert [json.loads(line)["action"] for line in export][:2] == ["token.create", "agent.enroll"]


def test_console_signed_in_in_headless_chromium(fleet: Fleet, tmp_path: Path) -> None:
    from tests.conftest import require

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    require(chromium is not None, "chromium (apt: chromium)")
    assert chromium is not None
    c = fleet.collector(http_auth="{auth: tokens}")
    assert c.config is not None
    c.token = c.cli("tokens", "create", "--name", "oncall", "--role", "operator", "--config",
                    str(c.config)).stdout.strip()
    c.start()
    c.wait_healthy()
    fleet.agent("his-app-01", [c.grpc], steady_pack(3, "200ms")).start()
    wait_for(lambda: c.high_water("his-app-01") > 5, timeout=30, what="results")
    shot = Path(os.environ.get("XUNJIAN_SCREENSHOT_DIR", str(tmp_path))) / "console-signed-in.png"
    script = ROOT / "tests" / "e2e" / "console_signin.py"
    done = subprocess.run([sys.executable, str(script), chromium, f"http://{c.http}/", c.token, str(shot)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "oncall (operator)" in done.stdout and "his-app-01" in done.stdout
    assert shot.stat().st_size > 10_000

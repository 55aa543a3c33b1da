"""E-mail through a real SMTP server (aiosmtpd: STARTTLS with the hospital's own CA, login), and alerts pushed to a
real Alertmanager (Debian's prometheus-alertmanager) that shows them in its own API, firing then resolved."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import json
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from collector.events import CheckRule
from tests.conftest import require
from tests.e2e.harness import Fleet, wait_for
from tests.e2e.promstack import ALERTMANAGER, serve
from tests.integration.interface.servers import self_signed_certificate
from tests.integration.notify.conftest import CONSOLE, Rig

pytestmark = pytest.mark.integration
SMTP_PASSWORD = "smtp-pass-0b7e51"


@dataclass
class Mailbox:
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[int, Mailbox, Path]]:
    pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert = self_signed_certificate(tmp_path, dt.timedelta(days=1), name="mail.hospital.local")
    box = Mailbox()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            box.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=auth_data.password.decode() == SMTP_PASSWORD, handled=False)
        return AuthResult(success=False, handled=False)

    port = free_port()
    loop = asyncio.new_event_loop()
    controller = Controller(box, hostname="127.0.0.1", port=port, loop=loop, tls_context=cert.server_context(),
                            require_starttls=True, authenticator=authenticate, auth_required=True)
    controller.start()
    try:
        yield port, box, cert.cert
    finally:
        controller.stop()
        loop.close()


def test_email_over_starttls_with_login(rig: Rig, smtp: tuple[int, Mailbox, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    port, box, ca = smtp
    monkeypatch.setenv("XJ_SMTP_PASSWORD", SMTP_PASSWORD)
    n = rig.notifier({"receivers": [{"name": "mail", "type": "email", "host": "127.0.0.1", "port": port,
                                     "security": "starttls", "ca_file": str(ca), "username": "xunjian",
                                     "password_env": "XJ_SMTP_PASSWORD", "from": "xunjian@hospital.local",
                                     "to": ["oncall@hospital.local", "dba@hospital.local"]}],
                      "routes": [{"receivers": ["mail"]}]})
    rig.agent([CheckRule("his.db.tablespace", title="表空间", priority="medium", system="HIS", target="his_db",
                         runbook="扩表空间：见运维手册 3.2")])
    rig.send(("his.db.tablespace", 2, "USERS 96% used"), target="his_db")
    rig.clock.now += 31
    assert n.run_once() == (1, 1)
    (row,) = rig.store.list_notifications({}, 10)
    assert row["state"] == "sent" and row["attempts_detail"][0]["status"] == "SMTP 250"
    assert box.logins == [("xunjian", SMTP_PASSWORD)]
    (msg,) = box.messages
    assert msg["Subject"] == "[巡检·故障] 表空间 CRITICAL on his-db-01 his_db"
    assert msg["To"] == "oncall@hospital.local, dba@hospital.local" and msg["From"] == "xunjian@hospital.local"
    body = msg.get_content()
    for line in ("主机: his-db-01.hospital.local", "检查: his.db.tablespace (his_db)", "状态: CRITICAL",
                 "摘要: USERS 96% used", "处理手册: 扩表空间：见运维手册 3.2", f"控制台: {CONSOLE}/#incident-1"):
        assert line in body
    assert SMTP_PASSWORD not in repr(rig.store.list_notifications({}, 10))


def test_email_with_a_wrong_password_is_a_recorded_failure(rig: Rig, smtp: tuple[int, Mailbox, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    port, box, ca = smtp
    monkeypatch.setenv("XJ_SMTP_PASSWORD", "wrong-password")
    n = rig.notifier({"receivers": [{"name": "mail", "type": "email", "host": "127.0.0.1", "port": port,
                                     "ca_file": str(ca), "username": "xunjian", "password_env": "XJ_SMTP_PASSWORD",
                                     "from": "x@hospital.local", "to": ["y@hospital.local"]}],
                      "routes": [{"receivers": ["mail"]}]})
    rig.agent([CheckRule("c")])
    rig.send(("c", 2, "bad"))
    rig.clock.now += 31
    n.run_once()
    (row,) = rig.store.list_notifications({}, 10)
    assert row["state"] == "queued" and row["attempts_detail"][0]["status"] == "SMTP 535"
    assert box.messages == [] and "wrong-password" not in repr(row)


def am_alerts(address: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://{address}/api/v2/alerts?active=true&silenced=true&inhibited=true",
                                timeout=5) as resp:
        return list(json.loads(resp.read()))


def test_alerts_reach_a_real_alertmanager(rig: Rig, tmp_path: Path) -> None:
    require(ALERTMANAGER is not None, "prometheus-alertmanager (scripts/test-deps.sh installs it)")
    fleet = Fleet(tmp_path / "am")
    fleet.root.mkdir()
    try:
        address = serve(fleet, "alertmanager", ALERTMANAGER, {
            "route": {"receiver": "null", "group_wait": "0s"}, "receivers": [{"name": "null"}]},
            ["--config.file={config}", "--storage.path={data}", "--web.listen-address={address}",
             "--cluster.listen-address="])
        rig.clock.now = dt.datetime.now().timestamp() - 120  # behind the wall clock: the resolution is in the past
        n = rig.notifier({"receivers": [{"name": "am", "type": "alertmanager", "url": f"http://{address}"}],
                          "routes": [{"receivers": ["am"]}]})
        rig.agent([CheckRule("pacs.dicom", title="PACS DICOM echo", priority="high", system="PACS", kind="dicom")],
                  labels={"system": "PACS"})
        rig.send(("pacs.dicom", 2, "association rejected"))
        rig.clock.now += 31
        assert n.run_once() == (1, 1)
        (alert,) = wait_for(lambda: am_alerts(address), timeout=20, what="the alert in Alertmanager")
        assert alert["status"]["state"] == "active"
        assert {k: alert["labels"][k] for k in ("alertname", "system", "priority", "check", "incident_id")} == {
            "alertname": "XunjianIncident", "system": "PACS", "priority": "high", "check": "pacs.dicom",
            "incident_id": "1"}
        assert alert["annotations"]["console"] == f"{CONSOLE}/#incident-1"
        assert alert["annotations"]["status"] == "CRITICAL"
        assert alert["generatorURL"] == f"{CONSOLE}/#incident-1"
        assert n.refresh_alertmanagers() == 1, "open incidents are posted again so Alertmanager keeps them firing"
        rig.send(("pacs.dicom", 0, "echo ok"))
        rig.clock.now += 1
        n.run_once()
        wait_for(lambda: not am_alerts(address), timeout=20, what="the alert resolved in Alertmanager")
    finally:
        fleet.stop_all()

"""Every channel against a real receiver on loopback: exact payloads, the DingTalk signature checked independently,
errcode answers that count as failures and are retried, the 20-a-minute robot limit under a burst, a receiver
that fails three times then succeeds, and no secret in the store, the API rows or the log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from typing import Any

import pytest

from collector.events import CheckRule
from tests.integration.notify.conftest import CONSOLE, T0, Rig
from tests.integration.notify.receivers import Receiver, serving

pytestmark = pytest.mark.integration

WECOM_KEY = "wecom-key-6f1d2c0e"
DING_TOKEN = "ding-token-93ab77"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"


def fail_disk(rig: Rig) -> None:
    rig.agent([CheckRule("his.disk.data", title="Data disk", kind="host.disk", priority="high", system="HIS",
                         runbook="https://wiki.hospital.local/runbooks/disk")])
    rig.send(("his.disk.data", 2, "/data 97.1% used"))


def test_webhook_gets_our_json_exactly(rig: Rig) -> None:
    with serving(Receiver()) as hook:
        n = rig.notifier({"receivers": [{"name": "ops", "type": "webhook", "url": hook.url}],
                          "routes": [{"receivers": ["ops"]}]}, language="en")
        fail_disk(rig)
        rig.clock.now += 31
        assert n.run_once() == (1, 1)
    (body,) = hook.bodies()
    incident = body["incidents"][0]
    assert {k: body[k] for k in ("version", "receiver", "group_key", "status", "title")} == {
        "version": "1", "receiver": "ops", "group_key": "firing|agent=his-db-01,target=", "status": "firing",
        "title": "[Xunjian·FIRING] Data disk CRITICAL on his-db-01"}
    assert body["text"].splitlines() == [
        "[Xunjian·FIRING] Data disk CRITICAL on his-db-01", "",
        "Host: his-db-01.hospital.local", "Check: his.disk.data", "Status: CRITICAL", "Priority: high",
        "System: HIS", "Summary: /data 97.1% used", "Opened: 2026-12-02 10:00:00",
        "Response due: 2026-12-02 10:15:00", "Resolution due: 2026-12-03 10:00:00",
        "Runbook: https://wiki.hospital.local/runbooks/disk", f"Console: {CONSOLE}/#incident-1",
        "acknowledge: xunjian incidents ack 1"]
    assert (incident["id"], incident["event"], incident["severity"], incident["url"]) == (
        1, "opened", "CRITICAL", f"{CONSOLE}/#incident-1")


def test_webhook_in_alertmanager_v4_shape(rig: Rig) -> None:
    with serving(Receiver()) as hook:
        n = rig.notifier({"receivers": [{"name": "am-style", "type": "webhook", "url": hook.url,
                                         "format": "alertmanager"}], "routes": [{"receivers": ["am-style"]}]})
        fail_disk(rig)
        rig.clock.now += 31
        n.run_once()
        rig.send(("his.disk.data", 0, "/data 60% used"))
        n.run_once()
    firing, resolved = hook.bodies()
    labels = {"alertname": "XunjianIncident", "incident_id": "1", "system": "HIS", "priority": "high",
              "host": "his-db-01.hospital.local", "agent": "his-db-01", "check": "his.disk.data",
              "incident_kind": "check"}
    assert firing["version"] == "4" and firing["status"] == "firing" and firing["receiver"] == "am-style"
    assert firing["commonLabels"] == labels and firing["externalURL"] == CONSOLE
    alert = firing["alerts"][0]
    assert alert["labels"] == labels and alert["startsAt"] == "2026-12-02T02:00:00.000Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z" and len(alert["fingerprint"]) == 16
    assert alert["annotations"]["summary"] == "Data disk CRITICAL on his-db-01"
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] == "2026-12-02T02:00:31.000Z"
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"], "the same alert, resolved"
    assert alert["annotations"]["status"] == "CRITICAL" and resolved["alerts"][0]["annotations"]["status"] == "OK"


def test_wecom_markdown_and_text_with_mentions(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XJ_WECOM", WECOM_KEY)
    with serving(Receiver()) as robot, serving(Receiver()) as texter:
        n = rig.notifier({"receivers": [
            {"name": "wx", "type": "wecom", "url": robot.url, "key_env": "XJ_WECOM"},
            {"name": "wx-text", "type": "wecom", "url": texter.url, "key_env": "XJ_WECOM", "msgtype": "text",
             "mention_mobiles": ["13800000000"], "mention_all": True}],
            "routes": [{"receivers": ["wx", "wx-text"]}]})
        fail_disk(rig)
        rig.clock.now += 31
        assert n.run_once() == (2, 2)
    (md,) = robot.received
    assert md.query == {"key": WECOM_KEY} and md.headers["content-type"].startswith("application/json")
    assert md.body["msgtype"] == "markdown"
    content = md.body["markdown"]["content"]
    assert content.splitlines()[:4] == [
        "### [巡检·故障] Data disk CRITICAL on his-db-01", "",
        '**<font color="warning">#1 故障</font>** Data disk CRITICAL on his-db-01',
        "> 主机: his-db-01.hospital.local"]
    assert "> 处理手册: [https://wiki.hospital.local/runbooks/disk](https://wiki.hospital.local/runbooks/disk)" in content
    assert f"> 控制台: [{CONSOLE}/#incident-1]({CONSOLE}/#incident-1)" in content
    (text,) = texter.bodies()
    assert text["msgtype"] == "text" and text["text"]["mentioned_mobile_list"] == ["13800000000", "@all"]
    assert "响应期限: 2026-12-02 10:15:00" in text["text"]["content"]


def sign_of(timestamp: str, secret: str) -> str:
    """DingTalk's documented algorithm, written out here so the channel's own code is not checking itself."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), digestmod=hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("utf-8")


def test_dingtalk_signed_with_keywords_and_an_errcode_failure_retried(
        rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("XJ_DING_TOKEN", DING_TOKEN)
    secret_file = rig.base_dir / "ding.secret"
    secret_file.write_text(DING_SECRET + "\n", encoding="utf-8")
    keyword_refused = (200, {"errcode": 310000, "errmsg": "keywords not in content"})
    with serving(Receiver(script=[keyword_refused])) as robot:
        n = rig.notifier({"receivers": [{"name": "dd", "type": "dingtalk", "url": robot.url,
                                         "token_env": "XJ_DING_TOKEN", "secret_file": str(secret_file),
                                         "keywords": ["告警"], "mention_mobiles": ["13900000000"]}],
                          "routes": [{"receivers": ["dd"]}]})
        fail_disk(rig)
        rig.clock.now += 31
        with caplog.at_level(logging.INFO, logger="xunjian"):
            assert n.run_once() == (1, 1)
            (row,) = rig.store.list_notifications({}, 10)
            assert (row["state"], row["attempts"]) == ("queued", 1), "HTTP 200 with errcode 310000 is a failure"
            assert row["last_error"].startswith("HTTP 200 errcode 310000")
            rig.clock.now += 4
            assert n.run_once() == (0, 0), "not before the backoff"
            rig.clock.now += 2
            assert n.run_once() == (0, 1)
    first, second = robot.received
    for req in (first, second):
        assert req.query["access_token"] == DING_TOKEN
        assert req.query["sign"] == sign_of(req.query["timestamp"], DING_SECRET)
        assert abs(int(req.query["timestamp"]) / 1000 - rig.clock.now) < 10
    assert second.body["msgtype"] == "markdown" and second.body["at"] == {"atMobiles": ["13900000000"],
                                                                            "isAtAll": False}
    assert second.body["markdown"]["title"].startswith("告警 [巡检·故障]"), "the keyword is added"
    assert second.body["markdown"]["text"].endswith("@13900000000")
    (row,) = rig.store.list_notifications({}, 10)
    assert (row["state"], row["attempts"]) == ("sent", 2)
    stored = repr(rig.store.list_notifications({}, 10)) + repr(rig.store.get_incident(1)) + caplog.text
    for secret in (DING_TOKEN, DING_SECRET):
        assert secret not in stored, "no secret in the store, the API rows or the log"


def test_fails_three_times_then_succeeds_once_with_four_attempts(rig: Rig) -> None:
    with serving(Receiver(script=[(500, {"error": "busy"})] * 3, default=(200, None))) as hook:
        n = rig.notifier({"receivers": [{"name": "ops", "type": "webhook", "url": hook.url}],
                          "routes": [{"receivers": ["ops"]}], "retry": {"initial": "5s", "max": "1m"}})
        fail_disk(rig)
        rig.clock.now += 31
        waits = []
        for _ in range(60):
            _, made = n.run_once()
            (row,) = rig.store.list_notifications({}, 10)
            if row["state"] == "sent":
                break
            if made:
                waits.append(row["next_attempt_at"] - rig.clock.now)
            rig.clock.now += 1
    assert waits == [5.0, 10.0, 20.0], "backoff doubles"
    assert len(hook.received) == 4
    assert len({repr(b) for b in hook.bodies()}) == 1, "the same message each time"
    (row,) = rig.store.list_notifications({}, 10)
    assert (row["state"], row["attempts"]) == ("sent", 4)
    assert [(a["ok"], a["status"]) for a in row["attempts_detail"]] == [
        (0, "HTTP 500"), (0, "HTTP 500"), (0, "HTTP 500"), (1, "HTTP 200")]
    assert n.stats["ops"].sent == 1 and n.stats["ops"].failed == 3
    incident = rig.store.get_incident(1)
    assert incident is not None and [e["event"] for e in incident["timeline"]][-1] == "notified"


def test_gives_up_after_give_up_after(rig: Rig) -> None:
    with serving(Receiver(default=(503, None))) as hook:
        n = rig.notifier({"receivers": [{"name": "ops", "type": "webhook", "url": hook.url}],
                          "routes": [{"receivers": ["ops"]}],
                          "retry": {"initial": "10s", "max": "10s", "give_up_after": "30s"}})
        fail_disk(rig)
        rig.clock.now += 31
        for _ in range(6):
            n.run_once()
            rig.clock.now += 10
    (row,) = rig.store.list_notifications({}, 10)
    assert row["state"] == "failed" and row["attempts"] == 4
    assert not n.health().ok and "ops" in n.health().detail


def test_the_robot_limit_of_20_a_minute_under_a_burst(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fifty incidents on fifty databases within one group wait: a robot gets at most 20 messages a minute, and
    every incident reaches it (the rest grouped into one digest)."""
    monkeypatch.setenv("XJ_WECOM", WECOM_KEY)
    rig.agent([CheckRule(f"db{i}.up", target=f"db{i}", priority="high") for i in range(50)])
    with serving(Receiver()) as robot:
        n = rig.notifier({"receivers": [{"name": "wx", "type": "wecom", "url": robot.url, "key_env": "XJ_WECOM"}],
                          "routes": [{"receivers": ["wx"]}]})
        for i in range(50):
            rig.send((f"db{i}.up", 2, "connection refused"), target=f"db{i}")
        sent_at: list[float] = []
        rig.clock.now += 31
        for _ in range(180):
            before = len(robot.received)
            n.run_once()
            sent_at += [rig.clock.now] * (len(robot.received) - before)
            rig.clock.now += 1
    for t in sent_at:
        assert sum(1 for s in sent_at if t <= s < t + 60) <= 20
    told = {int(m) for body in robot.bodies() for m in re.findall(r"#(\d+) 故障", body["markdown"]["content"])}
    assert told == set(range(1, 51)) and len(sent_at) == 20, "19 groups and one digest of the other 31"
    assert "发送频率受限，合并发送" in robot.bodies()[-1]["markdown"]["content"]


def test_errcode_too_fast_waits_a_minute(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XJ_DING_TOKEN", DING_TOKEN)
    too_fast: tuple[int, Any] = (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
    with serving(Receiver(script=[too_fast])) as robot:
        n = rig.notifier({"receivers": [{"name": "dd", "type": "dingtalk", "url": robot.url,
                                         "token_env": "XJ_DING_TOKEN"}], "routes": [{"receivers": ["dd"]}]})
        fail_disk(rig)
        rig.clock.now += 31
        n.run_once()
    (row,) = rig.store.list_notifications({}, 10)
    assert row["next_attempt_at"] - rig.clock.now == 60.0 and row["created_at"] > T0

"""What a message says, in Chinese (default) or English: title, a plain-text and a markdown body, and the
Alertmanager shapes (webhook v4 and the v2 API's alerts) of the same incidents.

A message carries one or more incidents (a group, or a digest when a receiver's rate limit is reached). Each shows
host, check, status, summary, runbook and a link to the console. Pure functions of the message content, the
language, the console URL and the time zone, so every channel's exact payload can be asserted in tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

Item = Mapping[str, Any]
ALERTNAME = "XunjianIncident"
COMPACT_FROM = 6
"""A message about this many incidents or more shows one line each (robots take 2–4 KB), then the console link."""
FIRING_EVENTS = ("opened", "reopened", "released", "repeat", "escalated", "resolution_overdue")

_TEXT = {
    "zh": {
        "brand": "巡检", "opened": "故障", "reopened": "再次故障", "released": "故障", "repeat": "未确认提醒",
        "escalated": "升级", "resolution_overdue": "超过解决期限", "resolved": "已恢复",
        "high": "高", "medium": "中", "low": "低",
        "host": "主机", "check": "检查", "status": "状态", "priority": "优先级", "system": "系统", "summary": "摘要",
        "opened_at": "发生时间", "response_due": "响应期限", "resolution_due": "解决期限", "resolved_at": "恢复时间",
        "resolution": "恢复原因", "runbook": "处理手册", "console": "控制台", "level": "第{level}级",
        "incidents": "{n} 个事件", "digest": "发送频率受限，合并发送", "ack_hint": "确认：xunjian incidents ack {id}",
    },
    "en": {
        "brand": "Xunjian", "opened": "FIRING", "reopened": "FIRING AGAIN", "released": "FIRING", "repeat": "NOT ACKNOWLEDGED",
        "escalated": "ESCALATED", "resolution_overdue": "RESOLUTION OVERDUE", "resolved": "RESOLVED",
        "high": "high", "medium": "medium", "low": "low",
        "host": "Host", "check": "Check", "status": "Status", "priority": "Priority", "system": "System",
        "summary": "Summary", "opened_at": "Opened", "response_due": "Response due", "resolution_due": "Resolution due",
        "resolved_at": "Resolved", "resolution": "Resolution", "runbook": "Runbook", "console": "Console",
        "level": "level {level}", "incidents": "{n} incidents", "digest": "rate limit reached: grouped",
        "ack_hint": "acknowledge: xunjian incidents ack {id}",
    },
}


@dataclass(frozen=True)
class Renderer:
    language: str
    console_url: str
    tz: ZoneInfo

    def t(self, key: str, **values: Any) -> str:
        return _TEXT[self.language][key].format(**values)

    def when(self, at: float | None) -> str:
        return "" if at is None else dt.datetime.fromtimestamp(at, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def link(self, incident_id: int) -> str:
        return f"{self.console_url}/#incident-{incident_id}"

    def event_word(self, item: Item) -> str:
        word = self.t(str(item["event"]))
        if item["event"] == "escalated":
            word += " " + self.t("level", level=item["level"])
        return word

    def title(self, items: Sequence[Item], digest: bool = False) -> str:
        first = items[0]
        if len(items) == 1:
            return f"[{self.t('brand')}·{self.event_word(first)}] {first['title']}"
        events = {str(i["event"]) for i in items}
        word = self.event_word(first) if len(events) == 1 else self.t("opened")
        where = first["host"] or first["agent_id"]
        if digest:
            return f"[{self.t('brand')}] {self.t('incidents', n=len(items))} ({self.t('digest')})"
        return f"[{self.t('brand')}·{word}] {first['system']} {where}: {self.t('incidents', n=len(items))}"

    def lines(self, item: Item) -> list[tuple[str, str]]:
        """(label, value) pairs of one incident, empty values left out."""
        check = item["check_id"] + (f" ({item['target']})" if item["target"] else "") + \
            (f" [{item['key']}]" if item["key"] else "")
        resolved = item["event"] == "resolved"
        pairs = [
            (self.t("host"), item["host"] or item["agent_id"]),
            (self.t("check"), check),
            (self.t("status"), "OK" if resolved else str(item["severity"])),
            (self.t("priority"), self.t(item["priority"]) if item["priority"] in ("high", "medium", "low")
             else str(item["priority"])),
            (self.t("system"), str(item["system"])),
            (self.t("summary"), str(item["summary"])),
            (self.t("opened_at"), self.when(item["opened_at"])),
        ]
        if resolved:
            pairs += [(self.t("resolved_at"), self.when(item["resolved_at"])),
                      (self.t("resolution"), str(item["resolution"] or ""))]
        else:
            pairs += [(self.t("response_due"), self.when(item["response_due_at"])),
                      (self.t("resolution_due"), self.when(item["resolution_due_at"]))]
        pairs += [(self.t("runbook"), str(item["runbook"] or "")), (self.t("console"), self.link(int(item["id"])))]
        return [(k, v) for k, v in pairs if v]

    def compact(self, item: Item) -> str:
        where = item["host"] or item["agent_id"]
        state = "OK" if item["event"] == "resolved" else str(item["severity"])
        return f"#{item['id']} {self.event_word(item)} {state} {item['check_id']}@{where}: {item['summary']}"

    def text(self, items: Sequence[Item], digest: bool = False) -> str:
        out = [self.title(items, digest)]
        if len(items) >= COMPACT_FROM:
            return "\n".join([*out, "", *(self.compact(i) for i in items), "",
                              f"{self.t('console')}: {self.console_url}/"])
        for item in items:
            out.append("")
            if len(items) > 1:
                out.append(f"#{item['id']} {self.event_word(item)}: {item['title']}")
            out += [f"{k}: {v}" for k, v in self.lines(item)]
            if item["event"] != "resolved":
                out.append(self.t("ack_hint", id=item["id"]))
        return "\n".join(out)

    def markdown(self, items: Sequence[Item], digest: bool = False) -> str:
        out = [f"### {self.title(items, digest)}"]
        if len(items) >= COMPACT_FROM:
            return "\n".join([*out, "", *(f"- {self.compact(i)}" for i in items), "",
                              f"{self.t('console')}: [{self.console_url}/]({self.console_url}/)"])
        for item in items:
            colour = "info" if item["event"] == "resolved" else "warning"
            out.append("")
            out.append(f'**<font color="{colour}">#{item["id"]} {self.event_word(item)}</font>** {item["title"]}')
            for k, v in self.lines(item):
                out.append(f"> {k}: [{v}]({v})" if v.startswith(("http://", "https://")) else f"> {k}: {v}")
        return "\n".join(out)


def rfc3339(at: float | None) -> str:
    if at is None:
        return "0001-01-01T00:00:00Z"
    return dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def alert_labels(item: Item) -> dict[str, str]:
    """Labels of an incident as an Alertmanager alert (empty values left out, as Alertmanager drops them). They must
    not change while the incident lives (the alert's identity is its labels): its status goes in the annotations."""
    labels = {"alertname": ALERTNAME, "incident_id": str(item["id"]), "system": str(item["system"]),
              "priority": str(item["priority"]), "host": str(item["host"]),
              "agent": str(item["agent_id"]), "check": str(item["check_id"]), "target": str(item["target"]),
              "key": str(item["key"]), "incident_kind": str(item["kind"])}
    return {k: v for k, v in labels.items() if v}


def alert_annotations(item: Item, renderer: Renderer) -> dict[str, str]:
    notes = {"summary": str(item["title"]), "description": str(item["summary"]), "status": str(item["severity"]),
             "runbook": str(item["runbook"] or ""), "console": renderer.link(int(item["id"]))}
    return {k: v for k, v in notes.items() if v}


def postable_alert(item: Item, renderer: Renderer, ends_at: float | None) -> dict[str, Any]:
    """One alert of Alertmanager's v2 API (POST /api/v2/alerts)."""
    alert: dict[str, Any] = {"labels": alert_labels(item), "annotations": alert_annotations(item, renderer),
                             "startsAt": rfc3339(item["opened_at"]), "generatorURL": renderer.link(int(item["id"]))}
    if ends_at is not None:
        alert["endsAt"] = rfc3339(ends_at)
    return alert


def fingerprint(labels: Mapping[str, str]) -> str:
    text = "\xff".join(f"{k}\xff{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def webhook_v4(items: Sequence[Item], renderer: Renderer, receiver: str, group_key: str) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4), so receivers written for Alertmanager take ours."""
    alerts: list[dict[str, Any]] = []
    for item in items:
        labels = alert_labels(item)
        resolved = item["event"] == "resolved"
        alerts.append({"status": "resolved" if resolved else "firing", "labels": labels,
                       "annotations": alert_annotations(item, renderer), "startsAt": rfc3339(item["opened_at"]),
                       "endsAt": rfc3339(item["resolved_at"] if resolved else None),
                       "generatorURL": renderer.link(int(item["id"])), "fingerprint": fingerprint(labels)})
    common: dict[str, str] = dict(alerts[0]["labels"])
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    common_notes: dict[str, str] = dict(alerts[0]["annotations"])
    for a in alerts[1:]:
        common_notes = {k: v for k, v in common_notes.items() if a["annotations"].get(k) == v}
    firing = any(a["status"] == "firing" for a in alerts)
    return {"version": "4", "groupKey": group_key, "truncatedAlerts": 0, "status": "firing" if firing else "resolved",
            "receiver": receiver, "groupLabels": {k: v for k, v in common.items() if k in ("system", "agent", "target")},
            "commonLabels": common, "commonAnnotations": common_notes, "externalURL": renderer.console_url,
            "alerts": alerts}


def xunjian_json(items: Sequence[Item], renderer: Renderer, receiver: str, group_key: str,
                 digest: bool = False) -> dict[str, Any]:
    """Our own webhook payload: the title and text as people read them, and every incident's fields."""
    firing = any(i["event"] != "resolved" for i in items)
    return {"version": "1", "receiver": receiver, "group_key": group_key, "status": "firing" if firing else "resolved",
            "title": renderer.title(items, digest), "text": renderer.text(items, digest),
            "incidents": [{**dict(i), "url": renderer.link(int(i["id"]))} for i in items]}

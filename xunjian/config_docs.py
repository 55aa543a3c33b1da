"""Generates docs/configuration.md from the agent.yaml and collector.yaml models, so the docs cannot drift.

Run `python -m xunjian.config_docs > docs/configuration.md`; a test fails when the file is stale.
"""

from __future__ import annotations

import socket
import sys

from pydantic import BaseModel

from agent.config import AgentFile
from checks.docs import default_text, nested_models, type_name
from collector.config import CollectorConfig

HEADER = """\
# Configuration

Two files, both YAML, both validated when they load: an error names the file, the line, the field and what
was expected (`agent.yaml:4: collector.batch_wiat: unknown field (did you mean 'batch_wait'?)`), and the
command exits with code 2. Check a file without running anything: `xunjian check validate --config agent.yaml`.

Durations are written `250ms`, `30s`, `5m`, `2h`, `7d`; sizes `64KiB`, `256MiB`, `1GB`.
This page is generated from the models (`python -m xunjian.config_docs`).
"""

AGENT_EXAMPLE = """\
agent:
  id: his-app-01                     # unique in the fleet; defaults to the hostname
  labels: {role: his-app, site: main-campus}
collector:
  addresses: ["collector-a:9470", "collector-b:9470"]   # failover in order
spool:
  path: /var/lib/xunjian/spool.db
  max_bytes: 256MiB
packs:                               # built-in packs by name, files or globs
  - builtin:host-linux
  - /etc/xunjian/packs/*.yaml
  - {pack: builtin:postgres, target: lis_pg}   # a DB pack bound to a target
commands:
  allow: [/usr/lib/nagios/plugins/check_disk]   # the command kind runs only these
targets:
  his_db:
    dialect: oracle                  # oracle | mssql | postgres | mysql
    dsn: his-db:1521/HISPDB
    user: xunjian_mon
    password_env: XJ_HIS_DB_PASSWORD # or password_file: /etc/xunjian/his_db.pw
  lis_pg:
    dialect: postgres
    host: lis-db
    port: 5432
    database: lis
    user: xunjian_mon
    password_file: /etc/xunjian/lis_pg.pw
overrides:
  his.disk.data: {crit: "> 97"}
  host.swap: {disabled: true}
  pg.connections@lis_pg: {warn: "> 80"}   # one target only
"""

COLLECTOR_EXAMPLE = """\
listen: {grpc: "0.0.0.0:9470", http: "127.0.0.1:9471"}
store:
  url: sqlite:///var/lib/xunjian/collector.db      # or postgresql://user@db/xunjian
  history: transitions                              # off | transitions | all
  history_retention: 7d
agents: {lost_after: 90s}
findings: {fixed_after: 7d}
incidents:
  response: {high: 15m, medium: 15m, low: 15m}     # acknowledge within, around the clock
  resolution_days: {high: 1, medium: 3, low: 5}    # working days of the calendar
  reopen_within: 1h
calendar:
  timezone: Asia/Shanghai
  files: [/etc/xunjian/calendars/cn-2027.yaml]     # years you add or replace
notifications:
  language: zh
  console_url: https://xunjian.hospital.local
  receivers:
    - {name: his-wecom, type: wecom, key_env: XJ_WECOM_HIS_KEY}
    - {name: it-manager, type: email, host: smtp.hospital.local, username: xunjian,
       password_env: XJ_SMTP_PASSWORD, from: xunjian@hospital.local, to: [it-manager@hospital.local]}
  routes:
    - match: {system: HIS}
      receivers: [his-wecom]
      escalate: [{receivers: [it-manager]}]
"""

AGENT_NOTES = """\
Relative paths (spool, state_dir, pack files) are relative to the directory of agent.yaml.
`packs:` entries are `builtin:NAME`, a file, a glob, or `{pack: ..., target: NAME}` to bind a pack's checks to
a target (the same built-in database pack can patrol several databases; its checks are then told apart by
`(id, target)`). `overrides:` change any field of a check by id, or of one bound instance by `id@target`.
`targets:` are described in [databases.md](databases.md); passwords come from `password_env` or
`password_file` only, and are never logged or sent.
"""

COLLECTOR_NOTES = """\
`store.history`: `off` keeps only current state, open/resolved incidents and findings; `transitions` also
keeps every status change; `all` keeps every result (for "what did it say at 03:12", readable at
`/api/v1/results`), purged after `history_retention`. Numeric history belongs in Prometheus.
`incidents`, `calendar` and `notifications` are explained with examples in [incidents.md](incidents.md);
secrets of receivers come from environment variables (`*_env`) or files (`*_file`), never from this file.
`incidents`, `calendar` and `notifications` apply at reload.
"""


SECTION_DOCS = {
    "agent": "Who this agent is.",
    "collector": "Where results go and how they are batched.",
    "spool": "The durable queue of results not yet acknowledged by a collector.",
    "commands": "Programs the command kind may run (an allow-list).",
    "targets": "Database connections by name (see databases.md).",
    "overrides": "Fields to change per check id (or id@target).",
    "listen": "Addresses the collector listens on.",
    "store": "Where incidents, findings and history are kept.",
    "agents": "When an agent counts as lost.",
    "ingest": "Limits on what agents may send.",
    "findings": "DBA findings lifecycle.",
    "incidents": "Deadlines, reopening and flapping (incidents.md).",
    "calendar": "The working-day calendar of resolution deadlines and recurring silences.",
    "notifications": "Receivers, routes and the outbox's timing (incidents.md).",
    "retry": "How failed messages are retried.",
    "flapping": "Flap detection.",
}


def _rows(model: type[BaseModel]) -> list[str]:
    """Field rows; nested sections point below and machine-dependent defaults are named, not printed."""
    rows = []
    for name, info in model.model_fields.items():
        kind = type_name(info.annotation, info.metadata)
        if info.default_factory is socket.gethostname:
            default = "the hostname"
        elif "(mapping, below)" in kind:
            default = "see below" if not info.is_required() else "**required**"
        else:
            default = default_text(info)
        desc = info.description or SECTION_DOCS.get(name, "")
        cells = [f"`{info.alias or name}`", kind, default, " ".join(desc.split()).replace("|", "\\|")]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _model_section(title: str, model: type[BaseModel], example: str, notes: str) -> list[str]:
    names = list(model.model_fields)
    out = [f"## {title}\n", "```yaml", example.rstrip("\n"), "```", "", notes]
    out += ["| field | type | default | description |", "|---|---|---|---|", *_rows(model), ""]
    for sub in nested_models(model, names):
        out += [f"### {sub.__name__}\n", "| field | type | default | description |", "|---|---|---|---|"]
        out += [*_rows(sub), ""]
    return out


def render() -> str:
    lines = [HEADER]
    lines += _model_section("agent.yaml", AgentFile, AGENT_EXAMPLE, AGENT_NOTES)
    lines += _model_section("collector.yaml", CollectorConfig, COLLECTOR_EXAMPLE, COLLECTOR_NOTES)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

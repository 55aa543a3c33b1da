"""`xunjian` command line: the collector, the agent, the check author's loop, and a client of the collector."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from checks.config_error import ConfigError
from checks.result import FINDING_CATEGORIES
from xunjian import __version__, trustcli
from xunjian.client import ApiError, Client
from xunjian.table import render

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
CHECK_RUN_USAGE = 64
"""`check run` only (its 0-3 are Nagios statuses): bad command-line arguments (EX_USAGE of sysexits.h)."""
CHECK_RUN_INVALID = 78
"""`check run` only: an invalid pack or agent.yaml (EX_CONFIG of sysexits.h). Nagios and Icinga show any
code above 3 as UNKNOWN, so a broken check definition is never taken for OK or CRITICAL."""
DEFAULT_AGENT_CONFIGS = (Path(".xunjian") / "agent.yaml", Path("/etc/xunjian/agent.yaml"))
"""Where `check validate` (without packs or --config) looks for the agent.yaml it would use: the `make up` data
directory of the current folder, then the system-wide one."""
STATUS_LIST_ALL_UP_TO = 60
"""`xunjian status` lists every series of a small fleet; a large one shows only problems unless --checks."""


class _Parser(argparse.ArgumentParser):
    """argparse with a per-command exit code for usage errors (argparse's own is 2, a CRITICAL for `check run`)."""

    def __init__(self, *args: Any, usage_exit: int = EXIT_INVALID, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_exit = usage_exit

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usage_exit, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_INVALID
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
        return code
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(getattr(args, "invalid_exit", EXIT_INVALID))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`xunjian status | head`): not an error; keep the interpreter from reporting it at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="xunjian", description="Xunjian (巡检): patrol inspection for hospital core systems.")
    p.add_argument("--version", action="version", version=f"xunjian {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    up = sub.add_parser("up", help="start a collector and a local agent on this machine (loopback only)")
    up.add_argument("--data-dir", default=".xunjian", help="where configs, the store and the spool live")
    up.add_argument("--grpc", default="127.0.0.1:9470", help="collector gRPC address")
    up.add_argument("--http", default="127.0.0.1:9471", help="collector HTTP address")
    _log_options(up)
    up.set_defaults(handler=_cmd_up)

    collector = sub.add_parser("collector", help="run the collector").add_subparsers(metavar="ACTION")
    serve = collector.add_parser("serve", help="serve gRPC ingest, /metrics and the API")
    serve.add_argument("--config", required=True, type=Path, help="collector.yaml")
    _log_options(serve)
    serve.set_defaults(handler=_cmd_collector_serve)
    creload = collector.add_parser("reload", help="make the running collector re-read collector.yaml (SIGHUP)")
    creload.add_argument("--config", required=True, type=Path, help="collector.yaml of the running collector")
    creload.set_defaults(handler=_cmd_collector_reload)

    agent = sub.add_parser("agent", help="run an agent").add_subparsers(metavar="ACTION")
    run = agent.add_parser("run", help="run the checks of agent.yaml and stream results to the collector")
    run.add_argument("--config", required=True, type=Path, help="agent.yaml")
    _log_options(run)
    run.set_defaults(handler=_cmd_agent_run)
    areload = agent.add_parser("reload", help="make the running agent re-read agent.yaml and its packs (SIGHUP)")
    areload.add_argument("--config", required=True, type=Path, help="agent.yaml of the running agent")
    areload.set_defaults(handler=_cmd_agent_reload)

    status = sub.add_parser("status", help="fleet and current problems")
    status.add_argument("--json", action="store_true")
    status.add_argument("--checks", action="store_true", help="list every series, not only problems")
    status.set_defaults(handler=_cmd_status)

    _incident_commands(sub)
    _silence_commands(sub)
    notifications = sub.add_parser("notifications", help="delivery history of notifications").add_subparsers(
        metavar="ACTION")
    nlist = notifications.add_parser("list", help="messages sent, queued and failed, newest first, with attempts")
    nlist.add_argument("--incident", type=int, help="only messages about this incident")
    nlist.add_argument("--state", choices=["queued", "sent", "failed"])
    nlist.add_argument("--receiver")
    nlist.add_argument("--limit", type=int, default=50)
    nlist.add_argument("--json", action="store_true")
    nlist.set_defaults(handler=_cmd_notifications_list)

    check = sub.add_parser("check", help="run or validate packs here").add_subparsers(metavar="ACTION")
    crun = check.add_parser(
        "run", usage_exit=CHECK_RUN_USAGE, help="run packs once here and print the results",
        description="Run packs once and print the results. Exit code by the worst status, as a Nagios plugin: "
        f"0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also when no check ran); {CHECK_RUN_INVALID} for an invalid pack "
        f"or agent.yaml, {CHECK_RUN_USAGE} for bad arguments.")
    crun.add_argument("packs", nargs="+", help="builtin:NAME, a pack file or a glob")
    crun.add_argument("--config", type=Path, help="agent.yaml for targets, allowed commands and overrides")
    crun.add_argument("--target", help="bind the packs to this target of agent.yaml")
    crun.add_argument("--json", action="store_true", help="one JSON object per result per line")
    crun.set_defaults(handler=_cmd_check_run, invalid_exit=CHECK_RUN_INVALID)
    cval = check.add_parser(
        "validate", help="validate packs (and agent.yaml) without running anything",
        description="Validate packs and agent.yaml without running anything. With neither, validate the agent.yaml "
        f"this machine would use: {' then '.join(str(p) for p in DEFAULT_AGENT_CONFIGS)}.")
    cval.add_argument("packs", nargs="*", help="builtin:NAME, pack files or globs")
    cval.add_argument("--config", type=Path, help="agent.yaml: validated with its packs and targets")
    cval.set_defaults(handler=_cmd_check_validate)

    findings = sub.add_parser("findings", help="DBA findings and reconciliation discrepancies (单边账)").add_subparsers(
        metavar="ACTION")
    flist = findings.add_parser("list", help="list findings")
    flist.add_argument("--target")
    flist.add_argument("--engine", choices=["oracle", "mssql", "postgres", "mysql"])
    flist.add_argument("--category", choices=list(FINDING_CATEGORIES),
                       help="dba (tuning), migration, payment (单边账) or insurance")
    flist.add_argument("--state", choices=["new", "accepted", "dismissed", "fixed"])
    flist.add_argument("--agent")
    flist.add_argument("--json", action="store_true")
    flist.set_defaults(handler=_cmd_findings_list)
    fshow = findings.add_parser("show", help="one finding with its evidence")
    fshow.add_argument("id")
    fshow.add_argument("--json", action="store_true")
    fshow.set_defaults(handler=_cmd_findings_show)
    for action in ("accept", "dismiss"):
        fp = findings.add_parser(action, help=f"{action} a finding after review")
        fp.add_argument("id")
        fp.add_argument("--reviewer", required=True, help="who reviewed it")
        fp.add_argument("--note", default="", help="why")
        fp.set_defaults(handler=_cmd_findings_review, action=action)

    audit = sub.add_parser("audit", help="the audit trail of human actions (admin)").add_subparsers(metavar="ACTION")
    alist = audit.add_parser("list", help="newest entries first (or all after an id, oldest first)")
    alist.add_argument("--limit", type=int, default=50)
    alist.add_argument("--after", type=int, help="entries after this id, oldest first (to page or export)")
    alist.add_argument("--json", action="store_true", help="one JSON object per line (an export)")
    alist.set_defaults(handler=_cmd_audit_list)
    averify = audit.add_parser("verify", help="check every link of the hash chain; exit 1 when it is broken")
    averify.set_defaults(handler=_cmd_audit_verify)
    trustcli.add_audit_export(audit)
    trustcli.add_parsers(sub)
    return p


def _by(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", default=_default_actor(), help="who is acting (default: $USER@hostname); an authenticated "
                   "caller is recorded as who they are")


def _default_actor() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _incident_commands(sub: Any) -> None:
    incidents = sub.add_parser("incidents", help="incidents: list, show, ack, assign, note, resolve, close, rca"
                               ).add_subparsers(metavar="ACTION")
    ilist = incidents.add_parser("list", help="active incidents (open or acknowledged) unless --all or --status")
    ilist.add_argument("--all", action="store_true", help="every incident, resolved and closed ones too")
    ilist.add_argument("--status", choices=["active", "open", "acknowledged", "resolved", "closed"])
    ilist.add_argument("--system")
    ilist.add_argument("--priority", choices=["high", "medium", "low"])
    ilist.add_argument("--agent")
    ilist.add_argument("--limit", type=int, default=500)
    ilist.add_argument("--json", action="store_true")
    ilist.set_defaults(handler=_cmd_incidents_list)
    show = incidents.add_parser("show", help="one incident: fields, deadlines, timeline, notes, notifications")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_cmd_incidents_show)
    for action, text in (("ack", "acknowledge: someone is on it (the response the contract times)"),
                         ("resolve", "resolve by hand (a series still failing opens no new incident until it is OK)"),
                         ("close", "close a resolved incident (high priority needs its root-cause analysis first)")):
        p = incidents.add_parser(action, help=text)
        p.add_argument("id", type=int)
        p.add_argument("--note", default="")
        _by(p)
        p.set_defaults(handler=_cmd_incident_action, action=action)
    assign = incidents.add_parser("assign", help="assign to a person")
    assign.add_argument("id", type=int)
    assign.add_argument("assignee")
    assign.add_argument("--note", default="")
    _by(assign)
    assign.set_defaults(handler=_cmd_incident_action, action="assign")
    note = incidents.add_parser("note", help="add a note to the timeline")
    note.add_argument("id", type=int)
    note.add_argument("note")
    _by(note)
    note.set_defaults(handler=_cmd_incident_action, action="note")
    rca = incidents.add_parser("rca", help="record the root-cause analysis and the solution (原因分析及解决方案)")
    rca.add_argument("id", type=int)
    rca.add_argument("--cause", required=True, help="the root cause")
    rca.add_argument("--solution", required=True, help="what was done and what prevents it happening again")
    _by(rca)
    rca.set_defaults(handler=_cmd_incident_action, action="rca")


def _silence_commands(sub: Any) -> None:
    silences = sub.add_parser("silences", help="maintenance windows: add, list, remove").add_subparsers(
        metavar="ACTION")
    add = silences.add_parser(
        "add", help="silence notifications of matching incidents (they are still recorded)",
        description="Silence notifications of incidents matching every --match (globs). One-off: --for or --until. "
        "Recurring in local time on the working-day calendar: --daily FROM-TO with --days. Until the matching open "
        "incidents resolve: --until-resolved.")
    add.add_argument("--match", action="append", required=True, metavar="LABEL=GLOB",
                     help="system, host, agent, target, check, key, priority or kind, e.g. check='his.db.*' "
                     "(repeat for several)")
    add.add_argument("--reason", required=True, help="why (shown on every incident it silences)")
    add.add_argument("--for", dest="duration", help="one-off, lasting this long from --start (e.g. 2h)")
    add.add_argument("--start", help="when it begins (YYYY-MM-DD HH:MM local time; default now)")
    add.add_argument("--until", help="when it ends (YYYY-MM-DD HH:MM local time); bounds a --daily window too")
    add.add_argument("--daily", metavar="HH:MM-HH:MM", help="recurring window each day it applies, e.g. 01:00-04:00 "
                     "(a window past midnight belongs to the day it starts)")
    add.add_argument("--days", default="every", help="with --daily: every, working, nonworking, or mon,tue,...")
    add.add_argument("--until-resolved", action="store_true", help="until the open incidents it matches resolve")
    _by(add)
    add.set_defaults(handler=_cmd_silences_add)
    slist = silences.add_parser("list", help="silences in force (--all: removed and expired ones too)")
    slist.add_argument("--all", action="store_true")
    slist.add_argument("--json", action="store_true")
    slist.set_defaults(handler=_cmd_silences_list)
    remove = silences.add_parser("remove", help="end a silence now")
    remove.add_argument("id", type=int)
    remove.add_argument("--reason", default="")
    _by(remove)
    remove.set_defaults(handler=_cmd_silences_remove)


def _log_options(p: argparse.ArgumentParser) -> None:
    from service.logs import LOG_FORMATS

    p.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                   help="stderr log lines as text (default) or one JSON object per line")
    p.add_argument("--log-level", help="DEBUG, INFO (default, or $XUNJIAN_LOG_LEVEL), WARNING, ERROR")


def _cmd_up(args: argparse.Namespace) -> int:
    from xunjian.up import run_up

    return run_up(Path(args.data_dir), grpc=args.grpc, http=args.http, log_format=args.log_format,
                  log_level=args.log_level)


def _cmd_collector_serve(args: argparse.Namespace) -> int:
    from collector.server import serve

    return serve(args.config, log_format=args.log_format, log_level=args.log_level)


def _cmd_agent_run(args: argparse.Namespace) -> int:
    from agent.daemon import run_agent

    return run_agent(args.config, log_format=args.log_format, log_level=args.log_level)


def _reload(pid_path: Path, status_path: Path, what: str) -> int:
    """Ask a running daemon to reload and print its answer: 0 applied, 2 refused (invalid), 1 not reached."""
    from service.control import ControlError, request_reload

    try:
        status = request_reload(pid_path, status_path, what)
    except ControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if status.ok:
        print(status.message)
        return EXIT_OK
    print(f"error: reload refused, the {what} keeps running its previous configuration:\n{status.message}",
          file=sys.stderr)
    return EXIT_INVALID


def _cmd_agent_reload(args: argparse.Namespace) -> int:
    from agent.config import spool_path_of
    from agent.daemon import control_files

    return _reload(*control_files(spool_path_of(args.config)), "agent")


def _cmd_collector_reload(args: argparse.Namespace) -> int:
    from collector.config import store_config_of
    from collector.server import control_files

    return _reload(*control_files(store_config_of(args.config)), "collector")


def _cmd_check_run(args: argparse.Namespace) -> int:
    from xunjian.checkrun import run_packs, worst_status

    results = run_packs(args.packs, config=args.config, target=args.target)
    code = worst_status(results)
    if not results:
        print("no enabled check in these packs: nothing ran (UNKNOWN)", file=sys.stderr)
    try:
        if args.json:
            for r in results:
                print(json.dumps(r.to_json(), ensure_ascii=False))
        else:
            rows = [
                (r.status.name, r.check_id, r.target, r.key, _fmt_value(r.value, r.unit), r.outcome, r.summary)
                for r in results
            ]
            print(render(["STATUS", "CHECK", "TARGET", "KEY", "VALUE", "OUTCOME", "SUMMARY"], rows))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`xunjian check run ... | head`): the statuses are still the answer.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _cmd_check_validate(args: argparse.Namespace) -> int:
    from xunjian.checkrun import validate

    config = args.config
    if config is None and not args.packs:
        config = next((p for p in DEFAULT_AGENT_CONFIGS if p.is_file()), None)
        if config is None:
            raise ConfigError("nothing to validate: no packs named, no --config, and no agent.yaml at "
                              + " or ".join(str(p) for p in DEFAULT_AGENT_CONFIGS))
    summary = validate(args.packs, config=config)
    print(summary)
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    client = Client()
    agents = client.get("/api/v1/agents")
    checks = client.get_pages("/api/v1/checks")
    incidents = client.get("/api/v1/incidents", status="active")
    if args.json:
        print(json.dumps({"agents": agents, "checks": checks, "incidents": incidents}, ensure_ascii=False, indent=2))
        return EXIT_OK
    per_agent: dict[str, dict[str, int]] = {}
    for c in _items(checks):
        counts = per_agent.setdefault(str(c.get("agent")), {})
        counts[str(c.get("status"))] = counts.get(str(c.get("status")), 0) + 1
    rows = []
    for a in _items(agents):
        counts = per_agent.get(str(a.get("id")), {})
        rows.append((
            a.get("id"), a.get("hostname"), "up" if a.get("connected") else "DOWN", _fmt_time(a.get("last_seen")),
            sum(counts.values()), ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k != "OK") or "all OK",
            a.get("spool_depth"), a.get("dropped"),
        ))
    print("Agents")
    print(render(["AGENT", "HOST", "STATE", "LAST SEEN", "SERIES", "PROBLEMS", "SPOOL", "DROPPED"], rows))
    series = _items(checks)
    problems = [c for c in series if c.get("status") != "OK"]
    print()
    if args.checks or len(series) <= STATUS_LIST_ALL_UP_TO:
        print("Checks")
        print(render(
            ["STATUS", "AGENT", "CHECK", "TARGET", "KEY", "VALUE", "SUMMARY"],
            [(c.get("status"), c.get("agent"), c.get("check_id"), c.get("target"), c.get("key"),
              _fmt_value(c.get("value"), str(c.get("unit") or "")), c.get("summary")) for c in series],
        ))
        print()
    if problems:
        print("Current problems")
        print(render(
            ["STATUS", "AGENT", "CHECK", "TARGET", "KEY", "VALUE", "SUMMARY"],
            [(c.get("status"), c.get("agent"), c.get("check_id"), c.get("target"), c.get("key"),
              _fmt_value(c.get("value"), str(c.get("unit") or "")), c.get("summary")) for c in problems],
        ))
    else:
        print("No current problems.")
    print()
    _print_incidents(_items(incidents))
    return EXIT_OK


def _cmd_incidents_list(args: argparse.Namespace) -> int:
    status = "all" if args.all else (args.status or "active")
    incidents = Client().get("/api/v1/incidents", status=status, system=args.system, priority=args.priority,
                             agent=args.agent, limit=args.limit)
    if args.json:
        print(json.dumps(incidents, ensure_ascii=False, indent=2))
        return EXIT_OK
    _print_incidents(_items(incidents), "No incidents." if status != "active" else "No open incidents.")
    return EXIT_OK


def _print_incidents(items: list[dict[str, Any]], none: str = "No open incidents.") -> None:
    if not items:
        print(none)
        return
    print("Incidents")
    print(render(
        ["ID", "STATUS", "PRIORITY", "SYSTEM", "AGENT", "CHECK", "TARGET", "KEY", "OPENED", "RESPONSE DUE", "FLAGS",
         "SUMMARY"],
        [(i.get("id"), i.get("status"), i.get("priority"), i.get("system"), i.get("agent_id"), i.get("check_id"),
          i.get("target"), i.get("key"), _fmt_time(i.get("opened_at")), _fmt_time(i.get("response_due_at")),
          _incident_flags(i), i.get("summary")) for i in items],
    ))


def _incident_flags(i: dict[str, Any]) -> str:
    flags = []
    if i.get("parent_id") or i.get("suppressed"):
        flags.append(f"child of {i.get('parent_id')}" if i.get("parent_id") else "suppressed")
    if i.get("silence_id") is not None:
        flags.append(f"silenced ({i.get('silence_id')})")
    if i.get("flapping"):
        flags.append("flapping")
    if i.get("response_breached"):
        flags.append("response late")
    if i.get("resolution_breached"):
        flags.append("resolution late")
    return ", ".join(flags)


def _cmd_incidents_show(args: argparse.Namespace) -> int:
    inc = Client().get(f"/api/v1/incidents/{args.id}")
    if args.json:
        print(json.dumps(inc, ensure_ascii=False, indent=2))
        return EXIT_OK
    for key in ("id", "title", "status", "priority", "severity", "system", "kind", "host", "agent_id", "check_id",
                "target", "key", "summary", "runbook", "assignee", "acknowledged_by", "suppressed", "resolution",
                "root_cause", "rca_solution"):
        if inc.get(key) not in (None, ""):
            print(f"{key:>19}: {inc[key]}")
    for key in ("opened_at", "acknowledged_at", "response_due_at", "resolution_due_at", "resolved_at", "closed_at"):
        if inc.get(key) is not None:
            print(f"{key:>19}: {_fmt_time(inc[key])}")
    flags = _incident_flags(inc)
    if flags:
        print(f"{'flags':>19}: {flags}")
    if inc.get("children"):
        print(f"{'children':>19}: {', '.join(str(c) for c in inc['children'])}")
    print("\nTimeline")
    print(render(["AT", "EVENT", "BY", "DETAIL"], [
        (_fmt_time(e.get("at")), e.get("event"), e.get("actor"),
         ", ".join(f"{k}={_fmt_detail(k, v)}" for k, v in sorted((e.get("detail") or {}).items()) if v not in ("", None)))
        for e in inc.get("timeline") or []]))
    notes = inc.get("notifications") or []
    if notes:
        print("\nNotifications")
        _print_notifications(notes)
    return EXIT_OK


def _fmt_detail(key: str, value: Any) -> str:
    return _fmt_time(value) if key.endswith("_at") else str(value)


def _cmd_incident_action(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"by": args.by}
    for name in ("note", "assignee", "cause", "solution"):
        if getattr(args, name, None) is not None:
            body[name] = getattr(args, name)
    inc = Client().post(f"/api/v1/incidents/{args.id}/{args.action}", body)
    done = {"ack": "acknowledged", "assign": f"assigned to {inc.get('assignee')}", "note": "noted",
            "resolve": "resolved", "close": "closed", "rca": "root-cause analysis recorded"}[args.action]
    print(f"incident {inc.get('id', args.id)} {done} (status {inc.get('status')}, by {args.by})")
    return EXIT_OK


def _local_time(text: str, what: str) -> float:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ConfigError(f"{what}: expected YYYY-MM-DD HH:MM (local time), got {text!r}") from None


def _cmd_silences_add(args: argparse.Namespace) -> int:
    from checks.units import parse_duration

    matchers = {}
    for m in args.match:
        name, sep, pattern = m.partition("=")
        if not sep or not name.strip() or not pattern.strip():
            raise ConfigError(f"--match: expected LABEL=GLOB such as check='his.db.*', got {m!r}")
        matchers[name.strip()] = pattern.strip()
    body: dict[str, Any] = {"matchers": matchers, "reason": args.reason, "by": args.by}
    if args.start:
        body["starts_at"] = _local_time(args.start, "--start")
    if args.until:
        body["ends_at"] = _local_time(args.until, "--until")
    if args.until_resolved:
        body["kind"] = "until_resolved"
    elif args.daily:
        start, sep, end = args.daily.partition("-")
        if not sep:
            raise ConfigError(f"--daily: expected HH:MM-HH:MM such as 01:00-04:00, got {args.daily!r}")
        body.update(kind="recurring", days=args.days, **{"from": start, "to": end})
    else:
        body["kind"] = "once"
        if args.duration:
            try:
                body["duration"] = parse_duration(args.duration)
            except ValueError as exc:
                raise ConfigError(f"--for: {exc}") from None
        elif not args.until:
            raise ConfigError("say how long: --for 2h, --until 'YYYY-MM-DD HH:MM', --daily 01:00-04:00 or "
                              "--until-resolved")
    s = Client().post("/api/v1/silences", body)
    print(f"silence {s.get('id')} added ({s.get('state')}): {_silence_text(s)}")
    return EXIT_OK


def _silence_text(s: dict[str, Any]) -> str:
    what = " ".join(f"{k}={v}" for k, v in sorted((s.get("matchers") or {}).items()))
    if s.get("kind") == "recurring":
        when = f"{s.get('window')}" + (f" until {_fmt_time(s.get('ends_at'))}" if s.get("ends_at") else "")
    elif s.get("kind") == "until_resolved":
        when = "until the incidents resolve"
    else:
        when = f"{_fmt_time(s.get('starts_at'))} to {_fmt_time(s.get('ends_at'))}"
    return f"{what}; {when}"


def _cmd_silences_list(args: argparse.Namespace) -> int:
    silences = _items(Client().get("/api/v1/silences", all="1" if args.all else None))
    if args.json:
        print(json.dumps(silences, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not silences:
        print("No silences.")
        return EXIT_OK
    print(render(["ID", "STATE", "KIND", "MATCHERS", "WHEN", "BY", "REASON"], [
        (s.get("id"), s.get("state"), s.get("kind"),
         " ".join(f"{k}={v}" for k, v in sorted((s.get("matchers") or {}).items())), _silence_text(s).split("; ")[-1],
         s.get("created_by"), s.get("reason")) for s in silences]))
    return EXIT_OK


def _cmd_silences_remove(args: argparse.Namespace) -> int:
    s = Client().post(f"/api/v1/silences/{args.id}/remove", {"by": args.by, "reason": args.reason})
    print(f"silence {s.get('id', args.id)} removed")
    return EXIT_OK


def _cmd_notifications_list(args: argparse.Namespace) -> int:
    rows = _items(Client().get("/api/v1/notifications", incident=args.incident, state=args.state,
                               receiver=args.receiver, limit=args.limit))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not rows:
        print("No notifications.")
        return EXIT_OK
    _print_notifications(rows)
    return EXIT_OK


def _print_notifications(rows: list[dict[str, Any]]) -> None:
    print(render(["ID", "STATE", "RECEIVER", "CHANNEL", "INCIDENTS", "CREATED", "SENT", "ATTEMPTS", "LAST ANSWER"], [
        (n.get("id"), n.get("state"), n.get("receiver"), n.get("channel"),
         ", ".join(f"{i.get('incident_id')} {i.get('event')}" for i in n.get("items") or []),
         _fmt_time(n.get("created_at")), _fmt_time(n.get("sent_at")), n.get("attempts"),
         ((n.get("attempts_detail") or [{}])[-1].get("status") or "") if n.get("attempts_detail") else
         n.get("last_error") or "") for n in rows]))



def _cmd_findings_list(args: argparse.Namespace) -> int:
    findings = Client().get("/api/v1/findings", target=args.target, engine=args.engine, state=args.state, agent=args.agent,
                            category=args.category)
    if args.json:
        print(json.dumps(findings, ensure_ascii=False, indent=2))
        return EXIT_OK
    items = _items(findings)
    if not items:
        print("No findings.")
        return EXIT_OK
    print(render(
        ["ID", "STATE", "CATEGORY", "ENGINE", "AGENT", "TARGET", "CHECK", "OBJECT", "SEEN", "LAST SEEN", "TITLE"],
        [(f.get("id"), f.get("state"), f.get("category"), f.get("engine"), f.get("agent_id"), f.get("target"),
          f.get("check_id"), f.get("object"), f.get("seen_count"), _fmt_time(f.get("last_seen")), f.get("title"))
         for f in items],
    ))
    return EXIT_OK


def _cmd_findings_show(args: argparse.Namespace) -> int:
    finding = Client().get(f"/api/v1/findings/{args.id}")
    if args.json:
        print(json.dumps(finding, ensure_ascii=False, indent=2))
        return EXIT_OK
    for key in ("id", "state", "category", "engine", "agent_id", "target", "check_id", "fingerprint", "object", "title",
                "first_seen", "last_seen", "seen_count", "reviewer", "review_note", "reviewed_at"):
        if finding.get(key) not in (None, ""):
            print(f"{key:>14}: {finding[key]}")
    if finding.get("evidence"):
        print(f"{'evidence':>14}:")
        for k, v in sorted(finding["evidence"].items()):
            print(f"{'':>16}{k} = {v:g}" if isinstance(v, (int, float)) else f"{'':>16}{k} = {v}")
    if finding.get("attributes"):
        print(f"{'attributes':>14}:")
        for k, v in sorted(finding["attributes"].items()):
            print(f"{'':>16}{k} = {v}")
    if finding.get("sql_text"):
        print(f"{'sql':>14}: {finding['sql_text']}")
    if finding.get("recommendation"):
        print(f"{'recommendation':>14}: {finding['recommendation']}")
    return EXIT_OK


def _cmd_findings_review(args: argparse.Namespace) -> int:
    finding = Client().post(f"/api/v1/findings/{args.id}/{args.action}", {"reviewer": args.reviewer, "note": args.note})
    print(f"finding {finding.get('id', args.id)} is now {finding.get('state', args.action + 'ed')}")
    return EXIT_OK


def _cmd_audit_list(args: argparse.Namespace) -> int:
    entries = _items(Client().get("/api/v1/audit", limit=args.limit, after=args.after))
    if args.json:
        for entry in entries:
            print(json.dumps(entry, ensure_ascii=False, sort_keys=True))
        return EXIT_OK
    if not entries:
        print("No audit entries.")
        return EXIT_OK
    print(render(
        ["ID", "AT", "ACTOR", "ROLE", "VIA", "FROM", "ACTION", "OBJECT", "DETAIL"],
        [(e.get("id"), _fmt_time(e.get("at")), e.get("actor"), e.get("role"), e.get("via"), e.get("remote"),
          e.get("action"), e.get("object"), json.dumps(e.get("detail") or {}, ensure_ascii=False)) for e in entries],
    ))
    return EXIT_OK


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    result = Client().get("/api/v1/audit/verify")
    if result.get("ok"):
        print(f"audit trail intact: {result.get('entries')} entries, head {result.get('head')}")
        return EXIT_OK
    print(f"audit trail BROKEN ({result.get('entries')} entries):")
    for problem in result.get("problems") or []:
        print(f"  {problem}")
    return EXIT_FAILED


def _items(payload: Any) -> list[dict[str, Any]]:
    """API lists come either bare or as {"items": [...]}."""
    if isinstance(payload, dict):
        payload = payload.get("items", [])
    return [p for p in payload or [] if isinstance(p, dict)]


def _fmt_time(value: Any) -> str:
    """API times are unix seconds; people read local wall-clock time."""
    if not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def _fmt_value(value: Any, unit: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit else text

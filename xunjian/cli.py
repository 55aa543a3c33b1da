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

    incidents = sub.add_parser("incidents", help="incidents").add_subparsers(metavar="ACTION")
    ilist = incidents.add_parser("list", help="list incidents (open ones unless --all)")
    ilist.add_argument("--all", action="store_true", help="include resolved incidents")
    ilist.add_argument("--json", action="store_true")
    ilist.set_defaults(handler=_cmd_incidents_list)

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
    checks = client.get("/api/v1/checks")
    incidents = client.get("/api/v1/incidents", status="open")
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
    incidents = Client().get("/api/v1/incidents", status="all" if args.all else "open")
    if args.json:
        print(json.dumps(incidents, ensure_ascii=False, indent=2))
        return EXIT_OK
    _print_incidents(_items(incidents))
    return EXIT_OK


def _print_incidents(items: list[dict[str, Any]]) -> None:
    if not items:
        print("No open incidents.")
        return
    print("Incidents")
    print(render(
        ["ID", "STATUS", "PRIORITY", "SYSTEM", "AGENT", "CHECK", "TARGET", "KEY", "OPENED", "SUMMARY"],
        [(i.get("id"), i.get("status"), i.get("priority"), i.get("system"), i.get("agent_id"), i.get("check_id"),
          i.get("target"), i.get("key"), _fmt_time(i.get("opened_at")), i.get("summary")) for i in items],
    ))


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

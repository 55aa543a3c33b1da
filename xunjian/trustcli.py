"""`xunjian ca`, `xunjian tokens`, `xunjian agents` and `xunjian audit export`: who may talk to the collector.

Through the API by default (an admin token). `ca` works on the collector host's files, and `tokens create|revoke`
and `agents enroll` also accept `--config collector.yaml` to write the store directly: that is how the first
admin token is made, by whoever can read the collector's store (root or the collector's user), and it is audited
as that local user.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from xunjian.client import Client
from xunjian.table import render

EXIT_OK, EXIT_FAILED = 0, 1
AUDIT_PAGE = 1000


def add_parsers(sub: Any) -> None:
    ca = sub.add_parser("ca", help="the collector's certificate authority (on the collector host)")
    ca_sub = ca.add_subparsers(metavar="ACTION")
    init = ca_sub.add_parser("init", help="create the CA and the server certificate in tls.dir")
    init.add_argument("--config", required=True, type=Path, help="collector.yaml")
    init.set_defaults(handler=_cmd_ca_init)
    rotate = ca_sub.add_parser("rotate-server", help="issue a new server certificate now (taken without a restart)")
    rotate.add_argument("--config", required=True, type=Path, help="collector.yaml")
    rotate.set_defaults(handler=_cmd_ca_rotate)

    tokens = sub.add_parser("tokens", help="API tokens (admin)").add_subparsers(metavar="ACTION")
    create = tokens.add_parser("create", help="make an API token; it is printed once")
    create.add_argument("--name", required=True, help="who or what uses it (e.g. wang.dba, prometheus, ops-wall)")
    create.add_argument("--role", required=True, choices=["viewer", "operator", "dba", "admin"])
    create.add_argument("--expires", default="90d", help="lifetime, e.g. 30d, 12h (default 90d)")
    create.add_argument("--config", type=Path, help="write the collector's store directly (the first admin token)")
    create.set_defaults(handler=_cmd_tokens_create)
    tlist = tokens.add_parser("list", help="tokens, their roles and expiry (never the secrets)")
    tlist.add_argument("--json", action="store_true")
    tlist.set_defaults(handler=_cmd_tokens_list)
    revoke = tokens.add_parser("revoke", help="revoke a token at once (its console sessions end)")
    revoke.add_argument("name")
    revoke.add_argument("--config", type=Path, help="write the collector's store directly")
    revoke.set_defaults(handler=_cmd_tokens_revoke)

    agents = sub.add_parser("agents", help="the fleet's identities (admin)").add_subparsers(metavar="ACTION")
    enroll = agents.add_parser("enroll", help="make a single-use enrollment token bound to an agent id")
    enroll.add_argument("id", help="the agent id (agent.id in its agent.yaml)")
    enroll.add_argument("--expires", default=None, help="lifetime, e.g. 2h (default tls.enroll_token_ttl)")
    enroll.add_argument("--config", type=Path, help="write the collector's store directly")
    enroll.set_defaults(handler=_cmd_agents_enroll)
    alist = agents.add_parser("list", help="agents, connected or not")
    alist.add_argument("--retired", action="store_true", help="include retired agents")
    alist.add_argument("--json", action="store_true")
    alist.set_defaults(handler=_cmd_agents_list)
    for action, what in (("retire", "take the agent out of the fleet: certificates revoked, series removed, "
                                    "incidents resolved with the reason"),
                         ("revoke", "revoke the agent's certificates (it must enroll again)")):
        p = agents.add_parser(action, help=what)
        p.add_argument("id")
        p.add_argument("--reason", required=True, help="why (recorded in the audit trail and the incidents)")
        p.set_defaults(handler=_cmd_agents_change, action=action)
    certs = agents.add_parser("certificates", help="certificates the collector's CA issued")
    certs.add_argument("id", nargs="?")
    certs.add_argument("--json", action="store_true")
    certs.set_defaults(handler=_cmd_agents_certificates)


def add_audit_export(audit: Any) -> None:
    export = audit.add_parser("export", help="every entry, oldest first, one JSON object per line (for archiving)")
    export.add_argument("--after", type=int, default=0, help="only entries after this id")
    export.set_defaults(handler=_cmd_audit_export)


# ca


def _collector_config(path: Path) -> Any:
    from collector.config import load_config

    return load_config(path)


def _cmd_ca_init(args: argparse.Namespace) -> int:
    from collector.grpc_tls import ensure_server_certificate
    from collector.pki import Authority, PkiError, fingerprint, init_ca

    cfg = _collector_config(args.config)
    if cfg.tls.own_pki:
        print("error: tls.cert_file/key_file/client_ca_file are set: this collector uses your own PKI", file=sys.stderr)
        return EXIT_FAILED
    try:
        _, cert = init_ca(cfg.pki_dir)
        ensure_server_certificate(Authority(cfg.pki_dir), cfg, time.time())
    except PkiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"CA created in {cfg.pki_dir} (keep ca.key there: mode 0600, back it up offline)\n"
          f"  CA certificate  {cert}  (copy it to every agent: collector.tls.ca_file)\n"
          f"  SHA-256         {fingerprint(cert.read_bytes())}\n"
          f"  server names    {', '.join(cfg.tls.server_names)}")
    return EXIT_OK


def _cmd_ca_rotate(args: argparse.Namespace) -> int:
    from collector.pki import Authority, PkiError

    cfg = _collector_config(args.config)
    try:
        issued = Authority(cfg.pki_dir).write_server(list(cfg.tls.server_names),
                                                     dt.timedelta(seconds=cfg.tls.server_cert_ttl))
    except PkiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"new server certificate {issued.serial}, valid until {_when(issued.not_after)}; the running collector "
          "serves it from the next connection on")
    return EXIT_OK


# tokens and enrollment


class _Direct:
    """A writer that runs each job in its own transaction of a store opened here (the --config mode)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def submit(self, job: Callable[[Any], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            with self.store.transaction() as tx:
                fut.set_result(job(tx))
        except Exception as exc:
            fut.set_exception(exc)
        return fut


def _local_trust(config: Path) -> tuple[Any, Any]:
    """(Trust over the store of `config`, the local admin actor)."""
    from collector.access import Actor
    from collector.backends import open_store
    from collector.grpc_tls import open_authority
    from collector.trust import Trust

    cfg = _collector_config(config)
    store = open_store(cfg)
    authority = open_authority(cfg) if cfg.tls.mode == "mtls" else None
    trust = Trust(store, _Direct(store), time.time, session_ttl=cfg.http.session_ttl,  # type: ignore[arg-type]
                  enroll_token_ttl=cfg.tls.enroll_token_ttl, agent_cert_ttl=cfg.tls.agent_cert_ttl,
                  authority=authority)
    user = getpass.getuser()
    return trust, Actor(user, "admin", f"local:{user}")


def _seconds(text: str | None) -> float | None:
    from checks.units import parse_duration

    return None if text is None else parse_duration(text)


def _cmd_tokens_create(args: argparse.Namespace) -> int:
    if args.config is not None:
        trust, actor = _local_trust(args.config)
        secret, row = trust.create_token(actor, args.name, args.role, _seconds(args.expires))
        trust.store.close()
    else:
        row = Client().post("/api/v1/tokens", {"name": args.name, "role": args.role, "expires_in": args.expires})
        secret = row["token"]
    print(secret)
    print(f"token {row['name']} ({row['role']}) valid until {_when(row['expires_at'])}. It is shown only now: "
          "keep it in a file readable by its user only (e.g. ~/.config/xunjian/token) or in XUNJIAN_TOKEN.",
          file=sys.stderr)
    return EXIT_OK


def _cmd_tokens_list(args: argparse.Namespace) -> int:
    rows = Client().get("/api/v1/tokens")
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    now = time.time()
    print(render(["NAME", "ROLE", "CREATED", "BY", "EXPIRES", "STATE"],
                 [(r["name"], r["role"], _when(r["created_at"]), r["created_by"], _when(r["expires_at"]),
                   "revoked" if r["revoked_at"] else ("expired" if r["expires_at"] <= now else "active"))
                  for r in rows]))
    return EXIT_OK


def _cmd_tokens_revoke(args: argparse.Namespace) -> int:
    if args.config is not None:
        trust, actor = _local_trust(args.config)
        trust.revoke_token(actor, args.name)
        trust.store.close()
    else:
        Client().post(f"/api/v1/tokens/{args.name}/revoke", {})
    print(f"token {args.name} revoked")
    return EXIT_OK


def _cmd_agents_enroll(args: argparse.Namespace) -> int:
    if args.config is not None:
        trust, actor = _local_trust(args.config)
        token, expires = trust.enroll_agent(actor, args.id, _seconds(args.expires))
        trust.store.close()
    else:
        body = {"expires_in": args.expires} if args.expires else {}
        row = Client().post(f"/api/v1/agents/{args.id}/enroll", body)
        token, expires = row["token"], row["expires_at"]
    print(token)
    print(f"enrollment token for agent {args.id}, single use, valid until {_when(expires)}. Put it in the file "
          "named by collector.tls.enroll_token_file in that agent's agent.yaml (mode 0600), with the CA certificate "
          "as collector.tls.ca_file, and start the agent.", file=sys.stderr)
    return EXIT_OK


def _cmd_agents_list(args: argparse.Namespace) -> int:
    rows = Client().get("/api/v1/agents", retired="1" if args.retired else None)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(render(["AGENT", "HOST", "STATE", "LAST SEEN", "VERSION", "SPOOL", "RETIRED"],
                 [(a["id"], a["hostname"], "retired" if a.get("retired_at") else ("up" if a["connected"] else "DOWN"),
                   _when(a["last_seen"]), a["version"], a["spool_depth"], a.get("retire_reason") or "")
                  for a in rows]))
    return EXIT_OK


def _cmd_agents_change(args: argparse.Namespace) -> int:
    row = Client().post(f"/api/v1/agents/{args.id}/{args.action}", {"reason": args.reason})
    if args.action == "retire":
        print(f"agent {args.id} retired: {row['series_removed']} series removed, {row['incidents_resolved']} "
              f"incidents resolved, {len(row['certificates_revoked'])} certificates revoked")
    else:
        print(f"agent {args.id}: {len(row['revoked'])} certificates revoked")
    return EXIT_OK


def _cmd_agents_certificates(args: argparse.Namespace) -> int:
    rows = Client().get("/api/v1/certificates", agent=args.id)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(render(["SERIAL", "AGENT", "HOW", "ISSUED", "NOT AFTER", "REVOKED"],
                 [(r["serial"], r["agent_id"], r["how"], _when(r["issued_at"]), _when(r["not_after"]),
                   r["revoke_reason"] if r["revoked_at"] else "") for r in rows]))
    return EXIT_OK


def _cmd_audit_export(args: argparse.Namespace) -> int:
    client = Client()
    after = args.after
    while True:
        page = client.get("/api/v1/audit", after=after, limit=AUDIT_PAGE)
        for entry in page:
            print(json.dumps(entry, ensure_ascii=False, sort_keys=True))
        if len(page) < AUDIT_PAGE:
            return EXIT_OK
        after = int(page[-1]["id"])


def _when(at: Any) -> str:
    if not isinstance(at, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))

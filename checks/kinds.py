"""Which module implements each check kind. Modules load on first use so the agent imports only what it runs."""

from __future__ import annotations

import difflib
import importlib

from checks.spec import CheckSpec

KIND_MODULES: dict[str, str] = {
    "host.cpu": "checks.host",
    "host.memory": "checks.host",
    "host.swap": "checks.host",
    "host.disk": "checks.host",
    "host.load": "checks.host",
    "host.inodes": "checks.host",
    "host.uptime": "checks.host",
    "host.process": "checks.host",
    "host.port": "checks.host",
    "host.file": "checks.host",
    "host.windows_service": "checks.host_windows",
    "host.log": "checks.logwatch",
    "host.ntp": "checks.ntp",
    "command": "checks.command",
    "tcp": "checks.interface.tcp",
    "http": "checks.interface.http",
    "soap": "checks.interface.soap",
    "tls.cert": "checks.interface.tls",
    "hl7.mllp": "checks.interface.hl7",
    "dicom.echo": "checks.interface.dicom",
    "dns": "checks.interface.dns",
    "agent.spool": "checks.agent_self",
    "sql.metric": "checks.sql.kinds",
    "sql.assert": "checks.sql.kinds",
    "sql.findings": "checks.sql.kinds",
    "job.window": "checks.jobs.kind",
    "migration.reconcile": "checks.reconcile.migration",
    "reconcile.payments": "checks.reconcile.payments",
    "reconcile.totals": "checks.reconcile.totals",
    "sql.reachable": "checks.sql.kinds",
    "sql.blocking": "checks.sql.blocking",
    "sql.plans": "checks.sql.plans",
    "sql.settings": "checks.sql.settings",
}

REACHABILITY_KINDS = ("sql.reachable",)
"""Kinds that say whether a target can be reached at all: the parent of every other check on their target."""

FINDINGS_KINDS = ("sql.findings", "sql.blocking", "sql.plans", "sql.settings", "migration.reconcile", "reconcile.")
"""Kinds (or kind prefixes) whose results carry findings: DBA findings and reconciliation discrepancies; the
collector keeps the findings of these, and of undeclared kinds."""


def spec_class(kind: str) -> type[CheckSpec]:
    """The CheckSpec subclass for `kind`; ValueError with a suggestion when the kind is unknown."""
    module_name = KIND_MODULES.get(kind)
    if module_name is None:
        hint = difflib.get_close_matches(kind, KIND_MODULES, n=1, cutoff=0.5)
        suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ValueError(f"unknown kind {kind!r}{suffix}; see docs/check-kinds.md for the list")
    module = importlib.import_module(module_name)
    specs: dict[str, type[CheckSpec]] = module.SPECS
    return specs[kind]

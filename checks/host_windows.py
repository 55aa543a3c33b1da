"""Windows services through psutil.win_service_get (only present on Windows): state and start type."""

from __future__ import annotations

import fnmatch
from typing import Any, ClassVar, Literal

import psutil
from pydantic import Field, model_validator

from checks.context import RunContext
from checks.result import Outcome, Result, Status, unknown
from checks.spec import CheckSpec


def _is_pattern(name: str) -> bool:
    return "*" in name or "?" in name


def _service_names() -> list[str]:
    """Names of all services, from psutil.win_service_iter()."""
    return [svc.name() for svc in psutil.win_service_iter()]  # type: ignore[attr-defined]


ServiceState = Literal["running", "stopped", "paused", "start_pending", "stop_pending", "continue_pending",
                       "pause_pending"]
"""psutil's WindowsService.status() values."""


class HostWindowsService(CheckSpec):
    kind: Literal["host.windows_service"] = "host.windows_service"
    kind_doc: ClassVar[str] = (
        "Windows services by service name (not display name) or name pattern (MSSQL$*), one result per service "
        "(key = name): CRITICAL "
        "when the state is not `expect_state` or, if `expect_start_type` is set, the start type differs (a "
        "database service switched to manual start will not come back after a reboot). A service that does "
        "not exist is CRITICAL (not_found). On other operating systems the result is UNKNOWN (not_found). "
        "The value is 1 when the service is in the expected state, else 0; the summary names the state, "
        "start type, pid and account."
    )
    example: ClassVar[str] = (
        "id: mssql.services\nkind: host.windows_service\nservices: [MSSQLSERVER, SQLSERVERAGENT]\n"
        "expect_state: running\nexpect_start_type: automatic\npriority: high\n"
    )
    services: list[str] = Field(
        description="Service names, e.g. MSSQLSERVER, SQLSERVERAGENT, W3SVC, or patterns with * and ? (case-insensitive) "
        "such as MSSQL$* for every named SQL Server instance; a pattern that matches nothing is CRITICAL (not_found).")
    expect_state: ServiceState = Field("running", description="The state the service must be in.")
    expect_start_type: Literal["automatic", "manual", "disabled"] | None = Field(
        None, description="When set, a different start type is CRITICAL too.")

    @model_validator(mode="after")
    def _some_services(self) -> HostWindowsService:
        if not self.services:
            raise ValueError("services: list at least one service name")
        return self

    def probe(self, ctx: RunContext) -> list[Result]:
        get = getattr(psutil, "win_service_get", None)
        if get is None:
            return [unknown(self.id, Outcome.NOT_FOUND, "Windows services exist only on Windows",
                            target=self.target or "", key=name) for name in self.services]
        results: list[Result] = []
        for name in self.services:
            if not _is_pattern(name):
                results.append(self._one(get, name))
                continue
            try:
                matched = sorted(n for n in _service_names() if fnmatch.fnmatchcase(n.lower(), name.lower()))
            except (psutil.AccessDenied, OSError) as exc:
                results.append(unknown(self.id, Outcome.PERMISSION_DENIED, f"cannot list services: {exc}",
                                       target=self.target or "", key=name))
                continue
            if not matched:
                results.append(Result(check_id=self.id, status=Status.CRITICAL, outcome=Outcome.NOT_FOUND,
                                      target=self.target or "", key=name, value=0.0,
                                      summary=f"no service matches {name}"))
            results.extend(self._one(get, n) for n in matched)
        return results

    def _one(self, get: Any, name: str) -> Result:
        target = self.target or ""
        try:
            info: dict[str, Any] = get(name).as_dict()
        except psutil.NoSuchProcess:
            return Result(check_id=self.id, status=Status.CRITICAL, outcome=Outcome.NOT_FOUND, target=target, key=name,
                          value=0.0, summary=f"service {name} does not exist")
        except psutil.AccessDenied:
            return unknown(self.id, Outcome.PERMISSION_DENIED, f"service {name}: access denied", target=target, key=name)
        except OSError as exc:
            return unknown(self.id, Outcome.INTERNAL_ERROR, f"service {name}: {exc}", target=target, key=name)
        state, start = info.get("status"), info.get("start_type")
        desc = f"{info.get('display_name') or name} ({name}) is {state}, start {start}"
        if info.get("pid"):
            desc += f", pid {info['pid']}"
        if info.get("username"):
            desc += f", as {info['username']}"
        problems = []
        if state != self.expect_state:
            problems.append(f"expected {self.expect_state}")
        if self.expect_start_type is not None and start != self.expect_start_type:
            problems.append(f"expected start {self.expect_start_type}")
        if problems:
            return Result(check_id=self.id, status=Status.CRITICAL, target=target, key=name, value=0.0,
                          summary=f"{desc} ({'; '.join(problems)})")
        return Result(check_id=self.id, status=Status.OK, target=target, key=name, value=1.0, summary=desc)


SPECS: dict[str, type[CheckSpec]] = {"host.windows_service": HostWindowsService}

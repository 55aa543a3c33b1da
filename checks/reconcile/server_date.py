"""The database server's date: reconciliation periods ("yesterday", "last month") are counted on its clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from checks.reconcile import canonical
from checks.sql.build import SERVER_TODAY


def server_today(session: Any, timeout: float, check_id: str) -> dt.date:
    rows = session.run(SERVER_TODAY, timeout=timeout, max_rows=1, check_id=check_id)
    if not rows.rows:
        raise canonical.CanonicalError("the server did not say its date")
    return dt.date.fromisoformat(canonical.day(rows.rows[0][0]))

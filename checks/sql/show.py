"""MySQL/MariaDB SHOW statements a pack may name: fixed strings in code, never text a pack supplies.

Replica state (Seconds_Behind_Master, thread states, last errors) has no SELECT-able source on MariaDB or
on MySQL before 8.0, and InnoDB's latest deadlock only appears in SHOW ENGINE INNODB STATUS. A query
variant names one of these with `show: NAME`; what is sent is the string below, so no comment, LIKE
pattern or second statement of the author's can ride along.
"""

from __future__ import annotations

import re

SHOW_STATEMENTS: dict[str, str] = {
    "replica_status": "SHOW REPLICA STATUS",
    "slave_status": "SHOW SLAVE STATUS",
    "all_replicas_status": "SHOW ALL REPLICAS STATUS",
    "all_slaves_status": "SHOW ALL SLAVES STATUS",
    "master_status": "SHOW MASTER STATUS",
    "binary_log_status": "SHOW BINARY LOG STATUS",
    "binary_logs": "SHOW BINARY LOGS",
    "replicas": "SHOW REPLICAS",
    "slave_hosts": "SHOW SLAVE HOSTS",
    "global_status": "SHOW GLOBAL STATUS",
    "global_variables": "SHOW GLOBAL VARIABLES",
    "engine_innodb_status": "SHOW ENGINE INNODB STATUS",
}
"""Name → statement. replica_status/replicas: MySQL 8.0.22+ and MariaDB 10.5.1+; all_*: MariaDB multi-source;
binary_log_status: MySQL 8.2+ (master_status before); engine_innodb_status needs PROCESS."""

_BY_TEXT = {text: name for name, text in SHOW_STATEMENTS.items()}


def show_name_for(sql: str) -> str | None:
    """The name of a fixed SHOW statement written out in full (`sql: SHOW SLAVE STATUS` in an older pack), or None.

    Only the exact statement matches (any case, any spacing, one trailing `;`): no comment, no LIKE, nothing
    after it. The pack's text is then dropped and the fixed string sent instead.
    """
    text = " ".join(sql.split()).upper()
    text = text[:-1].rstrip() if text.endswith(";") else text
    if not re.fullmatch(r"[A-Z ]+", text):
        return None
    return _BY_TEXT.get(text)

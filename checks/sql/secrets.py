"""Registered secrets are scrubbed from every error message a database check reports or logs."""

from __future__ import annotations

import re
import threading

MASK = "********"
_lock = threading.Lock()
_secrets: set[str] = set()
_CONN_STRING_PASSWORD = re.compile(r"(?i)\b(pwd|password)\s*=\s*(\{[^}]*\}|[^;\s]*)")
_URI_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def register_secret(value: str | None) -> None:
    """Remember `value` so scrub() masks it wherever it appears; empty values are ignored."""
    if value:
        with _lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """`text` with every registered secret and any password in a connection string or URI masked."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    text = _CONN_STRING_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return _URI_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", text)

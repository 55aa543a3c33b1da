"""Server versions as comparable tuples, so packs can gate SQL on "13" or "8.0.22"."""

from __future__ import annotations

import re

Version = tuple[int, ...]
_LEADING = re.compile(r"(\d+(?:\.\d+)*)")


def parse_version(text: str) -> Version:
    """The first dotted number in `text` ("15.20 (Debian …)", "10.11.19-MariaDB") as a tuple of ints."""
    m = _LEADING.search(text)
    if m is None:
        raise ValueError(f"expected a version such as 13 or 8.0.22, got {text!r}")
    return tuple(int(p) for p in m.group(1).split("."))


def format_version(version: Version) -> str:
    return ".".join(str(p) for p in version) if version else "unknown"

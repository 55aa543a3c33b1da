"""Files holding secrets (private keys, identities): written with mode 0600 from the first byte, replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file created 0600, fsync it, and rename it over `path`: never readable by others,
    not even for an instant, and never half-written."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)

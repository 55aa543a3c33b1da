"""A user's clone is all there is: no file points outside the repository, and every relative link in the docs
leads to a file that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import ROOT

_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
_OUTSIDE = ("DESIGN.md", "../shared", "STYLE.md", "DB-CHECKS.md")


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


def test_nothing_points_at_files_outside_the_repository() -> None:
    offenders = []
    for path in tracked("*.py", "*.md", "*.yaml", "*.toml", "*.sh", "*.service", "Makefile"):
        if path == Path(__file__):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {word}" for word in _OUTSIDE if word in text]
    assert offenders == []


def test_relative_links_in_the_docs_resolve_inside_the_repository() -> None:
    broken = []
    for doc in tracked("*.md"):
        text = re.sub(r"`[^`\n]*`", "", doc.read_text(encoding="utf-8"))  # code spans hold regexes, not links
        for target in _LINK.findall(text):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []

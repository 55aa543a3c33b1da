"""docs/configuration.md is generated from the config models; it must be current."""

from __future__ import annotations

from tests.conftest import ROOT
from xunjian.config_docs import render


def test_configuration_docs_are_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), "docs/configuration.md is stale: run `python -m xunjian.config_docs > docs/configuration.md`"


def test_configuration_docs_do_not_depend_on_this_machine() -> None:
    import socket

    assert f"`{socket.gethostname()}`" not in render()

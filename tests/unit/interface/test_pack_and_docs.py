"""The example pack loads, and every interface kind carries what the generated reference needs."""

from __future__ import annotations

import yaml

from checks.kinds import KIND_MODULES, spec_class
from checks.pack import load_checks
from checks.spec import CheckSpec

INTERFACE_KINDS = ["tcp", "http", "soap", "tls.cert", "hl7.mllp", "dicom.echo", "dns"]


def test_interface_kinds_are_registered() -> None:
    for kind in INTERFACE_KINDS:
        assert KIND_MODULES[kind].startswith("checks.interface.")
        assert spec_class(kind).model_fields["kind"].default == kind


def test_every_kind_documents_itself_and_its_options() -> None:
    common = set(CheckSpec.model_fields)
    for kind in INTERFACE_KINDS:
        cls = spec_class(kind)
        assert len(cls.kind_doc) > 80, kind
        for name, field in cls.model_fields.items():
            if name not in common:
                assert field.description, f"{kind}.{name} has no description"
        example = cls.model_validate(yaml.safe_load(cls.example))
        assert example.kind == kind


def test_example_pack_loads_with_lines() -> None:
    checks = load_checks(["builtin:interfaces-example"])
    kinds = {s.id: s.kind for s in checks.specs}
    assert kinds == {
        "his.web.login": "http",
        "his.app.port": "tcp",
        "lis.hl7.link": "hl7.mllp",
        "pacs.dicom.echo": "dicom.echo",
        "insurance.front.health": "http",
        "insurance.front.cert": "tls.cert",
    }
    assert all(s.priority in ("high", "medium") and s.runbook for s in checks.specs)
    assert str(checks.origin[("lis.hl7.link", "")]).endswith("interfaces-example.yaml:34")

"""pyproject.toml promises what the committed generated code needs: grpcio and protobuf at least the versions
it was generated for (it refuses to import otherwise), and the exact generator that reproduces it."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def requirement(name: str) -> str:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(rf'^\s*"{re.escape(name)}([<>=!~][^"]*)"', pyproject, re.MULTILINE)
    assert m, f"{name} is not a dependency in pyproject.toml"
    return m.group(1)


def floor(name: str) -> tuple[int, ...]:
    m = re.search(r">=([\d.]+)", requirement(name))
    assert m, f"{name} has no lower bound: {requirement(name)}"
    return version(m.group(1))


def test_grpcio_floor_is_what_the_generated_stubs_need() -> None:
    generated = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", (ROOT / "protos/patrol_pb2_grpc.py").read_text())
    assert generated
    assert floor("grpcio") >= version(generated.group(1))
    assert floor("grpcio-health-checking") >= version(generated.group(1))
    assert requirement("grpcio-tools") == f"=={generated.group(1)}", "the generator is pinned to what made the stubs"


def test_protobuf_floor_is_the_runtime_the_generated_module_validates() -> None:
    text = (ROOT / "protos/patrol_pb2.py").read_text()
    m = re.search(r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),",
                  text)
    assert m
    major, minor, patch = (int(g) for g in m.groups())
    assert floor("protobuf") >= (major, minor, patch)
    assert f"<{major + 1}" in requirement("protobuf"), "a new protobuf major refuses code generated for this one"


def test_mypy_protobuf_is_pinned() -> None:
    assert requirement("mypy-protobuf").startswith("=="), "the committed .pyi is what one exact version writes"

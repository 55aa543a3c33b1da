"""The committed protobuf modules must be exactly what scripts/gen_protos.sh produces from patrol.proto."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

GENERATED = ["patrol_pb2.py", "patrol_pb2_grpc.py", "patrol_pb2.pyi"]


def test_generated_modules_match_proto(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    out.mkdir()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assert shutil.which("protoc-gen-mypy", path=env["PATH"]), "mypy-protobuf is part of the test extra"
    subprocess.run(["bash", str(ROOT / "scripts" / "gen_protos.sh"), str(out)], check=True, env=env, cwd=ROOT)
    for name in GENERATED:
        fresh = (out / name).read_text()
        committed = (ROOT / "protos" / name).read_text()
        assert fresh == committed, f"protos/{name} is stale: run `make protos` and commit the result"


def test_generated_module_imports_as_protos_package() -> None:
    from protos import patrol_pb2, patrol_pb2_grpc

    frame = patrol_pb2.AgentFrame(hello=patrol_pb2.Hello(agent_id="his-app-01"))
    assert frame.WhichOneof("frame") == "hello"
    assert hasattr(patrol_pb2_grpc, "CollectorStub")

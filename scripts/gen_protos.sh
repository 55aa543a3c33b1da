#!/usr/bin/env bash
# Regenerates protos/patrol_pb2*.py from protos/patrol.proto with the pinned grpcio-tools of the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-protos}
python -m grpc_tools.protoc -I. --python_out="$out" --grpc_python_out="$out" --mypy_out="$out" protos/patrol.proto
if [ "$out" != protos ]; then mv "$out"/protos/* "$out"/ && rmdir "$out"/protos; else mv protos/protos/* protos/ && rmdir protos/protos; fi

#!/usr/bin/env bash
# The lent GPU's one command (bench/README-gpu.md): the device, then bench/gpu.py with these
# arguments. Its report and the trained demo models land in $OUT (or --out).
set -u
cd "$(dirname "$0")/.." || exit 1
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>&1 | head -3
# The project is not installed on the bare machine: its root is the import path.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 bench/gpu.py "$@"

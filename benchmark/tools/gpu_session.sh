#!/usr/bin/env bash
# The one device call of a GPU session (issue 17), run from the repository root on the device:
#   bash benchmark/tools/gpu_session.sh [--budget-s 540] [--data-root DIR]
# The device image's own python3, this tree first on the path, everything handed back to $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHONUNBUFFERED=1 PYTHONPATH=. python3 -m benchmark.tools.gpu_session --out "${OUT:?OUT must name the folder handed back}" "$@"

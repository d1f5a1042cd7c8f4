#!/usr/bin/env bash
# Set up .venv, then open napari with the reconstruction dock and the MRI sample loaded.
# Without a display (e.g. over ssh or in CI) it starts under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
  exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/napari-unrollrecon gui "$@"
fi
exec .venv/bin/napari-unrollrecon gui "$@"

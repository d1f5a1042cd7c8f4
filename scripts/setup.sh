#!/usr/bin/env bash
# Create or refresh the project's virtual environment at .venv and the system packages napari
# needs to draw under Xvfb. Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

# System libraries: Xvfb and the xcb plugins Qt 6 needs, tcmalloc for faster CPU training.
need_apt=()
command -v Xvfb >/dev/null 2>&1 || need_apt+=(xvfb xauth)
for lib in libxcb-icccm.so.4 libxcb-keysyms.so.1 libxkbcommon-x11.so.0 libxcb-cursor.so.0 libEGL.so.1 libGL.so.1 libtcmalloc_minimal.so.4; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || { need_apt+=(libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
    libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-randr0 libxcb-shape0 libxcb-cursor0 libgl1 libegl1 \
    libglib2.0-0 libfontconfig1 libdbus-1-3 libtcmalloc-minimal4); break; }
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages: ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install (Debian names): ${need_apt[*]}" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first and pinned: the CPU wheel of this machine; the package itself accepts torch>=2.4.
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q torch==2.13.0
fi
stamp=.venv/.unrollrecon-stamp
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

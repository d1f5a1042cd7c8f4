#!/usr/bin/env bash
# Set up .venv, then run the whole test suite (GUI tests under Xvfb through pytest-xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"

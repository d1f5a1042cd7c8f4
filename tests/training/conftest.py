"""Make the top-level ``training`` package and the test method importable (pytest puts only the
test folders on sys.path); torchrun workers get the same paths through PYTHONPATH."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

"""Shorten a training run's console output for the repository: progress bars every 500 steps,
every other line (resumes, warm starts, the final summary) kept.

    python scripts/clean_log.py runs/NAME.out > training/runs/NAME/stdout.log
"""

import re
import sys

seen, keep = set(), []
for part in re.split(r"[\r\n]", open(sys.argv[1], encoding="utf-8", errors="replace").read()):
    for marker in ("resumed from", "initialised from", "no checkpoint in"):
        if marker in part:
            part = part[part.index(marker):]
    bar = re.search(r"\| *(\d+)/(\d+) \[", part)
    if bar:
        step = int(bar.group(1))
        if step % 500 or step in seen or "val=" not in part:
            continue
        seen.add(step)
    if part.strip():
        keep.append(part.rstrip())
print("\n".join(keep))

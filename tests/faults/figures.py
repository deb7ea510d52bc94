"""Figures of the fault runs, appended as JSON lines to test-output/fault-figures.jsonl and printed."""
from __future__ import annotations

import json
import time
from pathlib import Path

FIGURES_FILE = Path(__file__).resolve().parents[2] / "test-output" / "fault-figures.jsonl"


def record(test: str, **figures) -> dict:
    """Append one line of figures for ``test`` (lost and duplicated must be among them where they apply)."""
    line = {"test": test, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES_FILE.open("a") as f:
        f.write(json.dumps(line, sort_keys=False, default=str) + "\n")
    print(f"\nFAULT FIGURES {json.dumps(line, default=str)}")
    return line

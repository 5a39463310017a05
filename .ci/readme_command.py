"""Print the README's fenced command line that mentions `pytest` (or `esmsim demo` with argument `demo`)."""

import re
import sys
from pathlib import Path

which = sys.argv[1] if len(sys.argv) > 1 else "test"
text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
for block in re.findall(r"```[a-zA-Z]*\n(.*?)```", text, re.S):
    for line in block.splitlines():
        line = line.strip().lstrip("$ ").strip()
        if (which == "test" and "pytest" in line) or (which == "demo" and "esmsim demo" in line):
            print(line)
            sys.exit(0)
sys.exit(f"README.md has no fenced line for {which!r}")

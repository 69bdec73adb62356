"""Pass Molecule's output through, and end with how long each action took (from its Executing/Executed lines)."""

from __future__ import annotations

import re
import sys
import time

ACTION = re.compile(r"\[(?P<scenario>[\w-]+) > (?P<action>[\w-]+)\] (?P<what>Executing|Executed)")


def main() -> int:
    started: dict[tuple[str, str], float] = {}
    took: list[tuple[str, str, float]] = []
    for line in sys.stdin:
        sys.stdout.write(line)
        sys.stdout.flush()
        match = ACTION.search(line)
        if not match:
            continue
        key = (match["scenario"], match["action"])
        if match["what"] == "Executing":
            started[key] = time.monotonic()
        elif key in started:
            took.append((*key, time.monotonic() - started.pop(key)))
    if took:
        print("\nMolecule phases:")
        for scenario, action, seconds in took:
            print(f"  {scenario:>12} {action:<12} {seconds:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Summarise py-spy's raw (collapsed) profiles that `pipeline.py --profile DIR` writes.

For each file: the share of CPU samples by package of the innermost frame (where the
time is spent: asyncpg, aiokafka, pydantic, saxonche, reportlab, ...), and the functions
of the project's own code with the largest inclusive share (what spends it).

    uv run --frozen python bench/profile_summary.py .local/bench/profile/*.txt
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
OWN = ("nordflow_", "mapper/", "factoring_gateway/", "distribution_router/", "ledger_closer/")


def package_of(path: str) -> str:
    """`site-packages/asyncpg/…` → asyncpg; the project's code by its package; stdlib by module."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    for marker in ("/src/", "/lib/python3.11/"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            head = rest.split("/", 1)[0]
            return head.removesuffix(".py") if marker == "/src/" else f"stdlib {head}"
    if "/python3.11/" in path:
        return "stdlib " + path.rsplit("/python3.11/", 1)[1].split("/", 1)[0]
    return path.rsplit("/", 1)[-1] or "?"


def summarise(path: Path, top: int) -> str:
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";") if f]
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        if not frames:
            continue
        leaf = FRAME.match(frames[-1])
        by_package[package_of(leaf.group("file")) if leaf else "?"] += count
        seen: set[str] = set()
        for frame in frames:
            m = FRAME.match(frame)
            if m is None or not any(o in m.group("file") for o in OWN):
                continue
            name = f"{m.group('func')} ({m.group('file').rsplit('/src/', 1)[-1]})"
            if name not in seen:
                seen.add(name)
                inclusive[name] += count
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.stem}: {total} samples"]
    lines.append("  where (package of the innermost frame):")
    lines += [f"    {n / total:6.1%}  {p}" for p, n in by_package.most_common(top)]
    lines.append("  what (the project's functions, inclusive):")
    lines += [f"    {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    for path in args.files:
        print(summarise(path, args.top))
        print()


if __name__ == "__main__":
    main()

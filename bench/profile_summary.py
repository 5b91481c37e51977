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
LIBRARIES = (
    "asyncpg",
    "aiokafka",
    "pydantic",
    "json",
    "opentelemetry",
    "saxonche",
    "lxml",
    "reportlab",
    "httpx",
    "aiosmtplib",
    "prometheus_client",
    "trace",  # opentelemetry.trace, as py-spy names it
)
OWN = ("nordflow_", "mapper/", "factoring_gateway/", "distribution_router/", "ledger_closer/")


def package_of(path: str) -> str:
    """The package of a frame's file as py-spy names it (relative to its sys.path entry):
    `asyncpg/connection.py` → asyncpg, `selectors.py` → selectors (the stdlib's)."""
    return path.split("/", 1)[0].removesuffix(".py") or "?"


def summarise(path: Path, top: int) -> str:
    by_package: Counter[str] = Counter()
    under: Counter[str] = Counter()  # samples with the package anywhere on the stack
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
        packages = set()
        for frame in frames:
            m = FRAME.match(frame)
            if m is not None:
                packages.add(package_of(m.group("file")))
        for package in packages & set(LIBRARIES):
            under[package] += count
        seen: set[str] = set()
        for frame in frames:
            m = FRAME.match(frame)
            if m is None or not any(o in m.group("file") for o in OWN):
                continue
            if m.group("file").endswith("cli.py"):  # the process's entry point: always there
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
    lines.append("  under (libraries anywhere on the stack):")
    lines += [f"    {n / total:6.1%}  {p}" for p, n in under.most_common()]
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

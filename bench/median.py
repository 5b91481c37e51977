"""The median of several `make bench` runs (their `results.json`), figure by figure.

On a shared 2-core machine one run is noise; run the benchmark a few times (copy
`.local/bench/results.json` aside after each, or pass `--json PATH`) and report this:

    uv run --frozen python bench/median.py run1.json run2.json run3.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

PER_HOUR = 1_000_000 / 3600


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:,.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = [json.loads(p.read_text(encoding="utf-8")) for p in args.files]
    raw = median([r["raw_loop_per_second"] for r in runs])
    loads = ", ".join(f"{r['machine']['load'][0]:.1f}" for r in runs)
    first = runs[0]["machine"]
    print(
        f"median of {len(runs)} runs on {first['cores']} cores, {first['cpu']} "
        f"(load averages at the end of each: {loads}); {runs[0]['at'][:10]}"
    )
    print(f"raw consume→produce loop: {fmt(raw)} records/s")
    print()
    print(
        "| stage | replicas | invoices/s, median (each run) | ratio to the raw loop "
        "| 2 replicas over 1 | replicas for 1M/h |\n|---|---|---|---|---|---|"
    )
    keys: list[tuple[str, int]] = []
    for r in runs:
        for s in r["stages"]:
            key = (s["stage"], s["replicas"])
            if key not in keys:
                keys.append(key)
    one: dict[str, float | None] = {}
    for name, replicas in keys:
        rates = [
            s["per_second"]
            for r in runs
            for s in r["stages"]
            if (s["stage"], s["replicas"]) == (name, replicas)
        ]
        rate = median(rates)
        if replicas == 1:
            one[name] = rate
        ratio = f"{rate / raw:.3f}" if rate and raw else "-"
        scale = f"{rate / o:.2f}" if replicas > 1 and rate and (o := one.get(name)) else ""
        need = str(math.ceil(PER_HOUR / rate)) if replicas == 1 and rate else ""
        each = ", ".join(fmt(x) for x in rates)
        print(f"| {name} | {replicas} | **{fmt(rate)}** ({each}) | {ratio} | {scale} | {need} |")
    print()
    for replicas in sorted({lat["replicas"] for r in runs for lat in r["latency"]}):
        lats = [lat for r in runs for lat in r["latency"] if lat["replicas"] == replicas]
        p50 = median([lat["p50"] for lat in lats])
        p99 = median([lat["p99"] for lat in lats])
        print(
            f"fetched→distributed, {replicas} replica(s), {lats[0]['invoices']} invoices at "
            f"{lats[0]['offered_per_second']:.0f}/s: p50 {fmt(p50, 2)} s, p99 {fmt(p99, 2)} s "
            f"(p99 of each run: {', '.join(fmt(lat['p99'], 2) for lat in lats)})"
        )


if __name__ == "__main__":
    main()

"""`python -m benchmarks [NAME ...]`: run the benchmarks (all by default) and append the figures
to benchmarks/RESULTS.md, with the date, the machine and how busy it was.

    train     fit epoch vs. a per-item DataLoader loop; batch 2048 vs. the compute-bound limit
    search    a 16-trial search: busy share, fixed costs, worker memory, vs. plain Optuna
    estimate  `poptune estimate`'s prediction next to the measured wall of the same search
    growth    epoch time at 10× the rows
    quality   test RMSE of the search's winner vs plain Optuna, seed_mlp and HGB at equal wall
              time, and of its final model vs the anchors (LightGBM, FLAML AutoML, TabM-D,
              RealMLP-TD; the `bench` extra), built-in data at the real difficulty, two sizes,
              3 seeds (hours with the anchors: `python -m benchmarks.quality --sizes 20k` for
              the small size alone, `--no-anchors` without them)
    budget    the final model at 6× the quality benchmark's search budget against 1× (≈20k
              tracks, 3 seeds; about 15 minutes)
    ablation  each lever of the search (recipe, family starts, finalists) removed in turn
    scale     the search driver at 32 and 64 slots (surrogate trials, 2,000 of them) vs Ray's
              plain wiring: wall vs ideal, ramp-up, driver CPU (about 26 minutes;
              `python -m benchmarks.scale --quick` for a small one)
    sampler   TPE with several suggestions a fit vs one: searcher CPU and the best value
              found on a known bowl (no training; 32 and 64 trials in flight, 12 seeds; about
              5 minutes)
    chaos     a search on 3 worker nodes that keep being SIGKILLed and replaced, against the
              same search without kills: every trial accounted for once; and the driver's
              memory over 10,000 surrogate trials (about 25 minutes;
              `python -m benchmarks.chaos --quick` for a small one)

Every figure is a ratio of things measured side by side in the same run: these machines are
shared, and seconds from different runs do not compare. `make bench` runs them all (about an
hour on 2 cores, most of it `quality` and `scale`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from benchmarks._common import Figure, load_average, machine

BENCHMARKS = (
    "train", "search", "estimate", "growth", "quality", "budget", "ablation", "scale", "sampler",
    "chaos",
)  # fmt: skip
RESULTS = Path(__file__).with_name("RESULTS.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="default: all of them")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {BENCHMARKS}")
    names = args.names or list(BENCHMARKS)

    header = f"{time.strftime('%Y-%m-%d %H:%M')} · {machine()}"
    print(header, flush=True)
    started = time.perf_counter()
    sections: list[tuple[str, list[Figure], str, str, float]] = []
    for name in names:
        before = load_average()
        print(f"\n== {name} ({before})", flush=True)
        t0 = time.perf_counter()
        figures = importlib.import_module(f"benchmarks.{name}").run()
        seconds = time.perf_counter() - t0
        after = load_average()
        for figure in figures:
            print(figure.line(), flush=True)
        print(f"({name}: {seconds:.0f} s; after: {after})", flush=True)
        sections.append((name, figures, before, after, seconds))
    total = time.perf_counter() - started
    print(f"\nall benchmarks: {total:.0f} s", flush=True)
    if not args.no_record:
        _append(header, sections, total)
        print(f"appended to {RESULTS}")
    return 0


def _append(header: str, sections: list, total: float) -> None:
    lines = [f"\n## {header}\n", f"Benchmarks run: {', '.join(s[0] for s in sections)} "
             f"in {total:.0f} s.\n"]  # fmt: skip
    lines.append("| figure | value | target | met | measured side by side |")
    lines.append("|---|---|---|---|---|")
    for _, figures, *_ in sections:
        for f in figures:
            met = {True: "yes", False: "**no**", None: ""}[f.met]
            detail = f.detail.replace("|", "/")
            lines.append(f"| {f.name} | {f.value:.3g}{f.unit} | {f.target} | {met} | {detail} |")
    lines.append("")
    for name, _, before, after, seconds in sections:
        lines.append(f"- {name}: {seconds:.0f} s; {before} before it, {after} after")
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())

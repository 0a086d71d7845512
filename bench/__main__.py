"""``python -m bench``: run every benchmark and print its figures."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "bench.bench_receiver",
    "bench.bench_discord",
    "bench.bench_page",
    "bench.bench_slow",
    "bench.bench_postgres",
]


def main() -> None:
    """Run the benchmarks named on the command line, or all of them."""
    names = [f"bench.{n}" for n in sys.argv[1:]] or BENCHMARKS
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            print(f"skipping {name}: {exc}")
            continue
        module.main()


if __name__ == "__main__":
    main()

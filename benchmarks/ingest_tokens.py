"""Ingest of a CSV file: what reading missing-value tokens and trimming values costs.

Writes a CSV of --rows rows (two numbers, an integer, a text column with `NA` in a quarter of its rows, a label),
then times ingest's own run on it (the stage's code, in-process, best of --repeat) twice: as it is (every text
value trimmed, each token of ingest.missing a gap) and with that step switched off (values passed through as
written, the way ingest read files before). Prints both times, the ratio, and rows per second. Not a test.

    python benchmarks/ingest_tokens.py [--rows 500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def best(repeat: int, run: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from mlpipeline.io import sources
    from mlpipeline.settings import IngestParams
    from mlpipeline.stages import ingest

    with tempfile.TemporaryDirectory() as tmp:
        source, raw = Path(tmp) / "source.csv", Path(tmp) / "raw.csv"
        rng = np.random.default_rng(0)
        n = args.rows
        pd.DataFrame(
            {
                "a": rng.normal(size=n).round(3),
                "b": rng.integers(0, 100, n),
                "c": rng.choice(["x", "y", "NA", "z"], n),
                "d": rng.normal(size=n).round(2),
                "label": rng.choice(["p", "q"], n),
            }
        ).to_csv(source, index=False)
        params = IngestParams.model_construct(source=str(source), target="label", task="auto", missing=["", "NA"])
        with_tokens = best(args.repeat, lambda: ingest.run(params, raw))
        kept = sources.gaps
        sources.gaps = lambda frame, missing: frame  # type: ignore[assignment]
        try:
            passed_through = best(args.repeat, lambda: ingest.run(params, raw))
        finally:
            sources.gaps = kept
    print(f"ingest of {n:,} CSV rows (best of {args.repeat}):")
    print(f"  tokens and trimming   {with_tokens:6.2f} s  ({n / with_tokens:,.0f} rows/s)")
    print(f"  values passed through {passed_through:6.2f} s  ({n / passed_through:,.0f} rows/s)")
    print(f"  ratio                 {with_tokens / passed_through:6.2f}x")


if __name__ == "__main__":
    main()

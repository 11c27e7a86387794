"""Snapshot a warehouse's analytics and precompute tables to Parquet, and compare a warehouse
with a snapshot: the same rows and values (floats within a tolerance). Not a test: a script
for redesigns of the pipeline ("same results as before"), run by hand.

    python -m hoopflow.snapshot save    DIR [--home HOME]
    python -m hoopflow.snapshot compare DIR [--home HOME] [--start D --end D] [--tolerance 1e-9]

Each table is compared on its key (or all its columns when it has none), after both sides are
cut to the dates they share within [start, end]; timestamps are not compared.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

PHASES_COMPARED = ("analytics", "precompute")


def _tables():
    from tasks.phases import PHASE_TABLES

    return [spec for phase in PHASES_COMPARED for spec in PHASE_TABLES[phase]]


def save(folder: Path) -> dict[str, int]:
    from blocks.settings import get_settings

    folder.mkdir(parents=True, exist_ok=True)
    wh = get_settings().warehouse_block()
    counts = {}
    for spec in _tables():
        df = wh.query(f"SELECT * FROM {spec.id}")
        df.to_parquet(folder / f"{spec.id}.parquet", index=False)
        counts[spec.id] = len(df)
    return counts


def compare_frames(spec, expected: pd.DataFrame, actual: pd.DataFrame, tolerance: float) -> list[str]:
    """Differences between two versions of a table, as lines (empty: equal)."""
    out = []
    columns = [c for c, kind in spec.columns if kind != "TIMESTAMP"]
    missing = [c for c in columns if c not in expected.columns or c not in actual.columns]
    if missing:
        return [f"{spec.id}: columns {missing} not on both sides"]
    key = list(spec.key) or columns
    exp = expected[columns].sort_values(key, kind="stable").reset_index(drop=True)
    act = actual[columns].sort_values(key, kind="stable").reset_index(drop=True)
    if len(exp) != len(act):
        out.append(f"{spec.id}: {len(exp)} rows expected, {len(act)} found")
        merged = exp[key].astype(str).merge(act[key].astype(str), how="outer", indicator=True)
        for side, name in (("left_only", "missing"), ("right_only", "extra")):
            rows = merged[merged._merge == side]
            if len(rows):
                out.append(f"  {len(rows)} {name} rows, e.g. {rows.drop(columns='_merge').iloc[0].to_dict()}")
        return out
    keys_differ = (exp[key].astype(str).values != act[key].astype(str).values).any(axis=1)
    if keys_differ.any():
        return [f"{spec.id}: keys differ from row {int(np.argmax(keys_differ))}"]
    for col, kind in spec.columns:
        if col not in columns:
            continue
        e, a = exp[col], act[col]
        if kind == "FLOAT64":
            ev, av = e.astype("float64").to_numpy(), a.astype("float64").to_numpy()
            both_nan = np.isnan(ev) & np.isnan(av)
            bad = ~both_nan & ~(np.abs(ev - av) <= tolerance)
        else:
            if kind == "INT64":
                e, a = e.astype("Int64"), a.astype("Int64")
            both_na = (e.isna() & a.isna()).to_numpy()
            bad = ~both_na & (e.astype(str) != a.astype(str)).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            where = {k: exp.at[i, k] for k in key}
            out.append(f"{spec.id}.{col}: {int(bad.sum())} values differ, e.g. {where}: {e.iloc[i]!r} vs {a.iloc[i]!r}")
    return out


def compare(folder: Path, start: date | None, end: date | None, tolerance: float) -> list[str]:
    from blocks.settings import get_settings

    wh = get_settings().warehouse_block()
    problems = []
    for spec in _tables():
        path = folder / f"{spec.id}.parquet"
        if not path.is_file():
            problems.append(f"{spec.id}: not in the snapshot {folder}")
            continue
        expected = pd.read_parquet(path)
        actual = wh.query(f"SELECT * FROM {spec.id}")
        for df in (expected, actual):
            df["game_date"] = pd.to_datetime(df["game_date"]).dt.date
        lo, hi = start or date.min, end or date.max
        shared = set(expected.game_date) & set(actual.game_date)
        only = (set(expected.game_date) ^ set(actual.game_date)) & {d for d in set(expected.game_date) | set(actual.game_date) if lo <= d <= hi}
        if only:
            problems.append(f"{spec.id}: dates on one side only: {sorted(only)[:5]}")
        keep = {d for d in shared if lo <= d <= hi}
        found = compare_frames(spec, expected[expected.game_date.isin(keep)], actual[actual.game_date.isin(keep)], tolerance)
        problems += found
        print(f"{spec.id:<45} {len(keep):>4} dates  {'equal' if not found else 'DIFFERENT'}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hoopflow.snapshot", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("save", "compare"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--home", help="the hoopflow home whose warehouse is read (default: HOOPFLOW_HOME)")
    parser.add_argument("--start", type=date.fromisoformat)
    parser.add_argument("--end", type=date.fromisoformat)
    parser.add_argument("--tolerance", type=float, default=1e-9)
    args = parser.parse_args(argv)
    if args.home:
        os.environ["HOOPFLOW_HOME"] = args.home
    if args.command == "save":
        for table, n in save(args.folder).items():
            print(f"{table:<45} {n:>7} rows")
        return 0
    problems = compare(args.folder, args.start, args.end, args.tolerance)
    print("\n".join(problems) if problems else "every table equal")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

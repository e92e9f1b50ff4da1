"""Held-out splits of the shared recommendation data for `shopfusion eval recommend` (written outside the repo).

    .venv/bin/python bench/make_rec_splits.py --data ../shared/data/rec --out /tmp/rec-splits

amazon-scientific: leave-one-out — each user's last item (highest `timestamp` position) is the test, the rest
is train (users with one interaction stay in train only). online-retail: next period — train before
2011-10-01, test = purchases in October 2011.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd


def leave_last_out(interactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    ordered = interactions.assign(_t=pd.to_numeric(interactions["timestamp"])).sort_values(
        ["user_id", "_t"], kind="stable"
    )
    counts = ordered.groupby("user_id")["item_id"].transform("size")
    last = ordered.groupby("user_id").tail(1)
    test = last[counts.loc[last.index] > 1]
    return ordered.drop(index=test.index).drop(columns="_t"), test.drop(columns="_t")


def next_period(interactions: pd.DataFrame, start: str, end: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    when = pd.to_datetime(interactions["timestamp"], format="mixed")
    return interactions[when < start], interactions[(when >= start) & (when < end)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/rec"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    splits = {
        "amazon-scientific": leave_last_out(
            pd.read_csv(args.data / "amazon-scientific" / "interactions.csv", dtype=str)
        ),
        "online-retail": next_period(
            pd.read_csv(args.data / "online-retail" / "interactions.csv.gz", dtype=str), "2011-10-01", "2011-11-01"
        ),
    }
    for name, (train, test) in splits.items():
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(args.data / name / "items.csv", folder / "items.csv")
        train.to_csv(folder / "train.csv", index=False)
        test.to_csv(folder / "test.csv", index=False)
        print(f"{folder}: train {len(train)} rows, test {len(test)} rows / {test['user_id'].nunique()} users")


if __name__ == "__main__":
    main()

"""Cut the demo slice shipped in demo/online-retail/ from the shared UCI Online Retail files.

Kept for provenance and reproducibility: `python demo/make_demo_data.py ../shared/data/rec/online-retail`.
The slice keeps the raw columns (cancellations and rows without a customer included) so that the demo
also shows ingestion rejecting what is not a valid purchase.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ITEMS = 2500
CUSTOMERS = 1200
SINCE = "2011-06-01"


def main(source: Path, target: Path) -> None:
    raw = pd.read_csv(source / "raw_transactions.csv.gz", dtype=str, keep_default_na=False)
    raw = raw[raw["InvoiceDate"] >= SINCE]
    items = pd.read_csv(source / "items.csv", dtype=str, keep_default_na=False)
    top_items = raw["StockCode"].value_counts().index[:ITEMS]
    raw = raw[raw["StockCode"].isin(set(top_items))]
    customers = raw.loc[raw["CustomerID"] != "", "CustomerID"].value_counts().index[:CUSTOMERS]
    keep = raw["CustomerID"].isin(set(customers)) | (raw["CustomerID"] == "")
    raw = raw[keep]
    no_customer = raw[raw["CustomerID"] == ""]
    raw = pd.concat([raw[raw["CustomerID"] != ""], no_customer.head(500)]).sort_index()
    target.mkdir(parents=True, exist_ok=True)
    raw.to_csv(target / "transactions.csv.gz", index=False)
    items[items["item_id"].isin(set(raw["StockCode"]))].to_csv(target / "items.csv", index=False)
    print(f"{len(raw)} transactions, {raw['StockCode'].nunique()} items, {len(customers)} customers")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).parent / "online-retail")

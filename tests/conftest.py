"""Shared fixtures: small generated catalogues and events, a deterministic fake encoder."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class HashingEncoder:
    """Bag-of-words hashed into a fixed space: texts sharing words get similar vectors; counts its calls."""

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim
        self.encoded: list[str] = []

    @property
    def model_id(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


@pytest.fixture
def hashing_encoder() -> HashingEncoder:
    return HashingEncoder()


ITEMS = [
    ("A1", "Red running shoes", "Shoes > Running", "Swift", 59.0),
    ("A2", "Blue running shoes", "Shoes > Running", "Swift", 64.0),
    ("A3", "Leather hiking boots", "Shoes > Hiking", "Trail", 120.0),
    ("A4", "Wool hiking socks", "Clothing > Socks", "Trail", 12.5),
    ("A5", "Cotton sports socks", "Clothing > Socks", "Swift", 8.0),
    ("A6", "Stainless steel water bottle", "Outdoor > Bottles", "Aqua", 19.9),
    ("A7", "Insulated camping mug", "Outdoor > Cookware", "Aqua", 14.0),
    ("A8", "Ceramic tea cup and saucer", "Home > Kitchen", "Regency", 6.5),
    ("A9", "Porcelain teapot", "Home > Kitchen", "Regency", 24.0),
    ("A10", "Christmas tree star decoration", "Home > Seasonal", "Folk", 3.0),
]


@pytest.fixture
def items_csv(tmp_path: Path) -> Path:
    path = tmp_path / "items.csv"
    pd.DataFrame(ITEMS, columns=["item_id", "title", "category", "brand", "price"]).to_csv(path, index=False)
    return path


def make_transactions(n_users: int = 30, seed: int = 0) -> pd.DataFrame:
    """Raw retail-style rows: users buy from a 'sport' or a 'home' cluster; some cancellations and guests."""
    rng = np.random.default_rng(seed)
    sport, home = ["A1", "A2", "A3", "A4", "A5", "A6", "A7"], ["A8", "A9", "A10", "A7"]
    rows = []
    for u in range(n_users):
        cluster = sport if u % 2 == 0 else home
        for order in range(3):
            invoice = f"{u:03d}{order}"
            for item in rng.choice(cluster, size=2, replace=False):
                day = 1 + order * 7 + u % 5
                rows.append((invoice, item, int(rng.integers(1, 4)), f"2024-03-{day:02d} 10:00:00", "2.5", f"{u}.0"))
    rows.append(("C9999", "A1", -1, "2024-03-20 10:00:00", "2.5", "0.0"))  # a cancellation
    rows.append(("9998", "A2", 1, "2024-03-20 11:00:00", "2.5", ""))  # a guest without a customer id
    return pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"])


RETAIL_MAPPING = """
[columns]
user_id = "CustomerID"
item_id = "StockCode"
timestamp = "InvoiceDate"
quantity = "Quantity"
value = "UnitPrice"
order_id = "InvoiceNo"

[constants]
type = "purchase"
"""


@pytest.fixture
def transactions_csv(tmp_path: Path) -> Path:
    path = tmp_path / "transactions.csv.gz"
    make_transactions().to_csv(path, index=False)
    return path


@pytest.fixture
def retail_mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(RETAIL_MAPPING)
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL: SHOPFUSION_TEST_POSTGRES_URL if set, else a throwaway server on a unix socket."""
    url = os.environ.get("SHOPFUSION_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL: no initdb/pg_ctl here and SHOPFUSION_TEST_POSTGRES_URL is not set")
    base = Path(tempfile.mkdtemp(prefix="shopfusion-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "shopfusion", "--auth=trust"], check=True, capture_output=True
    )
    options = f"-k {base} -p {port} -c listen_addresses=''"
    start = [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://shopfusion@/postgres?host={base}&port={port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def built_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace built once per test session from the generated catalogue and transactions."""
    from shopfusion.build.builder import build
    from shopfusion.catalog.ingest import ColumnMapping, ingest_file
    from shopfusion.catalog.store import open_store
    from shopfusion.workspace import Workspace

    root = tmp_path_factory.mktemp("built")
    ws = Workspace.init(root / "ws")
    items = root / "items.csv"
    pd.DataFrame(ITEMS, columns=["item_id", "title", "category", "brand", "price"]).to_csv(items, index=False)
    events = root / "transactions.csv"
    make_transactions().to_csv(events, index=False)
    mapping = root / "mapping.toml"
    mapping.write_text(RETAIL_MAPPING)
    store = open_store(ws.store_url())
    ingest_file(store, "items", items)
    ingest_file(store, "events", events, ColumnMapping.from_toml(mapping))
    store.close()
    build(ws)
    return ws.root

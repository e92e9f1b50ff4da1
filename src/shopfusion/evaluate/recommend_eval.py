"""`shopfusion eval recommend`: every candidate source alone (popularity among them), the weight-fused pipeline
and the learned ranker rank the whole catalogue for each test user known in training; `default` names the
one the service would serve.

Formats and metrics follow ../shared/data/README.md: items.csv (item_id,title[,...]); train/test interactions
(user_id,item_id,timestamp[,event,order_id,quantity], .csv or .csv.gz, timestamp ISO or an integer order);
Recall@k = hits / min(|test items|, k); nDCG@k with binary gain and an ideal of min(|test items|, k) hits;
coverage = share of catalogue items in any top-k list; ild = mean pairwise (1 − cosine) of the item text
embeddings within a list, averaged over lists. Everything is learnt from TRAIN only.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from shopfusion.catalog.benchmarks import load_interactions, load_items_frame
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.encoders.base import TextEncoder
from shopfusion.metrics import ndcg_at_k, recall_at_k
from shopfusion.recommend.interactions import EVENT_WEIGHTS
from shopfusion.recommend.service import RecommendService
from shopfusion.recommend.sources import CandidateSource, History, candidates_many
from shopfusion.settings import RecommendSettings
from shopfusion.workspace import Workspace

FUSED = "fused"  # sources fused by weights chosen on TRAIN
LEARNED = "learned"  # the learned ranker over every source's candidates
BATCH = 1024  # test users ranked together


def _interactions(path: Path) -> pd.DataFrame:
    """A benchmark's interactions; an event the recommenders do not weigh counts as a purchase."""
    frame = load_interactions(path)
    return frame.assign(type=frame["type"].where(frame["type"].isin(list(EVENT_WEIGHTS)), "purchase"))


def _default_encoder(workspace: Path) -> TextEncoder:
    from shopfusion.build.artifacts import make_encoder

    ws = Workspace.init(workspace)
    return make_encoder(ws, ws.settings)


def intra_list_diversity(lists: list[np.ndarray], vectors: np.ndarray) -> float:
    """Mean pairwise (1 − cosine) within each list of ≥ 2 items, averaged over those lists."""
    values = []
    for positions in lists:
        if len(positions) < 2:
            continue
        v = vectors[positions]
        sims = v @ v.T
        n = len(positions)
        values.append(float((n * n - sims.sum() + np.trace(sims) - n) / (n * (n - 1))))
    return float(np.mean(values)) if values else 0.0


def score_lists(
    lists: dict[str, np.ndarray], targets: dict[str, set[str]], item_ids: np.ndarray, vectors: np.ndarray, k: int
) -> dict[str, float]:
    """The contract's metrics for one method's top-k lists (positions per user)."""
    ndcg, recall = [], []
    for user, positions in lists.items():
        ranked = [str(item_ids[p]) for p in positions[:k]]
        grades = dict.fromkeys(targets[user], 1.0)
        ndcg.append(ndcg_at_k(ranked, grades, k, ideal_hits=min(len(grades), k)))
        recall.append(recall_at_k(ranked, grades, k, cap_at_k=True))
    shown = set().union(*(set(p[:k].tolist()) for p in lists.values())) if lists else set()
    return {
        f"recall@{k}": float(np.mean(recall)) if recall else 0.0,
        f"ndcg@{k}": float(np.mean(ndcg)) if ndcg else 0.0,
        "coverage": len(shown) / max(len(item_ids), 1),
        "ild": intra_list_diversity([p[:k] for p in lists.values()], vectors),
        "users": len(lists),
    }


def run_recommend_eval(
    *,
    items: Path,
    train: Path,
    test: Path,
    json_out: Path,
    k: int = 10,
    exclude_seen: bool = False,
    workspace: Path | None = None,
    console: Console | None = None,
    encoder: TextEncoder | None = None,
    settings: RecommendSettings | None = None,
) -> dict[str, object]:
    """Fit on TRAIN, rank for every test user known in TRAIN with each method, print and write the report."""
    console = console or Console()
    started = time.perf_counter()
    catalog = CatalogSnapshot(load_items_frame(items))
    train_events, test_events = _interactions(train), _interactions(test)
    with tempfile.TemporaryDirectory(prefix="shopfusion-receval-") as tmp:
        root = workspace or Path(tmp)
        encoder = encoder or _default_encoder(root)
        vectors = encoder.encode(catalog.texts())
        # the workspace's [recommend] settings (sources, fusion, rules) apply, as they would at build
        settings = settings or Workspace.init(root).settings.recommend
    settings = settings.model_copy(
        update={"exclude_purchased": {**settings.exclude_purchased, "user": exclude_seen}, "mmr_lambda": 1.0}
    )
    fit_started = time.perf_counter()
    service = RecommendService.fit(catalog, train_events, vectors, settings, k=k)
    fit_seconds = time.perf_counter() - fit_started
    data = service.interactions
    targets = {
        str(u): set(map(str, s))
        for u, s in test_events.groupby("user_id")["item_id"]
        if data.user_index(str(u)) is not None
    }
    users = sorted(targets)
    histories = [History.of_user(data, int(data.user_index(u))) for u in users]  # type: ignore[arg-type]
    exclusions = [h.items if exclude_seen else np.zeros(0, dtype=np.int64) for h in histories]
    methods: dict[str, Callable[[], list[np.ndarray]]] = {
        name: partial(_alone, source, histories, exclusions, k) for name, source in service.sources.items()
    }
    methods[FUSED] = partial(_ranked, service, histories, exclusions, k, learned=False)
    if service.ranker is not None:
        methods[LEARNED] = partial(_ranked, service, histories, exclusions, k, learned=True)
    report: dict[str, dict[str, float]] = {}
    for name, method in methods.items():
        report[name] = score_lists(dict(zip(users, method(), strict=True)), targets, data.item_ids, vectors, k)
    default = LEARNED if service.method == "learned" else FUSED
    result: dict[str, object] = {
        "methods": report,
        "default": default,
        **service.training_summary(),
        "k": k,
        "exclude_seen": exclude_seen,
        "train_seconds": round(fit_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=2))
    _print(console, report, k, service, len(targets), default)
    return result


def _alone(source: CandidateSource, histories: list[History], exclusions: list[np.ndarray], k: int) -> list[np.ndarray]:
    return [c.positions for c in candidates_many(source, histories, k, exclusions, BATCH)]


def _ranked(
    service: RecommendService, histories: list[History], exclusions: list[np.ndarray], k: int, *, learned: bool
) -> list[np.ndarray]:
    """The service's own ranking path (learned ranker or weight fusion, padding, rules), in batches."""
    out = []
    for start in range(0, len(histories), BATCH):
        chunk = slice(start, start + BATCH)
        ranked = service.rank_many(histories[chunk], k, exclusions[chunk], learned=learned, explain=False)
        out += [np.asarray([f.position for f in fused], dtype=np.int64) for fused in ranked]
    return out


def _print(
    console: Console, report: dict[str, dict[str, float]], k: int, service: RecommendService, users: int, default: str
) -> None:
    table = Table(title=f"recommendation, {users} test users known in train, k={k}")
    for column in ("method", f"recall@{k}", f"ndcg@{k}", "coverage", "ild"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, m in sorted(report.items(), key=lambda kv: kv[1][f"ndcg@{k}"]):
        label = f"{name} (default)" if name == default else name
        table.add_row(label, *(f"{m[c]:.4f}" for c in (f"recall@{k}", f"ndcg@{k}", "coverage", "ild")))
    console.print(table)
    weights = ", ".join(f"{n}={w:g}" for n, w in service.weights.items() if w > 0)
    console.print(f"{FUSED} = {service.fusion.method} fusion of {weights} (chosen on a validation split of TRAIN)")
    if service.ranker is not None:
        r = service.ranker.report
        console.print(
            f"{LEARNED} = LightGBM ranker, {r.trees} trees on {r.rows} candidates of {r.users} validation users; "
            f"early-stopping share: AUC {r.auc:.4f}, logloss {r.logloss:.4f}, nDCG@{k} {r.ndcg:.4f}"
        )

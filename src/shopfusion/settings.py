"""One typed settings object: workspace TOML file, overridden by SHOPFUSION_* environment variables."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_FILE = "shopfusion.toml"

_SEQUENTIAL_KEYS = ("dim", "max_len", "learning_rate", "term_weight", "max_epochs", "patience", "max_seconds")
_RANKER_KEYS = ("candidates", "users", "min_positives", "steps", "models", "negatives", "max_trees")
_RANKER_TREE_KEYS = ("learning_rate", "leaves", "min_child_samples", "feature_fraction", "early_stopping", "holdout")
# Flat keys of earlier versions → their key now: a workspace file or variable using one fails naming the new key.
RENAMED_KEYS: dict[str, str] = {
    **{f"recommend.sequential_{k}": f"recommend.sequential.{k}" for k in _SEQUENTIAL_KEYS},
    **{f"recommend.sequential_{k}": f"recommend.sequential.{k}" for k in ("models", "temperature", "threads")},
    **{f"recommend.ranker_{k}": f"recommend.ranker.{k}" for k in _RANKER_KEYS + _RANKER_TREE_KEYS},
    "search_training": "search.training",
}


class _Section(BaseModel):
    """A settings section: a misspelt key is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class EncoderSettings(_Section):
    model: str = Field("all-MiniLM-L6-v2", description="Model name, packaged default or local path")
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"
    max_seq_length: int = Field(128, ge=8)
    show_progress: bool = True


class SequentialSettings(_Section):
    """The sequential (self-attention) candidate source: what it reads, how it trains."""

    dim: int = Field(64, ge=8, description="Width of the model")
    max_len: int = Field(20, ge=2, description="Most recent items the model reads")
    learning_rate: float = Field(0.003, gt=0, description="AdamW learning rate")
    term_weight: float = Field(
        1.0, ge=0, description="Weight of learned term embeddings in the model's item inputs (0: off)"
    )
    max_epochs: int = Field(40, ge=1)
    patience: int = Field(4, ge=1, description="Epochs without validation gain before stopping")
    max_seconds: float = Field(150.0, gt=0, description="Training time cap per run (a safety net)")
    models: int = Field(
        2, ge=1, description="Networks averaged (different seeds): steadier, each costs its training time"
    )
    temperature: float = Field(
        0.1, ge=0, description="Cosine similarity over this temperature scores items; 0: the plain dot product"
    )
    threads: int = Field(1, ge=1, description="Torch threads (on shared cores more threads spin-wait)")
    layers: int = Field(2, ge=1, description="Self-attention blocks")
    heads: int = Field(2, ge=1, description="Attention heads per block (must divide dim)")
    dropout: float = Field(0.3, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(128, ge=1)
    text_weight: float = Field(1.0, ge=0, description="Weight of the item text vectors in the inputs (0: plain SASRec)")
    seed: int = 0


class TreeRankerSettings(_Section):
    """A LightGBM LambdaRank model (rank/ltr.py): its trees and their early stopping."""

    max_trees: int = Field(600, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(200, ge=1, description="Fewest candidates per leaf")
    feature_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of the features each tree may split on: trees that cannot all lean on the same few "
        "overlapping features average into a steadier ranking",
    )
    bagging_fraction: float = Field(0.8, gt=0, le=1, description="Share of the rows each tree is grown on")
    early_stopping: int = Field(40, ge=1, description="Rounds without validation gain before stopping")


class RecommendRankerSettings(TreeRankerSettings):
    """The learned recommendation ranker: which candidates and people it learns from, and its trees."""

    candidates: int = Field(50, ge=1, description="Top candidates per source the ranker scores")
    users: int = Field(8000, ge=10, description="Validation users the ranker is trained on")
    min_positives: int = Field(
        50, ge=1, description="Fewer held-out hits among the candidates than this: fall back to auto fusion"
    )
    steps: int = Field(
        3,
        ge=1,
        description="Held-out steps the ranker learns from (each person's last item, the one before...; or the "
        "latest stretches of events): one step gives few positives per feature",
    )
    models: int = Field(3, ge=1, description="Models averaged, each stopped early on its own share of the people")
    negatives: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of the candidates not picked next that each model learns from (a random one per "
        "model; all of them count where it stops early and is measured): fewer cost less training time",
    )
    holdout: float = Field(0.2, gt=0, lt=1, description="Share of ranker users kept for early stopping")


class SearchTrainingSettings(_Section):
    """`train search` and `eval search --train-*`: what is learned from the shop's judgements and events, and how long it
    may take."""

    bi_encoder_epochs: int = Field(
        2, ge=0, description="Contrastive fine-tuning epochs (0: keep the pretrained encoder)"
    )
    bi_encoder_batch_size: int = Field(32, ge=2, description="In-batch negatives per step")
    bi_encoder_lr: float = Field(3e-5, gt=0)
    cross_encoder_epochs: int = Field(2, ge=0, description="Cross-encoder epochs (0: no cross-encoder)")
    cross_encoder_batch_size: int = Field(32, ge=1)
    cross_encoder_lr: float = Field(5e-5, gt=0)
    cross_encoder_head_lr: float = Field(1e-3, gt=0, description="Learning rate of its new (untrained) head")
    cross_encoder_max_length: int = Field(
        48, ge=8, description="Tokens of query + item text the cross-encoder reads (its cost grows with them)"
    )
    cross_encoder_int8: bool = Field(
        True, description="Without bfloat16: score with a dynamically int8-quantised copy (≈2× faster)"
    )
    precision: Literal["auto", "bfloat16", "float32"] = Field(
        "auto",
        description="Matrix products of the neural stages (training, catalogue re-encoding, cross-encoder "
        "scoring); auto: bfloat16 where the CPU computes it natively (AVX512-BF16/AMX), else float32",
    )
    negatives_per_query: int = Field(4, ge=0, description="Unjudged top BM25/hybrid results used as negatives")
    rerank_depth: int = Field(30, ge=1, description="Results the cross-encoder re-scores per query")
    ranker: TreeRankerSettings = Field(
        default_factory=lambda: TreeRankerSettings.model_validate(
            {
                "max_trees": 500,
                "min_child_samples": 50,
                "feature_fraction": 0.9,
                "bagging_fraction": 0.9,
                "early_stopping": 30,
            }
        ),
        description="The LambdaMART ranker over each query's candidates",
    )
    ltr_depth: int = Field(100, ge=10, description="Candidates per query the learned ranker orders")
    ranker_share: float = Field(
        0.3, gt=0, lt=1, description="Share of train queries held out from the neural models to train the ranker"
    )
    max_seconds: float = Field(
        1200.0, gt=0, description="Time cap for the neural training of one run (half for each neural model)"
    )
    seed: int = 13
    attribution_minutes: float = Field(
        30.0,
        gt=0,
        description="Judgements from events: a click, add-to-cart or purchase counts for the latest search of the "
        "same session (or user, without a session id) at most this many minutes before it",
    )
    click_min_sessions: int = Field(
        1,
        ge=1,
        description="Judgements from events: a query-item pair only ever clicked (never added to a cart or bought) "
        "counts once this many sessions clicked it (1: every click counts)",
    )
    co_interaction_pairs: int = Field(
        2000,
        ge=0,
        description="Extra bi-encoder pairs (item text as the query, an item picked next in the same order or "
        "session as its positive), most frequent first (0: none)",
    )


class SearchSettings(_Section):
    # Default fusion and weights: chosen by 2-fold cross-validation over Home Depot dev queries (docs/eval-search.md);
    # both folds picked the same weights.
    fusion: Literal["rrf", "blend"] = "blend"
    rrf_k: int = Field(60, ge=1)
    lexical_weight: float = Field(0.8, ge=0)
    semantic_weight: float = Field(0.2, ge=0)
    synonyms_path: str | None = Field(
        None, description="Synonyms file: `a, b, c` (equivalent) or `a => b` per line; relative to the workspace"
    )
    max_query_chars: int = Field(1000, ge=1, description="Longer queries are rejected with a clear error")
    query_vector_cache: int = Field(4096, ge=0, description="Recent query vectors kept in memory (0: none)")
    candidates: int = Field(200, ge=1, description="Candidates taken from each retriever before fusion")
    understand_queries: bool = Field(
        True, description="Price bounds, brands and catalogue attribute values in the query become filters"
    )
    personalisation_weight: float = Field(
        0.3, ge=0, description="Boost by closeness to the shopper's recent items: score × (1 + w × cosine)"
    )
    exact_vector_max_items: int = Field(
        50_000, ge=0, description="Catalogues up to this size use exact inner product, larger ones FAISS HNSW"
    )
    training: SearchTrainingSettings = Field(default_factory=SearchTrainingSettings)  # type: ignore[arg-type]
    field_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "title": 3.0,
            "brand": 2.0,
            "category": 1.5,
            "attributes": 1.0,
            "description": 1.0,
        }
    )


class RecommendSettings(_Section):
    """Candidate sources, their fusion and the business rules applied to every recommendation surface."""

    sources: list[str] = Field(
        default_factory=lambda: [
            "popularity",
            "trending",
            "repeat",
            "item_knn",
            "als",
            "ease",
            "content",
            "complements",
            "sequential",
        ],
        description="Candidate sources to fit (also: bpr)",
    )
    source_weights: dict[str, float] | None = Field(
        None,
        description="Fusion weight per source; unset: chosen at build on a validation split of the events "
        "(the chosen weights are stored with the model and shown in every explanation)",
    )
    fusion: Literal["learned", "auto", "weighted", "rrf"] = Field(
        "learned",
        description="learned: a gradient-boosted ranker over every source's candidates (falls back to auto "
        "when the events are too few to train it); weighted: score as a share of the source's best; "
        "rrf: (rrf_k+1)/(rrf_k+rank); auto: whichever of the two does better on the validation split "
        "(learned and auto only when source_weights is unset)",
    )
    rrf_k: int = Field(60, ge=1)
    pool: int = Field(200, ge=1, description="Candidates taken from each source before fusion")
    popularity_half_life_days: float = Field(30.0, gt=0)
    trending_half_life_days: float = Field(7.0, gt=0)
    factors: int = Field(64, ge=2, description="Latent factors of ALS/BPR (implicit)")
    mf_iterations: int = Field(15, ge=1)
    threads: int = Field(2, ge=1, description="Threads for implicit and BLAS while fitting")
    knn_neighbours: int = Field(100, ge=1)
    ease_l2: float = Field(500.0, gt=0)
    ease_max_items: int = Field(20_000, ge=0, description="EASE (dense item×item) is skipped above this size")
    sequential: SequentialSettings = Field(default_factory=SequentialSettings)  # type: ignore[arg-type]
    ranker: RecommendRankerSettings = Field(default_factory=RecommendRankerSettings)  # type: ignore[arg-type]
    validation_users: int = Field(3000, ge=10, description="Users sampled for choosing the fusion weights")
    validation_fraction: float = Field(
        0.1, gt=0, lt=1, description="Share of the latest events held out for weight choice when repeats are allowed"
    )
    exclude_purchased: dict[str, bool] = Field(
        default_factory=lambda: {"user": False, "session": True, "item": True, "complements": True},
        description="Per surface: never return items the user (session, anchor item) already has",
    )
    max_per_category: int | None = Field(None, ge=1)
    max_per_brand: int | None = Field(None, ge=1)
    mmr_lambda: float = Field(1.0, ge=0, le=1, description="MMR relevance share: 1 = no diversification")
    boost: dict[str, float] = Field(
        default_factory=dict, description="item_id or 'category:PREFIX' → score multiplier (< 1 demotes)"
    )
    bury: list[str] = Field(default_factory=list, description="item_id or 'category:PREFIX' sent to the end")
    pin: dict[str, int] = Field(default_factory=dict, description="item_id → 1-based position it is shown at")

    @field_validator("exclude_purchased", mode="before")
    @classmethod
    def _surface_flags(cls, value: Any) -> Any:
        """Workspaces written before per-surface flags hold one bool: it meant the user surface."""
        if isinstance(value, bool):
            return {"user": value, "session": True, "item": True, "complements": True}
        return value


class ServeSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger requests get 413")
    rate_per_minute: int = Field(1200, ge=1, description="Default per-key (or per-client for anonymous) rate")
    max_batch_events: int = Field(1000, ge=1)
    threads: int = Field(
        4,
        ge=1,
        description="Threads answering requests at once; more only contend for the cores and the GIL "
        "(requests beyond wait in the event loop's queue)",
    )
    cache_entries: int = Field(
        20_000,
        ge=0,
        description="Search and recommendation responses kept in memory (0: off); a user's own events, item "
        "writes, retrains and rollbacks take effect at once regardless",
    )
    cache_seconds: float = Field(
        60.0,
        ge=0,
        description="How long a cached response counts as fresh: about the lag of other shoppers' events in "
        "popularity and trending counters (a stale one is served while it is computed again; 0: off). Each "
        "refresh costs a full ranking run, so a short time spends the cores on refreshing busy answers",
    )
    storefront_facets: list[str] = Field(
        default_factory=lambda: ["category", "brand", "in_stock"],
        description="Facets offered as filters on the storefront's search page (item attributes too)",
    )
    evaluation_reports: list[str] = Field(
        default_factory=list,
        description="JSON reports of `shopfusion eval search|recommend --json` shown on the admin dashboard "
        "(paths relative to the workspace)",
    )


def _renamed(old: str) -> str:
    if old.startswith("search_training"):
        return "search.training" + old[len("search_training") :]
    return RENAMED_KEYS[old]


class Settings(BaseSettings):
    """All configuration of one workspace. Precedence: environment > workspace TOML > defaults."""

    model_config = SettingsConfigDict(env_prefix="SHOPFUSION_", env_nested_delimiter="__", extra="forbid")

    store_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in the workspace")
    pseudonymise_users: bool = Field(False, description="Store and look up users by a keyed hash of their id")
    model_versions_kept: int = Field(3, ge=1, description="Builds kept for rollback")
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)  # type: ignore[arg-type]
    search: SearchSettings = Field(default_factory=SearchSettings)  # type: ignore[arg-type]
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)  # type: ignore[arg-type]
    serve: ServeSettings = Field(default_factory=ServeSettings)  # type: ignore[arg-type]

    @model_validator(mode="before")
    @classmethod
    def _no_renamed_keys(cls, data: Any) -> Any:
        """An old flat key is an error that names its new place (a silently ignored setting is worse)."""
        if not isinstance(data, dict):
            return data
        found = [f"search_training.{k}" for k in data.get("search_training") or {}] or (
            ["search_training"] if "search_training" in data else []
        )
        for section in ("recommend",):
            values = data.get(section)
            if isinstance(values, dict):
                found += [f"{section}.{k}" for k in values if f"{section}.{k}" in RENAMED_KEYS]
        if found:
            moves = "; ".join(f"{old} is now {_renamed(old)}" for old in found)
            raise ValueError(
                f"renamed settings: {moves} (in {CONFIG_FILE} as a [section] key, in the environment as "
                "SHOPFUSION_<SECTION>__<SUBSECTION>__<KEY>)"
            )
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # File values arrive as init kwargs; the environment must win over them.
        return (env_settings, init_settings)

    @classmethod
    def load(cls, workspace: Path) -> Settings:
        path = workspace / CONFIG_FILE
        data: dict[str, Any] = tomllib.loads(path.read_text()) if path.exists() else {}
        return cls(**data)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.model_dump(exclude_none=True))

    @classmethod
    def template(cls) -> str:
        """Every setting with its default, commented out: the file documents the defaults without freezing
        them, so a workspace picks up improved defaults of later versions unless a key is set."""
        lines = cls.model_construct().to_toml().splitlines()
        body = "\n".join(f"# {line}" if line else "" for line in lines)
        return f"# ShopFusion workspace settings. Uncomment a key to change it; env SHOPFUSION_<SECTION>__<KEY> wins.\n\n{body}\n"

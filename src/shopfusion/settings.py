"""One typed settings object: workspace TOML file, overridden by SHOPFUSION_* environment variables."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_FILE = "shopfusion.toml"


class _Section(BaseModel):
    """A settings section: a misspelt key is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class EncoderSettings(_Section):
    model: str = Field("all-MiniLM-L6-v2", description="Model name, packaged default or local path")
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"
    max_seq_length: int = Field(128, ge=8)
    show_progress: bool = True


class SearchSettings(_Section):
    fusion: Literal["rrf", "blend"] = "rrf"
    rrf_k: int = Field(60, ge=1)
    lexical_weight: float = Field(1.0, ge=0)
    semantic_weight: float = Field(1.0, ge=0)
    candidates: int = Field(200, ge=1, description="Candidates taken from each retriever before fusion")
    exact_vector_max_items: int = Field(
        50_000, ge=0, description="Catalogues up to this size use exact inner product, larger ones FAISS HNSW"
    )
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
    source_weights: dict[str, float] = Field(
        default_factory=lambda: {"repeat": 1.0, "item_knn": 0.6, "popularity": 0.3}
    )
    popularity_half_life_days: float = Field(30.0, gt=0)
    exclude_purchased: bool = False


class ServeSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger requests get 413")
    rate_per_minute: int = Field(1200, ge=1, description="Default per-key (or per-client for anonymous) rate")
    max_batch_events: int = Field(1000, ge=1)


class Settings(BaseSettings):
    """All configuration of one workspace. Precedence: environment > workspace TOML > defaults."""

    model_config = SettingsConfigDict(env_prefix="SHOPFUSION_", env_nested_delimiter="__", extra="forbid")

    store_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in the workspace")
    pseudonymise_users: bool = Field(False, description="Store and look up users by a keyed hash of their id")
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)  # type: ignore[arg-type]
    search: SearchSettings = Field(default_factory=SearchSettings)  # type: ignore[arg-type]
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)  # type: ignore[arg-type]
    serve: ServeSettings = Field(default_factory=ServeSettings)  # type: ignore[arg-type]

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

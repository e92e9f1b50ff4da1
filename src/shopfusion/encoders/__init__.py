"""Encoders stage: pretrained text encoders behind one interface, with a persistent embedding cache."""

from shopfusion.encoders.base import TextEncoder
from shopfusion.encoders.cache import CachedEncoder, EmbeddingCache
from shopfusion.encoders.sentence import SentenceTransformerEncoder, resolve_model

__all__ = ["CachedEncoder", "EmbeddingCache", "SentenceTransformerEncoder", "TextEncoder", "resolve_model"]

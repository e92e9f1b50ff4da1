"""ShopFusion: e-commerce search and recommendation fusing pretrained encoders with recommender signals."""

import os

# Model weights come from packages or local paths only: never reach a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"

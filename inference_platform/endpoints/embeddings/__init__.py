"""``/v1/embeddings``: embedding vectors from models declared with ``"task": "embed"``."""

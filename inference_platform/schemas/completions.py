"""Former path of ``endpoints.completions.protocol`` (see the package)."""

from inference_platform.endpoints.completions.protocol import (
    CompletionCreateRequestSchema as CompletionPostSchema,
)

__all__ = ["CompletionPostSchema"]

"""Former path of ``endpoints.responses.protocol`` (see the package)."""

from inference_platform.endpoints.responses.protocol import (
    ResponseCreateRequestSchema as ResponseCreateSchema,
)

__all__ = ["ResponseCreateSchema"]

"""Former path of ``endpoints.chat_completions.protocol`` (see the package)."""

from inference_platform.endpoints.chat_completions.protocol import (
    ChatCompletionCreateRequestSchema as ChatCompletionPostSchema,
)

__all__ = ["ChatCompletionPostSchema"]

"""Former path of ``endpoints.protocol.load`` (see the package)."""

from inference_platform.endpoints.protocol import load

__all__ = ["load"]

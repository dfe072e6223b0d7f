"""The Responses API: objects, input handling, storage and streams of ``/v1/responses``."""

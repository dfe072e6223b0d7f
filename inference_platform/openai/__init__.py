"""Builders for the OpenAI objects the platform returns (chat, completions, responses, ...)."""

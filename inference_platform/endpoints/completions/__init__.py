"""Completions (legacy): ``POST /v1/completions``."""

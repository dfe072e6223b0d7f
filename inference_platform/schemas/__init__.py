"""The request schemas' former import paths, kept only for ``batches.checks``.

The schemas live in ``inference_platform.endpoints.<family>.protocol``; delete this package
once ``batches.checks`` imports them from there.
"""

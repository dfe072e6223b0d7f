"""Batches: ``/v1/batches``."""

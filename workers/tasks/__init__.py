"""Celery tasks, one module per queue role. Each task is thin: load by id, call the core."""

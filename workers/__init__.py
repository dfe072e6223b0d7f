"""GPU worker processes: each hosts ONE engine and runs Celery tasks against it."""

"""Core of the platform: settings, catalog, database, Celery app, engines, OpenAI objects."""

__version__ = "0.1.0"

"""Models: ``/v1/models``."""

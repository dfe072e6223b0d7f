"""Files: ``/v1/files``."""

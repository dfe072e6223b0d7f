"""Entry point for Celery's own CLI (``celery -A inference_platform.make_celery flower``).

Importing this module builds the app from the environment; nothing else imports it.
"""

from inference_platform.embedded import load_settings
from inference_platform.platform import Platform

celery_app = Platform(load_settings()).celery

"""The Flask API: an app factory, one blueprint per endpoint family."""

from __future__ import annotations

from flask import Flask

from inference_platform.platform import Platform
from inference_platform.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; ``gunicorn 'api:create_app()'`` reads settings from the environment."""
    from api import auth, errors
    from api.chat.views import bp as chat_bp
    from api.completions.views import bp as completions_bp
    from api.health.views import bp as health_bp
    from api.models.views import bp as models_bp

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["platform"] = Platform(settings)

    errors.init_app(app)
    auth.init_app(app)
    for bp in (health_bp, models_bp, chat_bp, completions_bp):
        app.register_blueprint(bp)
    _register_optional(app)
    return app


def _register_optional(app: Flask) -> None:
    """Endpoint families that live in their own packages (responses, files, batches)."""
    import importlib

    for module in ("api.responses.views", "api.files.views", "api.batches.views"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        app.register_blueprint(mod.bp)

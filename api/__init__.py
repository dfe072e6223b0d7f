"""The Flask API: an app factory, one blueprint per endpoint family."""

from __future__ import annotations

from flask import Flask

from api import auth, console, cooperative, docs, errors, limits, metrics, validation
from api.batches.views import bp as batches_bp
from api.chat.views import bp as chat_bp
from api.completions.views import bp as completions_bp
from api.conversations.views import bp as conversations_bp
from api.embeddings.views import bp as embeddings_bp
from api.files.views import bp as files_bp
from api.health.views import bp as health_bp
from api.messages.views import bp as messages_bp
from api.models.views import bp as models_bp
from api.responses.views import bp as responses_bp
from api.usage.views import bp as usage_bp
from api.webhooks.views import bp as webhooks_bp
from inference_platform.platform import Platform
from inference_platform.settings import Settings

BLUEPRINTS = (
    health_bp,
    models_bp,
    chat_bp,
    completions_bp,
    embeddings_bp,
    responses_bp,
    files_bp,
    batches_bp,
    usage_bp,
    webhooks_bp,
    messages_bp,
    conversations_bp,
)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; ``gunicorn 'api:create_app()'`` reads settings from the environment."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["platform"] = Platform(settings)

    cooperative.init_app(app)
    errors.init_app(app)
    # Before auth: a refused request is timed and counted too.
    metrics.init_app(app)
    auth.init_app(app)
    validation.init_app(app)
    # After auth: limits are per tenant.
    limits.init_app(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    docs.init_app(app)
    console.init_app(app)
    return app

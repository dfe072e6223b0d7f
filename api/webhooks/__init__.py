"""Webhook endpoints: ``/v1/webhook_endpoints``."""

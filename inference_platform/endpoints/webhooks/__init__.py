"""Webhook endpoints: ``/v1/webhook_endpoints`` and ``/v1/webhook_event_types``."""

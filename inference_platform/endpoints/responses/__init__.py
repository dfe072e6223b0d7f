"""Responses: ``/v1/responses``, its stored objects, input items and resumable streams."""

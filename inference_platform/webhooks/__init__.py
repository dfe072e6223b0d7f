"""Webhooks: signed event notices to the endpoints a tenant registered.

``events`` names the events and builds their payloads (OpenAI's shapes), ``signing`` signs
them by the Standard Webhooks scheme the SDK's ``webhooks.unwrap`` verifies, ``guard`` keeps
receivers off private networks, ``outbox`` records deliveries in the transaction that ended
the batch or response, and ``delivery`` sends them from the control role with retries.
"""

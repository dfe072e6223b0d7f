"""Per-tenant limits: requests and tokens per minute, realtime requests in flight, flex
requests waiting and batch lines enqueued, each per tenant and model with defaults.

``config`` says what a tenant may do, ``buckets`` keeps the per-minute budgets and the
in-flight slots in Redis (one atomic script, so every API process and host shares them),
``quotas`` counts durable work in Postgres, and ``headers`` speaks OpenAI's rate-limit headers.
"""

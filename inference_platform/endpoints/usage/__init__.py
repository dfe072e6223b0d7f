"""Usage and costs: ``/v1/organization/usage/completions`` and ``/v1/organization/costs``."""

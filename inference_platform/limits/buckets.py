"""Per-minute budgets and in-flight slots in Redis, checked and taken in one atomic script.

The budgets are generic cell rate algorithm (GCRA) buckets: a limit of N per minute refills
one unit every 60/N seconds and holds at most N, so a burst of N passes, the next waits
60/N seconds (not the rest of a fixed minute), and the state is one number per key. Requests
and tokens are checked together and taken only when both allow, so a refused request costs
nothing. Time is Redis's clock, the same for every API host.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import redis

WINDOW_SECONDS = 60.0

# KEYS: requests bucket, tokens bucket, in-flight set.
# ARGV: rpm, tpm, token cost, concurrency limit, slot member, slot ttl, take (1) or peek (0).
# Returns: allowed, reason, retry_after, then limit/remaining/reset for requests and tokens.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = 60.0
local take = ARGV[7] == '1'

local function bucket(key, limit, cost)
  if limit <= 0 then return {true, now, -1, 0, 0} end
  local step = window / limit
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + cost * step
  if new_tat - now <= window + 1e-6 then
    local remaining = math.floor((window - (new_tat - now)) / step + 1e-6)
    return {true, new_tat, remaining, new_tat - now, 0}
  end
  local remaining = math.floor((window - (tat - now)) / step + 1e-6)
  return {false, tat, remaining, tat - now, new_tat - window - now}
end

local req = bucket(KEYS[1], tonumber(ARGV[1]), take and 1 or 0)
local tok = bucket(KEYS[2], tonumber(ARGV[2]), take and tonumber(ARGV[3]) or 0)
local allowed, reason, retry = 1, '', 0
if not req[1] then allowed, reason, retry = 0, 'requests', req[5] end
if not tok[1] then
  allowed = 0
  if reason == '' then reason = 'tokens' end
  if tok[5] > retry then retry = tok[5] end
  if tonumber(ARGV[3]) > tonumber(ARGV[2]) then reason = 'too_large' end
end

local conc_limit = tonumber(ARGV[4])
if allowed == 1 and take and conc_limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= conc_limit then
    allowed, reason, retry = 0, 'concurrent', 1
  end
end

if allowed == 1 and take then
  if tonumber(ARGV[1]) > 0 then
    redis.call('SET', KEYS[1], tostring(req[2]), 'PX', math.ceil((req[2] - now) * 1000) + 1)
  end
  if tonumber(ARGV[2]) > 0 and tonumber(ARGV[3]) > 0 then
    redis.call('SET', KEYS[2], tostring(tok[2]), 'PX', math.ceil((tok[2] - now) * 1000) + 1)
  end
  if conc_limit > 0 then
    local ttl = tonumber(ARGV[6])
    redis.call('ZADD', KEYS[3], now + ttl, ARGV[5])
    redis.call('EXPIRE', KEYS[3], math.ceil(ttl) + 1)
  end
end
return {allowed, reason, tostring(retry),
        ARGV[1], tostring(req[3]), tostring(req[4]),
        ARGV[2], tostring(tok[3]), tostring(tok[4])}
"""


@dataclass(frozen=True)
class Budget:
    """One of the two per-minute budgets after this request (limit 0: none)."""

    limit: int
    remaining: int
    reset_seconds: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # "requests", "tokens", "too_large" (more tokens than a minute holds), "concurrent"
    reason: str
    retry_after: float
    requests: Budget
    tokens: Budget
    # The in-flight slot taken (release it when the response is done), if any.
    slot: str | None = None


def _keys(tenant: str, model: str) -> list[str]:
    # One hash tag per tenant and model: the three keys live on one Redis Cluster slot.
    tag = f"{{rl:{tenant}:{model}}}"
    return [f"{tag}:req", f"{tag}:tok", f"{tag}:live"]


class Buckets:
    def __init__(self, client: redis.Redis[bytes]) -> None:
        self._client = client
        self._script = client.register_script(_SCRIPT)

    def check(
        self,
        tenant: str,
        model: str,
        *,
        requests_per_minute: int,
        tokens_per_minute: int,
        tokens: int,
        concurrent: int = 0,
        slot_ttl: float = 600.0,
        take: bool = True,
    ) -> Decision:
        """Take one request and ``tokens`` (and an in-flight slot when ``concurrent`` > 0), or
        nothing; with ``take=False`` only report the budgets."""
        slot = uuid.uuid4().hex if take and concurrent > 0 else None
        raw: list[Any] = self._script(
            keys=_keys(tenant, model),
            args=[
                requests_per_minute,
                tokens_per_minute,
                max(tokens, 0),
                concurrent,
                slot or "-",
                slot_ttl,
                1 if take else 0,
            ],
        )
        allowed = int(raw[0]) == 1
        return Decision(
            allowed=allowed,
            reason=_text(raw[1]),
            retry_after=max(float(_text(raw[2])), 0.0),
            requests=_budget(raw[3:6]),
            tokens=_budget(raw[6:9]),
            slot=slot if allowed else None,
        )

    def release(self, tenant: str, model: str, slot: str) -> None:
        self._client.zrem(_keys(tenant, model)[2], slot)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _budget(raw: list[Any]) -> Budget:
    limit = int(float(_text(raw[0])))
    remaining = int(float(_text(raw[1])))
    reset = float(_text(raw[2]))
    return Budget(limit, max(remaining, 0), max(reset, 0.0) if math.isfinite(reset) else 0.0)

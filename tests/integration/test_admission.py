"""Admission against real Redis: the profile the control role stores, the work admitted since,
and the 429s a client gets (a batch's message, a flex request's Retry-After)."""

from __future__ import annotations

import json
import time

import pytest

from inference_platform.capacity import admission, estimate
from inference_platform.capacity.model import Demand, Profile
from inference_platform.errors import PlatformError
from inference_platform.platform import Platform
from inference_platform.settings import Settings

MODEL = "sim-admission"


@pytest.fixture
def platform(settings: Settings) -> Platform:
    catalog = [
        {
            "name": MODEL,
            "engine": "simulated",
            "engine_args": {"tokens_per_second": 100, "batch_size": 10},
        }
    ]
    p = Platform(settings.replace(models=json.dumps(catalog)))
    p.redis.delete(estimate.PROFILE_KEY.format(model=MODEL))
    p.redis.delete(admission.PENDING_KEY.format(model=MODEL))
    return p


def store(platform: Platform, items: tuple[tuple[float, float], ...]) -> None:
    estimate._store(platform, MODEL, Profile(time.time(), 1000.0, items, 0.5, 1))


def test_a_batch_too_big_for_1h_is_refused_with_a_message_that_says_what_fits(
    platform: Platform,
) -> None:
    store(platform, ())
    big = Demand(lines=50_000, prompt_tokens=600_000, output_tokens=25_000_000)
    with pytest.raises(PlatformError) as refused:
        admission.admit_batch(platform, MODEL, "1h", big)
    err = refused.value
    assert err.status == 429 and err.code == "insufficient_capacity"
    assert err.headers == {"x-should-retry": "false"}
    assert "about 7.0 h" in err.message and 'completion_window "24h"' in err.message
    eta = admission.admit_batch(platform, MODEL, "24h", big)
    assert 6.9 * 3600 < eta - time.time() < 7.1 * 3600


def test_work_admitted_since_the_profile_counts_against_the_next_batch(
    platform: Platform,
) -> None:
    store(platform, ())
    half_hour = Demand(lines=100, prompt_tokens=0, output_tokens=1_800_000)
    admission.admit_batch(platform, MODEL, "1h", half_hour)
    admission.admit_batch(platform, MODEL, "1h", half_hour)
    with pytest.raises(PlatformError) as refused:  # a third does not fit the same hour
        admission.admit_batch(platform, MODEL, "1h", half_hour)
    assert refused.value.code == "insufficient_capacity"
    assert "after 60 min of work queued ahead" in refused.value.message, refused.value.message


def test_flex_retry_after_is_the_time_the_work_ahead_needs_to_drain(platform: Platform) -> None:
    # 1 h batches due within the hour with 3,700 s of work at 1,000 tokens/s.
    store(platform, ((time.time() + 1800, 3_700_000.0),))
    with pytest.raises(PlatformError) as refused:
        admission.admit_flex(platform, MODEL, 1000.0)
    err = refused.value
    assert err.status == 429 and err.code == "rate_limit_exceeded"
    wait = int(err.headers["Retry-After"])
    assert 95 <= wait <= 110, wait  # 3,700 + 1 s of work, 3,600 s of window
    store(platform, ((time.time() + 1800, 1_000_000.0),))
    eta = admission.admit_flex(platform, MODEL, 1000.0)
    assert 995 < eta - time.time() < 1010

"""The services one process needs, built once from settings (no connections at build time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis
from celery import Celery

from inference_platform.catalog import Catalog, ModelSpec, load_catalog
from inference_platform.celery_app import make_celery
from inference_platform.db import Database
from inference_platform.errors import model_not_found
from inference_platform.events import EventChannel, redis_client
from inference_platform.keys import KeyVerifier
from inference_platform.liveness import LivenessCache
from inference_platform.sender import Sender
from inference_platform.settings import Settings


@dataclass
class Platform:
    settings: Settings
    catalog: Catalog = field(init=False)

    def __post_init__(self) -> None:
        if not self.settings.database_url or not self.settings.redis_url:
            raise RuntimeError(
                "INFERENCE_DATABASE_URL and INFERENCE_REDIS_URL must be set; "
                "`inference-platform up` starts embedded services and sets them for you."
            )
        self.catalog = load_catalog(self.settings)

    @cached_property
    def db(self) -> Database:
        pool = max(10, self.settings.web_threads // 4)
        return Database(self.settings.database_url, pool_size=pool)

    @cached_property
    def redis(self) -> redis.Redis[bytes]:
        return redis_client(self.settings.redis_url, self.settings.redis_max_connections)

    @cached_property
    def events(self) -> EventChannel:
        return EventChannel(self.redis, self.settings.event_ttl_seconds)

    @cached_property
    def celery(self) -> Celery:
        return make_celery(self.settings, self.catalog)

    @cached_property
    def sender(self) -> Sender:
        return Sender(self.celery)

    @cached_property
    def liveness(self) -> LivenessCache:
        return LivenessCache(self.redis, max_age=self.settings.worker_heartbeat_seconds * 3)

    @cached_property
    def key_verifier(self) -> KeyVerifier:
        return KeyVerifier(self.db, self.redis)

    def warm(self) -> None:
        """Open the process's Redis and broker connections now, before traffic.

        A cold process that meets a burst opens a connection for each request in flight, and
        each costs about 10 ms of CPU to set up (a broker channel also declares its queues):
        the first 300 concurrent requests of an API process spent seconds of its CPU there.
        """
        pool = self.redis.connection_pool
        opened = [pool.get_connection() for _ in range(self.settings.redis_max_connections)]
        for conn in opened:
            pool.release(conn)
        queues = list(self.celery.amqp.queues.values())
        producers = [
            self.celery.producer_pool.acquire(block=True)
            for _ in range(self.settings.broker_connections)
        ]
        for producer in producers:
            for queue in queues:  # as the first send on this connection would
                producer.maybe_declare(queue)
            producer.release()

    def model(self, name: str | None) -> ModelSpec:
        """The catalog entry for ``name`` or the OpenAI-style 404."""
        spec = self.catalog.get(name) if name else None
        if spec is None:
            raise model_not_found(str(name))
        return spec

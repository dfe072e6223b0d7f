"""Per-process state of a worker: the platform services and the engine host.

Set once by ``workers.main`` before the worker starts consuming; tasks read it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from inference_platform import liveness
from inference_platform.engines.host import EngineHost
from inference_platform.events import CANCEL_CHANNEL
from inference_platform.platform import Platform

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    platform: Platform
    model: str | None
    host: EngineHost | None
    queues: list[str]
    name: str
    batch_size: int = 8
    # Set when this engine also serves realtime: most flex tasks allowed to hold a thread.
    background_tasks: threading.BoundedSemaphore | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def engine_host(self) -> EngineHost:
        if self.host is None:
            raise RuntimeError("this worker hosts no engine (control role)")
        return self.host

    def start_background(self) -> None:
        """Heartbeat (so the API knows we serve our queues) and the cancel listener."""
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        if self.host is not None:
            threading.Thread(target=self._listen_cancels, name="cancels", daemon=True).start()

    def _heartbeat(self) -> None:
        interval = self.platform.settings.worker_heartbeat_seconds
        while not self.stopping.is_set():
            try:
                liveness.announce(self.platform.redis, self.queues, self.name)
            except Exception as exc:  # Redis restarts must not kill the worker
                log.warning("heartbeat failed: %s", exc)
            self.stopping.wait(interval)
        try:
            liveness.withdraw(self.platform.redis, self.queues, self.name)
        except Exception:
            pass

    def _listen_cancels(self) -> None:
        host = self.engine_host()
        while not self.stopping.is_set():
            try:
                pubsub = self.platform.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CANCEL_CHANNEL)
                while not self.stopping.is_set():
                    # Short waits, well inside the socket timeout, so a quiet channel is
                    # not mistaken for a broken connection.
                    message = pubsub.get_message(timeout=1.0)
                    data = message.get("data") if message else None
                    if isinstance(data, bytes):
                        host.abort_group(data.decode())
            except Exception as exc:
                log.warning("cancel listener reconnecting: %s", exc)
                self.stopping.wait(1.0)


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError(
            "worker runtime not installed; start workers with `inference-platform worker`"
        )
    return _current

"""Realtime requests onto their Celery queues, several in one task when they arrive together.

Sending a Celery task costs an API process about half a millisecond of CPU, and the worker that
receives it more than a millisecond (it records the message as unacknowledged, then acknowledges
it, two Redis transactions). A realtime task only hands its request to the worker's feed, so
under a burst that overhead was most of what a request cost the worker. One sender per process
publishes what callers hand it: requests for one queue that arrive while a send is under way go
out together in the next task. A request that arrives alone goes out alone and at once.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from inference_platform.celery_app import TASK_REALTIME

# Requests in one task at most, and their bodies' JSON size.
MAX_GROUP = 32
MAX_GROUP_BYTES = 1 << 20
# A caller gives up on a send that has not happened in this long.
SEND_TIMEOUT = 30.0


@dataclass
class _Item:
    queue: str
    payload: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class Sender:
    def __init__(self, celery: Celery) -> None:
        self._celery = celery
        self._inbox: queue.Queue[_Item] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def send(self, queue_name: str, payload: dict[str, Any]) -> None:
        """Publish ``payload`` for ``queue_name``'s workers; returns once the broker has it
        and raises what sending it raised."""
        item = _Item(queue_name, payload)
        self._start()
        self._inbox.put(item)
        if not item.done.wait(SEND_TIMEOUT):
            raise TimeoutError(f"sending a realtime request took over {SEND_TIMEOUT:g} s")
        if item.error is not None:
            raise item.error

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sender", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            items = [self._inbox.get()]
            while len(items) < MAX_GROUP * 4:
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            by_queue: dict[str, list[_Item]] = defaultdict(list)
            for item in items:
                by_queue[item.queue].append(item)
            for name, waiting in by_queue.items():
                for group in _groups(waiting):
                    self._publish(name, group)

    def _publish(self, queue_name: str, group: list[_Item]) -> None:
        try:
            self._celery.send_task(
                TASK_REALTIME,
                args=[[item.payload for item in group]],
                queue=queue_name,
                ignore_result=True,
                # What Flower and the logs show: the ids, not the requests' text.
                argsrepr=repr([item.payload["id"] for item in group]),
            )
        except Exception as exc:  # each caller answers its client (503)
            for item in group:
                item.error = exc
        for item in group:
            item.done.set()


def _groups(items: list[_Item]) -> list[list[_Item]]:
    """``items`` in order, cut into tasks of at most MAX_GROUP requests and MAX_GROUP_BYTES."""
    groups: list[list[_Item]] = []
    size = 0
    for item in items:
        weight = len(json.dumps(item.payload["body"])) if len(items) > 1 else 0
        if not groups or len(groups[-1]) >= MAX_GROUP or size + weight > MAX_GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += weight
    return groups

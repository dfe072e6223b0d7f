"""Realtime requests that arrive together go to their queue in one task; a failed send is
raised to every request it carried."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from inference_platform.celery_app import TASK_REALTIME
from inference_platform.sender import MAX_GROUP, Sender


class _Celery:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, list[dict[str, Any]], str]] = []
        self.fail = fail
        self.gate = threading.Event()

    def send_task(self, name: str, *, args: list[Any], queue: str, **options: Any) -> None:
        assert name == TASK_REALTIME and options["ignore_result"] is True
        self.gate.wait(5)
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.append((queue, args[0], options["argsrepr"]))


def _payload(i: int) -> dict[str, Any]:
    return {"id": f"req-{i}", "body": {"messages": [{"role": "user", "content": "hi"}]}}


def _send_all(sender: Sender, items: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    errors: list[Any] = [None] * len(items)

    def one(k: int) -> None:
        try:
            sender.send(*items[k])
        except Exception as exc:
            errors[k] = exc

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(items))]
    for t in threads:
        t.start()
    return [errors, threads]


def test_requests_waiting_behind_a_send_share_the_next_task_per_queue() -> None:
    celery = _Celery()
    sender = Sender(celery)  # type: ignore[arg-type]
    first = _send_all(sender, [("realtime.a", _payload(0))])
    while sender._inbox.qsize():  # the first send is under way (held at the gate)
        pass
    items = [("realtime.a" if i % 2 else "realtime.b", _payload(i)) for i in range(1, 81)]
    errors, threads = _send_all(sender, items)
    celery.gate.set()
    for t in [*first[1], *threads]:
        t.join(5)
    assert errors == [None] * 80
    sent_ids = sorted(p["id"] for _, group, _ in celery.sent for p in group)
    assert sent_ids == sorted(f"req-{i}" for i in range(81))
    assert all(len(group) <= MAX_GROUP for _, group, _ in celery.sent)
    assert len(celery.sent) < 81  # grouped, not one task each
    for queue, group, shown in celery.sent:
        assert {q for q, p in items + [("realtime.a", _payload(0))] if p in group} == {queue}
        assert shown == repr([p["id"] for p in group])  # Flower shows ids, not prompts


def test_a_failed_send_is_raised_to_each_request_in_it() -> None:
    celery = _Celery(fail=True)
    celery.gate.set()
    sender = Sender(celery)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        sender.send("realtime.a", _payload(0))

"""The durable-work core: everything a client holds an id for, over the ``requests`` table.

Background and flex responses ("jobs") and batch lines ("lines", ``batch_id`` set) share one
machinery. Postgres is the truth and a Celery message only a hint:

* ``dispatch`` — ``enqueue`` writes a job and commits before hinting its ``<tier>.<model>``
  queue; ``dispatch`` tops every queue up from the rows (lost hints cost nothing);
* ``store`` — the one claim (``FOR UPDATE SKIP LOCKED``, earliest deadline first), lease
  renewal, and the one exactly-once completion (a conditional update on status and attempt,
  with usage in the same transaction);
* ``leases`` — one keeper per worker process renews what it runs and aborts what it lost;
* ``feed`` and ``attempts`` — a worker keeps its engine supplied, one loop for both kinds;
* ``sweep`` — the control role repairs gaps: expired deadlines, lapsed leases, attempt caps;
* ``finish``, ``progress`` and ``follow`` — stopping a job while keeping its output, and
  following its event channel from the API.
"""

from inference_platform.jobs.dispatch import enqueue, hint
from inference_platform.jobs.finish import seal, stop
from inference_platform.jobs.store import RUNNING, STOPPED

__all__ = ["RUNNING", "STOPPED", "enqueue", "hint", "seal", "stop"]

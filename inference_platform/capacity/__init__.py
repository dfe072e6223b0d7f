"""The deadline promise: a capacity model per model, and what the platform does with it.

* ``model`` — the arithmetic, with no I/O: work units, finish times under earliest deadline
  first, admission verdicts, and the engine priority a deadline's slack earns;
* ``meter`` — what a worker measures of its engine (throughput while busy, busy fraction),
  published to Redis with its heartbeat;
* ``estimate`` — the control role's computation every few seconds: each model's throughput
  over its live workers and the finish of every queued batch and flex job, written to the
  batches (``estimated_completion_at``) and to Redis as the model's queue ``Profile``;
* ``admission`` — the API's side: refuse at once what cannot finish inside its window;
* ``sla`` — keeping score: work finished inside its window vs late, per tier and model.
"""

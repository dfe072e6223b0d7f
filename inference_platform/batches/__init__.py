"""The batch tier: OpenAI-compatible batches of up to 50,000 lines, 24 h or 1 h windows.

* ``service`` — create / retrieve / list (the API's side);
* ``lines`` and ``validate`` — checking the input file on the control role, inserting lines;
* ``dispatch`` — the beat task that keeps chunk hints on each model's batch queue;
* ``execute``, ``record`` and ``leases`` — a GPU worker running chunks of lines;
* ``lifecycle`` — finalisation, expiry, cancellation; ``sweep`` — the repairs;
* ``outputs`` and ``objects`` — what a line records and the Batch object.
"""

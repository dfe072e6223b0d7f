"""Running under gunicorn's gevent worker: one greenlet per open stream.

gevent patches sockets, threads and locks when its worker starts, so Redis, the event hub and
the broker yield to other greenlets while they wait. psycopg2 talks to Postgres through libpq
in C and would block the whole process; psycogreen installs the wait callback that makes it
yield too.
"""

from __future__ import annotations

from flask import Flask
from gevent import monkey
from psycogreen.gevent import patch_psycopg


def init_app(app: Flask) -> None:
    if monkey.is_module_patched("socket"):
        patch_psycopg()

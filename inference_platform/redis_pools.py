"""Redis connection pools that give up on every idle connection once one came back broken.

Whatever silently cut one connection (a firewall or NAT that forgot it, a failover of Redis's
address, a link down for longer than TCP retries) cut them all, and no reset tells the client
so. Each idle connection would otherwise cost the next thread that takes it the whole socket
timeout before it is found out, one after another: with a pool of dozens, minutes. A
connection that comes back disconnected (redis-py disconnects it on a connection error or a
timeout) is the sign; the idle ones are then closed, and reconnect when next used.
"""

from __future__ import annotations

from typing import Any

import redis


def _broken(connection: Any) -> bool:
    return getattr(connection, "_sock", None) is None


class ConnectionPool(redis.ConnectionPool):
    def release(self, connection: Any) -> None:
        broken = _broken(connection)
        super().release(connection)
        if broken:
            self.disconnect(inuse_connections=False)


class BlockingConnectionPool(redis.BlockingConnectionPool):
    def release(self, connection: Any) -> None:
        broken = _broken(connection)
        super().release(connection)
        if broken:
            # (types-redis predates the argument)
            self.disconnect(inuse_connections=False)  # type: ignore[call-arg]

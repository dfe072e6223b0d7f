"""No server-side request forgery: in production a receiver must be ``https://`` on a name
that resolves only to public addresses, checked when the endpoint is saved and again before
each delivery (a name may change its address). Redirects are never followed.

``INFERENCE_WEBHOOK_ALLOW_INSECURE`` (development) also allows ``http://`` and loopback or
private addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeReceiver(ValueError):
    """The URL may not receive webhooks; the message says why."""


def check(url: str, *, allow_insecure: bool) -> None:
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeReceiver(f"The webhook URL must use {' or '.join(allowed)}; got {url!r}.")
    if not parts.hostname:
        raise UnsafeReceiver(f"The webhook URL has no host: {url!r}.")
    if parts.username or parts.password:
        raise UnsafeReceiver("The webhook URL may not carry credentials.")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeReceiver(f"The webhook URL has an invalid port: {url!r}.") from None
    if allow_insecure:
        return
    for address in _addresses(parts.hostname, port or 443):
        if not address.is_global or address.is_multicast:
            raise UnsafeReceiver(
                f"The webhook URL's host {parts.hostname} resolves to {address}, which is "
                "not a public address."
            )


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise UnsafeReceiver(f"The webhook URL's host {host} does not resolve.") from None
    found = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone
        address = ipaddress.ip_address(text)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        found.append(address)
    return found

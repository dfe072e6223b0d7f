"""No server-side request forgery: in production a receiver must be ``https://`` on a name
that resolves only to public addresses, checked when the endpoint is saved and again before
each delivery (a name may change its address). Redirects are never followed. An IPv6 address
that embeds an IPv4 one (NAT64, 6to4, Teredo, IPv4-mapped or -compatible) is judged by that
IPv4 address too: a host with those routes would reach it.

``INFERENCE_WEBHOOK_ALLOW_INSECURE`` (development) also allows ``http://`` and loopback or
private addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeReceiver(ValueError):
    """The URL may not receive webhooks; the message says why."""


Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges that carry an IPv4 address a host with the right routes reaches (RFC 6052
# NAT64, RFC 6145 IPv4-compatible): the IPv4 address is what must be public.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Local-use NAT64 (RFC 8215): its IPv4 position depends on the operator's prefix length, and
# the range is never global anyway.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def check(url: str, *, allow_insecure: bool) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "https://[::1": an unclosed IPv6 literal, ...
        raise UnsafeReceiver(f"The webhook URL is not a valid URL ({exc}): {url!r}.") from None
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
        if not public(address):
            raise UnsafeReceiver(
                f"The webhook URL's host {parts.hostname} resolves to {address}, which is "
                "not a public address."
            )


def public(address: Address) -> bool:
    """A global unicast address, and so is every IPv4 address it embeds (NAT64, 6to4,
    Teredo, IPv4-mapped or -compatible forms reach that IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return public(address.ipv4_mapped)  # a dual-stack resolver's form of an IPv4 answer
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    if address in _LOCAL_NAT64:
        return False
    return all(public(inner) for inner in embedded_ipv4(address))


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, by the standard embeddings."""
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        found.append(low32)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def _addresses(host: str, port: int) -> list[Address]:
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
        found.append(ipaddress.ip_address(text))
    return found

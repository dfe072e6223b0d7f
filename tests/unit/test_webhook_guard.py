"""The webhook receiver guard: URLs it cannot parse and IPv6 forms that embed an IPv4 address
are refused with a clear reason, never a crash and never a way around the address check."""

from __future__ import annotations

import ipaddress

import pytest

from inference_platform.webhooks import guard


@pytest.mark.parametrize("url", ["https://[::1", "https://[::1/hook", "http://[zz::1]/"])
def test_a_url_that_does_not_parse_is_refused_not_a_crash(url: str) -> None:
    for insecure in (False, True):
        with pytest.raises(guard.UnsafeReceiver, match="not a valid URL"):
            guard.check(url, allow_insecure=insecure)


@pytest.mark.parametrize(
    "host",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
        "64:ff9b::7f00:1",  # NAT64 of loopback
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
        "2002:a9fe:a9fe::",  # 6to4
        "2002:7f00:1::",
        "::a9fe:a9fe",  # IPv4-compatible
        "::127.0.0.1",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "2001:0:a9fe:a9fe::1",  # Teredo, server 169.254.169.254
        "2001:0:808:808::5601:fefe",  # Teredo, client (obfuscated) 169.254.1.1
    ],
)
def test_ipv6_forms_that_embed_a_private_ipv4_address_are_refused(host: str) -> None:
    with pytest.raises(guard.UnsafeReceiver, match="not a public address"):
        guard.check(f"https://[{host}]/hook", allow_insecure=False)


def test_embedded_public_ipv4_addresses_are_judged_by_that_address() -> None:
    for host in ("64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"):
        assert guard.public(ipaddress.ip_address(host)), host
    guard.check("https://[2606:4700:4700::1111]/hook", allow_insecure=False)
    embedded = guard.embedded_ipv4(ipaddress.IPv6Address("2002:a9fe:a9fe::"))
    assert embedded == [ipaddress.IPv4Address("169.254.169.254")]

"""The address classifier shared by the egress client and the webhook replay tool."""

from __future__ import annotations

import ipaddress

import pytest

from modelfaucet.adapters import netpolicy
from modelfaucet.adapters.netpolicy import AddressClass, classify_ip, is_local_target

CASES = [
    ("8.8.8.8", AddressClass.PUBLIC),
    ("2606:4700:4700::1111", AddressClass.PUBLIC),
    ("127.0.0.1", AddressClass.LOOPBACK),
    ("127.255.255.254", AddressClass.LOOPBACK),
    ("::1", AddressClass.LOOPBACK),
    ("10.0.0.1", AddressClass.PRIVATE),
    ("172.31.255.255", AddressClass.PRIVATE),
    ("192.168.0.1", AddressClass.PRIVATE),
    ("fd00::1", AddressClass.PRIVATE),
    ("169.254.0.1", AddressClass.LINK_LOCAL),
    ("fe80::1", AddressClass.LINK_LOCAL),
    ("100.64.0.1", AddressClass.CARRIER_NAT),
    ("100.127.255.254", AddressClass.CARRIER_NAT),
    ("224.0.0.251", AddressClass.MULTICAST),
    ("ff02::1", AddressClass.MULTICAST),
    ("0.0.0.0", AddressClass.UNSPECIFIED),
    ("::", AddressClass.UNSPECIFIED),
    ("240.0.0.1", AddressClass.RESERVED),
    ("192.0.2.1", AddressClass.PRIVATE),
    ("169.254.169.254", AddressClass.METADATA),
    ("fd00:ec2::254", AddressClass.METADATA),
    ("100.100.100.200", AddressClass.METADATA),
    ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
    ("::ffff:10.0.0.1", AddressClass.PRIVATE),
    ("::ffff:169.254.169.254", AddressClass.METADATA),
    ("64:ff9b::7f00:1", AddressClass.LOOPBACK),
    ("64:ff9b::a9fe:a9fe", AddressClass.METADATA),
    ("64:ff9b:1::c0a8:1", AddressClass.PRIVATE),
    ("2002:7f00:1::", AddressClass.LOOPBACK),
    ("2002:0a00:0001::", AddressClass.PRIVATE),
    ("::127.0.0.1", AddressClass.LOOPBACK),
    ("::ffff:8.8.8.8", AddressClass.PUBLIC),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_an_address_is_classified(text: str, expected: AddressClass) -> None:
    assert classify_ip(ipaddress.ip_address(text)) is expected


def test_a_literal_resolves_to_itself_without_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("DNS must not be asked about a literal")

    monkeypatch.setattr(netpolicy.socket, "getaddrinfo", no_dns)
    assert netpolicy.resolve("[::1]") == [ipaddress.ip_address("::1")]


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("localhost", True), ("10.1.1.1", True), ("8.8.8.8", False), ("169.254.169.254", False)],
)
def test_the_replay_tool_only_counts_loopback_and_private_as_local(host: str, local: bool) -> None:
    assert is_local_target(host) is local

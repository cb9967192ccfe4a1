"""Which network addresses are public, and which are local/private.

One classifier serves both directions: the cloud-side egress client refuses anything that
is not public; the operator's webhook replay tool refuses anything that *is* public unless
``ALLOW_REMOTE_WEBHOOK_REPLAY=1``. Names are classified by every address they resolve to.
"""

from __future__ import annotations

import ipaddress
import socket
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CARRIER_NAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}
METADATA_HOSTNAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)


class AddressClass(StrEnum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link_local"
    CARRIER_NAT = "carrier_nat"
    MULTICAST = "multicast"
    RESERVED = "reserved"
    UNSPECIFIED = "unspecified"
    METADATA = "metadata"


LOCAL_CLASSES = frozenset({AddressClass.LOOPBACK, AddressClass.PRIVATE})


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    packed = int(address)
    if packed >> 32 == 0 and packed > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(packed)
    return None


def classify_ip(address: IPAddress) -> AddressClass:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return classify_ip(inner)
        if address in _SIX_TO_FOUR:
            return AddressClass.RESERVED
    if address in _METADATA_ADDRESSES:
        return AddressClass.METADATA
    if address.is_unspecified:
        return AddressClass.UNSPECIFIED
    if address.is_loopback:
        return AddressClass.LOOPBACK
    if address.is_link_local:
        return AddressClass.LINK_LOCAL
    if address.is_multicast:
        return AddressClass.MULTICAST
    if isinstance(address, ipaddress.IPv4Address) and address in _CARRIER_NAT:
        return AddressClass.CARRIER_NAT
    if address.is_reserved:  # before is_private, which also covers 240.0.0.0/4
        return AddressClass.RESERVED
    if address.is_private:
        return AddressClass.PRIVATE
    if not address.is_global:
        return AddressClass.RESERVED
    return AddressClass.PUBLIC


def resolve(host: str, port: int = 443) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal resolves to itself)."""
    host = host.strip("[]")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        if address not in addresses:
            addresses.append(address)
    return addresses


def is_local_target(host: str, port: int = 80) -> bool:
    """True if ``host`` is loopback/private and every address it resolves to is too."""
    if host.rstrip(".").lower() in {"localhost"}:
        return True
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        return False
    return bool(addresses) and all(classify_ip(address) in LOCAL_CLASSES for address in addresses)

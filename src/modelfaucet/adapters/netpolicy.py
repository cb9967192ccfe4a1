"""Which network addresses are public, and which are local/private; what an http(s) URL is.

One classifier serves both directions: the cloud-side egress client refuses anything that
is not public; the operator's webhook replay tool refuses anything that *is* public unless
``ALLOW_REMOTE_WEBHOOK_REPLAY=1``. Names are classified by every address they resolve to.

One URL rule, :func:`parse_http_url`, for every URL the service accepts (provider base URLs,
checkout return URLs, the replay tool's API base URL); callers add their own policy on top
(the egress client refuses local names, fragments and non-public addresses).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from ..domain.outcomes import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_NUMERICISH_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")

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


def is_local(addresses: Sequence[IPAddress]) -> bool:
    """True if there is an address and every one is loopback or private."""
    return bool(addresses) and all(classify_ip(address) in LOCAL_CLASSES for address in addresses)


def is_local_target(host: str, port: int = 80) -> bool:
    """True if ``host`` is loopback/private and every address it resolves to is too."""
    if host.rstrip(".").lower() in {"localhost"}:
        return True
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        return False
    return is_local(addresses)


class InvalidUrl(InvalidRequest):
    """Not an http(s) URL with a host. The message names the field and the reason, never the URL."""


@dataclass(frozen=True)
class HttpUrl:
    """A parsed http(s) URL: ``host`` is a lower-case name or an IP literal (no brackets)."""

    text: str
    scheme: str
    host: str
    port: int
    address: IPAddress | None  # the host, when it is an IP literal

    @property
    def host_header(self) -> str:
        """The ``Host`` header for this URL (the port only when it is not the default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse_http_url(url: object, *, field: str) -> HttpUrl:
    """Parse an absolute http(s) URL with a host, strictly; :class:`InvalidUrl` naming ``field`` otherwise.

    Refused: anything but text of 1–2048 characters; whitespace, control characters and
    backslashes; non-ASCII (a host must arrive in punycode, so full-width digits never pass
    for ASCII ones); other schemes; user-info (``https://good@evil``); a port outside
    1–65535; an IPv6 zone id; a host name with a trailing dot or a label outside
    ``[a-z0-9-]``; numeric hosts other than canonical dotted-quad IPv4 (``0177.0.0.1``,
    ``2130706433``, ``0x7f.1`` and ``127.1`` mean 127.0.0.1 to some resolvers and not to others).
    """

    def refuse(reason: str) -> InvalidUrl:
        return InvalidUrl(
            f"{field} must be an http(s) URL with a host: {reason}.", details={"field": field, "reason": reason}
        )

    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise refuse(f"text of 1 to {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url) or "\\" in url:
        raise refuse("no whitespace, control characters or backslashes")
    if not url.isascii():
        raise refuse("ASCII only (use the punycode form of the host)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refuse("a well-formed URL (a valid host, a port from 1 to 65535)") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise refuse("only http and https URLs are allowed")
    if not url.lower().startswith(f"{scheme}://"):
        raise refuse("a well-formed URL such as https://host/path")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise refuse("user-info in URLs is not allowed")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise refuse("the URL has no host")
    if port == 0:
        raise refuse("port 0 is not allowed")
    resolved_port = port if port is not None else DEFAULT_PORTS[scheme]
    if parts.netloc.split(":")[0].startswith("[") or ":" in raw_host:
        if "%" in raw_host:
            raise refuse("IPv6 zone ids are not allowed")
        try:
            v6 = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise refuse("a valid IPv6 literal") from None
        return HttpUrl(url, scheme, raw_host, resolved_port, v6)
    host = raw_host.lower()
    if host.endswith("."):
        raise refuse("host names with a trailing dot are not allowed")
    labels = host.split(".")
    if all(_NUMERICISH_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        if not _CANONICAL_IPV4.fullmatch(host):
            raise refuse("numeric hosts must be canonical dotted-quad IPv4 (no decimal, octal, hex or short forms)")
        return HttpUrl(url, scheme, host, resolved_port, ipaddress.IPv4Address(host))
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise refuse("not a valid host name")
    return HttpUrl(url, scheme, host, resolved_port, None)

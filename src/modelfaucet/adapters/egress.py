"""The one egress client: every cloud-side outbound fetch goes through here.

Two layers:

- :func:`check_url` decides whether a URL may be fetched at all. It parses strictly with
  the one URL rule, :func:`netpolicy.parse_http_url` (http/https only, no user-info, no
  trailing dot, ASCII host names only — IDNA must arrive already in punycode —, no numeric
  tricks such as ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` or ``127.1``, no zone ids), adds
  its own rules (no fragments, no local or metadata host names), then resolves the
  host **once** and refuses it unless *every* address is public (``netpolicy.classify_ip``:
  loopback, private, link-local, carrier-NAT, multicast, reserved, unspecified, metadata and
  the IPv4-mapped/-compatible/NAT64/6to4 forms of those are all refused).
- :class:`EgressClient` fetches a checked URL by connecting to the **checked address**
  (the request goes to the IP literal, with the original ``Host`` header and TLS SNI /
  certificate name), so a second DNS answer (rebinding) can never redirect the connection.
  Redirects are followed by hand, each hop checked again from scratch. Connect/read/write
  timeouts, an overall deadline and a response size cap bound every call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from ..domain.outcomes import InvalidRequest, UpstreamError
from . import netpolicy
from .netpolicy import AddressClass, HttpUrl, InvalidUrl, IPAddress

Resolver = Callable[[str, int], list[IPAddress]]
Classifier = Callable[[IPAddress], AddressClass]

# Names that mean "this machine / this network" whatever DNS says.
LOCAL_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".localdomain")
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "broadcasthost"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class UnsafeUrl(InvalidRequest):
    """The URL may not be fetched from the cloud side. The message names why, not the URL's secrets."""


def _system_resolve(host: str, port: int) -> list[IPAddress]:
    return netpolicy.resolve(host, port)


def _classify(address: IPAddress) -> AddressClass:
    return netpolicy.classify_ip(address)


@dataclass(frozen=True)
class EgressPolicy:
    """How names are resolved and addresses classified; tests swap in stubs."""

    resolver: Resolver = field(default=_system_resolve)
    classify: Classifier = field(default=_classify)


@dataclass(frozen=True)
class CheckedUrl:
    """A parsed URL and the address it was checked at; requests go to that address only."""

    parsed: HttpUrl
    address: IPAddress
    addresses: tuple[IPAddress, ...]

    @property
    def url(self) -> str:
        return self.parsed.text

    @property
    def scheme(self) -> str:
        return self.parsed.scheme

    @property
    def host(self) -> str:
        return self.parsed.host

    @property
    def port(self) -> int:
        return self.parsed.port

    @property
    def host_header(self) -> str:
        return self.parsed.host_header

    def pinned_url(self) -> str:
        """The same URL with the host replaced by the checked address."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = literal if parts.port is None else f"{literal}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def build_request(
        self,
        client: httpx.Client,
        method: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Request:
        """A request to the checked address itself, carrying the URL's ``Host`` header and, over
        TLS, its name as SNI and certificate name: a second DNS answer cannot redirect it."""
        outgoing = {k: v for k, v in (headers or {}).items() if k.lower() != "host"}
        outgoing["Host"] = self.host_header
        extensions: dict[str, object] = {}
        if self.scheme == "https":
            extensions["sni_hostname"] = self.host
        return client.build_request(method, self.pinned_url(), headers=outgoing, content=content, extensions=extensions)


def _refuse(reason: str, *, field_name: str) -> UnsafeUrl:
    return UnsafeUrl(f"{field_name} is not allowed: {reason}.", details={"field": field_name, "reason": reason})


def parse_public_url(url: str, *, field_name: str = "url") -> HttpUrl:
    """:func:`netpolicy.parse_http_url`, then the cloud side's own rules: no fragments, no
    local or metadata host names. Every refusal is an :class:`UnsafeUrl`."""
    try:
        parsed = netpolicy.parse_http_url(url, field=field_name)
    except InvalidUrl as exc:
        raise UnsafeUrl(exc.message, details=exc.details) from None
    if urlsplit(url).fragment:
        raise _refuse("fragments are not allowed", field_name=field_name)
    if parsed.address is None:
        host = parsed.host
        if host in LOCAL_NAMES or host.endswith(LOCAL_NAME_SUFFIXES) or "." not in host:
            raise _refuse("local host names are not allowed", field_name=field_name)
        if host in netpolicy.METADATA_HOSTNAMES:
            raise _refuse("cloud metadata hosts are not allowed", field_name=field_name)
    return parsed


def resolve_once(parsed: HttpUrl, resolver: Resolver) -> tuple[IPAddress, ...]:
    """Every address of the URL's host, from one answer (a literal is its own); empty if none."""
    if parsed.address is not None:
        return (parsed.address,)
    try:
        return tuple(resolver(parsed.host, parsed.port))
    except (OSError, UnicodeError, ValueError):
        return ()


def check_url(url: str, *, policy: EgressPolicy | None = None, field_name: str = "url") -> CheckedUrl:
    """Parse, resolve once and classify. Refuses unless every address is public."""
    active = policy or EgressPolicy()
    parsed = parse_public_url(url, field_name=field_name)
    addresses = resolve_once(parsed, active.resolver)
    if not addresses:
        raise _refuse("the host name does not resolve", field_name=field_name)
    for address in addresses:
        kind = active.classify(address)
        if kind is not AddressClass.PUBLIC:
            raise _refuse(f"it points at a {kind.value.replace('_', '-')} address", field_name=field_name)
    return CheckedUrl(parsed=parsed, address=addresses[0], addresses=addresses)


def validate_base_url(url: str, *, policy: EgressPolicy | None = None, field_name: str = "base_url") -> str:
    """A provider base URL that cloud-side code may fetch; returned unchanged when allowed."""
    check_url(url, policy=policy, field_name=field_name)
    return url


@dataclass(frozen=True)
class EgressResponse:
    status_code: int
    headers: Mapping[str, str]
    body: bytes
    url: str


class EgressClient:
    """Fetches public URLs only, pinned to the checked address, redirects re-checked."""

    def __init__(
        self,
        *,
        policy: EgressPolicy | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        total_timeout: float = 30.0,
        max_response_bytes: int = 1_048_576,
        max_redirects: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy or EgressPolicy()
        self.max_response_bytes = max_response_bytes
        self.max_redirects = max_redirects
        self.total_timeout = total_timeout
        self._client = httpx.Client(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: we connect where we checked
            # No pooled connections: a connection opened for one host name (SNI) must never be
            # reused for another name that happens to share the address.
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EgressClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> EgressResponse:
        deadline = time.monotonic() + self.total_timeout
        current_url, current_method, current_content = url, method.upper(), content
        for _hop in range(self.max_redirects + 1):
            checked = check_url(current_url, policy=self.policy)
            response = self._send(checked, current_method, headers, current_content, deadline)
            if response.status_code not in _REDIRECT_STATUSES:
                return response
            location = response.headers.get("location")
            if not location:
                return response
            current_url = urljoin(current_url, location)
            if response.status_code in (301, 302, 303) and current_method != "HEAD":
                current_method, current_content = "GET", None
        raise UpstreamError("The upstream redirected too many times.")

    def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> EgressResponse:
        return self.request("GET", url, headers=headers)

    def _send(
        self,
        checked: CheckedUrl,
        method: str,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        deadline: float,
    ) -> EgressResponse:
        outgoing = {**(headers or {}), "Accept-Encoding": "identity"}
        request = checked.build_request(self._client, method, headers=outgoing, content=content)
        try:
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamError("The upstream did not answer in time.") from None
        except httpx.HTTPError:
            raise UpstreamError("The upstream could not be reached.") from None
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > self.max_response_bytes:
                    raise UpstreamError("The upstream response is larger than allowed.")
                if time.monotonic() > deadline:
                    raise UpstreamError("The upstream did not answer in time.")
        except httpx.TimeoutException:
            raise UpstreamError("The upstream did not answer in time.") from None
        except httpx.HTTPError:
            raise UpstreamError("The upstream connection failed.") from None
        finally:
            response.close()
        return EgressResponse(
            status_code=response.status_code,
            headers=dict(response.headers),
            body=bytes(body),
            url=checked.url,
        )

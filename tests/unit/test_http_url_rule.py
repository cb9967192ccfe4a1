"""The one URL rule (netpolicy.parse_http_url): an http(s) URL with a host, one row per case."""

from __future__ import annotations

import ipaddress

import pytest

from modelfaucet.adapters.netpolicy import HttpUrl, InvalidUrl, parse_http_url
from modelfaucet.domain.outcomes import InvalidRequest

ACCEPTED = [
    ("https://a.example/ok", "https", "a.example", 443, None),
    ("HTTP://A.Example:8080/x?y=1#frag", "http", "a.example", 8080, None),
    ("http://127.0.0.1:3001", "http", "127.0.0.1", 3001, "127.0.0.1"),
    ("http://localhost:3001", "http", "localhost", 3001, None),
    ("http://[::1]:8080/x", "http", "::1", 8080, "::1"),
    ("https://xn--bcher-kva.example/", "https", "xn--bcher-kva.example", 443, None),
    ("http://10.1.2.3", "http", "10.1.2.3", 80, "10.1.2.3"),
]


@pytest.mark.parametrize(("url", "scheme", "host", "port", "address"), ACCEPTED)
def test_an_http_url_with_a_host_is_parsed(url: str, scheme: str, host: str, port: int, address: str | None) -> None:
    parsed = parse_http_url(url, field="success_url")
    expected_address = None if address is None else ipaddress.ip_address(address)
    assert parsed == HttpUrl(url, scheme, host, port, expected_address)


REFUSED = [
    ("", "text of 1 to 2048 characters"),
    ("https://a.example/" + "x" * 2048, "text of 1 to 2048 characters"),
    ("https://a.example/a b", "no whitespace"),
    ("https://a.example/\nx", "no whitespace"),
    ("https://a.example\\@127.0.0.1/", "backslashes"),
    ("https://bücher.example/", "ASCII only"),
    ("http://１２７.0.0.1/", "ASCII only"),
    ("http://127.0.0.1:３００１/", "ASCII only"),
    ("http://127.0.0.1:²/", "ASCII only"),
    ("javascript:alert(1)", "only http and https"),
    ("ftp://a.example/", "only http and https"),
    ("//a.example/x", "only http and https"),
    ("http:/a.example", "well-formed"),
    ("https://user:hunter2@a.example/", "user-info"),
    ("https://a.example@127.0.0.1/", "user-info"),
    ("https://", "no host"),
    ("https://a.example:0/", "port 0"),
    ("https://a.example:99999/", "a port from 1 to 65535"),
    ("https://a.example:80x/", "a port from 1 to 65535"),
    ("http://[fe80::1%25eth0]/", "zone ids"),
    ("http://[::g]/", "a valid host"),
    ("http://[::1:2::3]/", "a valid host"),
    ("http://[::1/", "a port from 1 to 65535"),
    ("https://a.example./", "trailing dot"),
    ("http://0177.0.0.1/", "canonical dotted-quad"),
    ("http://2130706433/", "canonical dotted-quad"),
    ("http://0x7f.1/", "canonical dotted-quad"),
    ("http://127.1/", "canonical dotted-quad"),
    ("http://127.000.000.001/", "canonical dotted-quad"),
    ("http://256.0.0.1/", "canonical dotted-quad"),
    ("http://a_b.example/", "not a valid host name"),
    ("http://-a.example/", "not a valid host name"),
    ("http://" + "a" * 64 + ".example/", "not a valid host name"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_anything_else_is_refused_naming_the_field_and_the_reason(url: str, reason: str) -> None:
    with pytest.raises(InvalidUrl) as refused:
        parse_http_url(url, field="success_url")
    assert isinstance(refused.value, InvalidRequest)  # a 400 invalid_request at the HTTP edge
    assert refused.value.message.startswith("success_url must be an http(s) URL with a host: ")
    assert reason in refused.value.message
    assert refused.value.details == {"field": "success_url", "reason": refused.value.details["reason"]}
    assert "hunter2" not in refused.value.message


@pytest.mark.parametrize("value", [None, 42, b"https://a.example/"])
def test_a_value_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(InvalidUrl, match="success_url"):
        parse_http_url(value, field="success_url")


def test_the_host_header_carries_the_port_only_when_it_is_not_the_default() -> None:
    assert parse_http_url("https://a.example/", field="u").host_header == "a.example"
    assert parse_http_url("https://a.example:8443/", field="u").host_header == "a.example:8443"
    assert parse_http_url("http://[::1]:8080/", field="u").host_header == "[::1]:8080"

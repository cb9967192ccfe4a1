"""Cloud-safe URLs: a table of hostile URLs that must all be refused, and public ones that pass.

Name resolution is stubbed (no real DNS in unit tests): ``STUB_DNS`` maps each test name to
the addresses an attacker could make it resolve to.
"""

from __future__ import annotations

import ipaddress

import pytest

from modelfaucet.adapters import egress
from modelfaucet.adapters.egress import EgressPolicy, UnsafeUrl, check_url, validate_base_url
from modelfaucet.adapters.netpolicy import IPAddress
from modelfaucet.domain.outcomes import InvalidRequest

STUB_DNS: dict[str, list[str]] = {
    "api.openai.com": ["104.18.7.192"],
    "api.anthropic.com": ["160.79.104.10", "2607:6bc0::10"],
    "xn--bcher-kva.example": ["93.184.216.34"],
    "rebind.attacker.example": ["127.0.0.1"],
    "private.attacker.example": ["10.1.2.3"],
    "mixed.attacker.example": ["93.184.216.34", "192.168.0.10"],
    "meta.attacker.example": ["169.254.169.254"],
    "v6loop.attacker.example": ["::1"],
    "mapped.attacker.example": ["::ffff:10.0.0.1"],
    "cgnat.attacker.example": ["100.64.1.1"],
    "linklocal6.attacker.example": ["fe80::1"],
    "ula.attacker.example": ["fd12:3456::1"],
    "zero.attacker.example": ["0.0.0.0"],
    "multicast.attacker.example": ["224.0.0.1"],
}


def stub_resolver(host: str, port: int) -> list[IPAddress]:
    if host not in STUB_DNS:
        raise OSError("name does not resolve")
    return [ipaddress.ip_address(a) for a in STUB_DNS[host]]


POLICY = EgressPolicy(resolver=stub_resolver)

HOSTILE_URLS = [
    # schemes
    "file:///etc/passwd",
    "ftp://api.openai.com/",
    "gopher://api.openai.com:70/_stats",
    "javascript:alert(1)",
    "data:text/plain,hello",
    "//api.openai.com/v1",
    "api.openai.com/v1",
    "http:/api.openai.com",
    # loopback, every spelling
    "http://localhost/",
    "http://LOCALHOST:8080/",
    "http://foo.localhost/",
    "http://127.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://127.000.000.001/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[::127.0.0.1]/",
    # unspecified / private / carrier NAT / link-local / multicast / reserved
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.1.1/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.10/",
    "http://198.18.0.1/",
    "http://[::ffff:192.168.1.1]/",
    "http://[64:ff9b::a00:1]/",
    "http://[2002:c0a8:101::1]/",
    # cloud metadata
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/",
    "http://instance-data/",
    # names resolving to local addresses (DNS tricks)
    "https://rebind.attacker.example/",
    "https://private.attacker.example/",
    "https://mixed.attacker.example/",
    "https://meta.attacker.example/",
    "https://v6loop.attacker.example/",
    "https://mapped.attacker.example/",
    "https://cgnat.attacker.example/",
    "https://linklocal6.attacker.example/",
    "https://ula.attacker.example/",
    "https://zero.attacker.example/",
    "https://multicast.attacker.example/",
    "https://does-not-resolve.example/",
    # user-info, trailing dots, IDNA and parser confusion
    "https://user:pass@api.openai.com/",
    "https://api.openai.com@127.0.0.1/",
    "https://api.openai.com:443@10.0.0.1/",
    "https://127.0.0.1#@api.openai.com/",
    "https://api.openai.com./v1",
    "http://localhost./",
    "http://127.0.0.1./",
    "https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/",
    "https://１２７.０.０.１/",
    "https://bücher.example/",
    "https://api.openai.com\\@127.0.0.1/",
    "https://api.openai.com /v1",
    "https://api.openai.com/\nv1",
    "https://api.openai.com:0/",
    "https://api.openai.com:99999/",
    "https://intranet/",
    "https://printer.local/",
    "https://db.corp.internal/",
    "https://",
    "",
]


def test_the_hostile_url_table_has_at_least_forty_rows() -> None:
    assert len(HOSTILE_URLS) >= 40
    assert len(set(HOSTILE_URLS)) == len(HOSTILE_URLS)


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_hostile_url_is_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url(url, policy=POLICY, field_name="base_url")
    assert isinstance(refused.value, InvalidRequest)
    assert refused.value.details["field"] == "base_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "https://api.anthropic.com",
        "http://api.openai.com:8080/v1?x=1",
        "https://xn--bcher-kva.example/",
        "https://93.184.216.34/v1",
        "https://[2606:4700:4700::1111]/dns-query",
    ],
)
def test_a_public_url_is_allowed(url: str) -> None:
    assert validate_base_url(url, policy=POLICY) == url


def test_every_resolved_address_is_checked_not_just_the_first() -> None:
    with pytest.raises(UnsafeUrl, match="private"):
        check_url("https://mixed.attacker.example/", policy=POLICY)


def test_the_refusal_message_does_not_echo_user_info() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url("https://admin:hunter2-secret@api.openai.com/", policy=POLICY)
    assert "hunter2" not in refused.value.message
    assert "hunter2" not in str(refused.value.details)


def test_the_checked_url_pins_the_first_checked_address_and_keeps_the_host_name() -> None:
    checked = check_url("https://api.anthropic.com:8443/v1/models?limit=1", policy=POLICY)
    assert checked.pinned_url() == "https://160.79.104.10:8443/v1/models?limit=1"
    assert checked.host_header == "api.anthropic.com:8443"


def test_the_default_policy_uses_the_system_resolver_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(egress.netpolicy, "resolve", lambda host, port: [ipaddress.ip_address("10.9.9.9")])
    with pytest.raises(UnsafeUrl, match="private"):
        check_url("https://looks-public.example/")

"""The egress client against a real 127.0.0.1 server, with a stub DNS.

The stub policy counts 127.0.0.1 as "public" for these tests only, so that a local test
server can stand in for a provider; everything else is classified by the real policy.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelfaucet.adapters.egress import EgressClient, EgressPolicy, UnsafeUrl
from modelfaucet.adapters.netpolicy import AddressClass, IPAddress, classify_ip
from modelfaucet.domain.outcomes import UpstreamError

TEST_SERVER = ipaddress.ip_address("127.0.0.1")


def classify_test_server_as_public(address: IPAddress) -> AddressClass:
    return AddressClass.PUBLIC if address == TEST_SERVER else classify_ip(address)


class _Handler(BaseHTTPRequestHandler):
    seen_hosts: list[str] = []  # noqa: RUF012 - shared by the test server

    def log_message(self, *_args: object) -> None:
        pass

    def do_GET(self) -> None:
        _Handler.seen_hosts.append(self.headers.get("Host", ""))
        routes = {
            "/ok": (200, {}, b"hello"),
            "/to-private": (302, {"Location": "http://10.0.0.7/steal"}, b""),
            "/to-metadata": (301, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
            "/to-private-name": (307, {"Location": "http://internal.stub.test/"}, b""),
            "/to-ok": (302, {"Location": "/ok"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/big": (200, {}, b"x" * 50_000),
        }
        status, headers, body = routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server_port() -> Iterator[int]:
    _Handler.seen_hosts = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


class StubDns:
    """Answers from a script per name; counts lookups."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        script = self.answers[host]
        answer = script.pop(0) if len(script) > 1 else script[0]
        return [ipaddress.ip_address(a) for a in answer]


def client_with(dns: StubDns, **kwargs: object) -> EgressClient:
    policy = EgressPolicy(resolver=dns, classify=classify_test_server_as_public)
    return EgressClient(policy=policy, **kwargs)  # type: ignore[arg-type]


def test_a_public_name_is_fetched_with_its_own_host_header(server_port: int) -> None:
    dns = StubDns({"provider.stub.test": [["127.0.0.1"]]})
    with client_with(dns) as client:
        response = client.get(f"http://provider.stub.test:{server_port}/ok")
    assert (response.status_code, response.body) == (200, b"hello")
    assert _Handler.seen_hosts == [f"provider.stub.test:{server_port}"]


def test_dns_rebinding_cannot_move_the_connection_after_the_check(server_port: int) -> None:
    # First answer public (the test server), every later answer private: the client resolves
    # once per hop and connects to the address it checked, so the private answer is never used.
    dns = StubDns({"rebind.stub.test": [["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]]})
    with client_with(dns) as client:
        response = client.get(f"http://rebind.stub.test:{server_port}/ok")
    assert response.status_code == 200
    assert dns.lookups == ["rebind.stub.test"]


def test_a_name_whose_first_answer_is_private_is_refused_before_connecting(server_port: int) -> None:
    dns = StubDns({"rebind.stub.test": [["10.0.0.1"], ["127.0.0.1"]]})
    with client_with(dns) as client, pytest.raises(UnsafeUrl, match="private"):
        client.get(f"http://rebind.stub.test:{server_port}/ok")
    assert _Handler.seen_hosts == []


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/to-private", "private"), ("/to-metadata", "metadata"), ("/to-private-name", "private")],
)
def test_a_redirect_to_a_private_target_is_refused(server_port: int, path: str, reason: str) -> None:
    dns = StubDns({"provider.stub.test": [["127.0.0.1"]], "internal.stub.test": [["192.168.10.10"]]})
    with client_with(dns) as client, pytest.raises(UnsafeUrl, match=reason):
        client.get(f"http://provider.stub.test:{server_port}{path}")
    assert len(_Handler.seen_hosts) == 1  # only the first hop reached a server


def test_a_redirect_to_a_public_target_is_followed_and_rechecked(server_port: int) -> None:
    dns = StubDns({"provider.stub.test": [["127.0.0.1"]]})
    with client_with(dns) as client:
        response = client.get(f"http://provider.stub.test:{server_port}/to-ok")
    assert response.body == b"hello"
    assert dns.lookups == ["provider.stub.test", "provider.stub.test"]


def test_redirect_loops_stop_at_the_redirect_limit(server_port: int) -> None:
    dns = StubDns({"provider.stub.test": [["127.0.0.1"]]})
    with client_with(dns, max_redirects=2) as client, pytest.raises(UpstreamError, match="redirected"):
        client.get(f"http://provider.stub.test:{server_port}/loop")
    assert len(_Handler.seen_hosts) == 3


def test_a_response_over_the_size_cap_is_refused(server_port: int) -> None:
    dns = StubDns({"provider.stub.test": [["127.0.0.1"]]})
    with client_with(dns, max_response_bytes=10_000) as client, pytest.raises(UpstreamError, match="larger"):
        client.get(f"http://provider.stub.test:{server_port}/big")


def test_a_server_that_never_answers_times_out() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP connection, never answers
    port = listener.getsockname()[1]
    dns = StubDns({"slow.stub.test": [["127.0.0.1"]]})
    try:
        with client_with(dns, read_timeout=0.3) as client, pytest.raises(UpstreamError, match="in time"):
            client.get(f"http://slow.stub.test:{port}/")
    finally:
        listener.close()


def test_the_real_policy_refuses_the_loopback_test_server(server_port: int) -> None:
    with EgressClient() as client, pytest.raises(UnsafeUrl, match="loopback"):
        client.get(f"http://127.0.0.1:{server_port}/ok")
    assert _Handler.seen_hosts == []

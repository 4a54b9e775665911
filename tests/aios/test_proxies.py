"""The client's address behind trusted proxies (aios.proxies): what per-address limits count."""

import ipaddress

import pytest
from django.urls import reverse

from aios import proxies
from aios.throttling import client_address

NETS = tuple(ipaddress.ip_network(n) for n in ("127.0.0.0/8", "10.0.0.0/8"))


@pytest.mark.parametrize(
    "remote,forwarded,client",
    [
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),  # one proxy
        ("127.0.0.1", "203.0.113.9, 10.0.0.5", "203.0.113.9"),  # edge, then load balancer
        ("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.5", "203.0.113.9"),  # a forged first hop
        ("127.0.0.1", "junk, 10.0.0.5", "10.0.0.5"),  # written by a client: not believed
        ("127.0.0.1", "10.0.0.7, 10.0.0.5", "10.0.0.7"),  # all ours: the farthest one
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
        ("198.51.100.4", "203.0.113.9", "198.51.100.4"),  # not a trusted proxy: ignored
        ("127.0.0.1", "", "127.0.0.1"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(remote, forwarded, client):
    assert proxies.client_address(remote, forwarded, NETS) == client


def test_without_trusted_proxies_the_peer_is_the_client(rf, settings):
    settings.TRUSTED_PROXIES = []
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    proxies.resolve(environ)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"


def _fail_login(client, username, **extra):
    return client.post(
        reverse("login"), {"username": username, "password": "wrong"}, **extra
    ).status_code


@pytest.mark.django_db
def test_behind_a_trusted_proxy_sign_in_throttles_count_each_client_apart(client, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    attacker = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    assert [_fail_login(client, f"u{n}", **attacker) for n in range(3)] == [200, 200, 429]
    # Another visitor behind the same proxy is not locked out by it.
    neighbour = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}
    assert _fail_login(client, "u9", **neighbour) == 200
    # Nor can the attacker get a fresh count by writing another address in front.
    forged = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.9"}
    assert _fail_login(client, "u8", **forged) == 429


def test_throttles_read_the_resolved_address(rf):
    request = rf.get("/", REMOTE_ADDR="203.0.113.9")
    assert client_address(request) == "203.0.113.9"

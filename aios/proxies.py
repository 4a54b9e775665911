"""The client's address behind trusted proxies (TRUSTED_PROXIES), set as REMOTE_ADDR.

Behind a load balancer or an edge cache every request comes from the proxy, so per-address
limits (sign-in throttles, DRF's anonymous rates, the hit path's budget) would count every
client as one. A proxy in TRUSTED_PROXIES appends the address it was talking to to
X-Forwarded-For; reading that header from the right, the first address that is not a trusted
proxy is the client. Whatever a client wrote into the header itself sits left of that and is
never believed. With TRUSTED_PROXIES empty (the default) nothing changes. The header stays, so
`/metrics` still treats a relayed request as non-local (aios.monitoring.access).
"""

import functools
import ipaddress

from django.conf import settings

PEER_KEY = "aios.proxy_peer"  # the environ key keeping the proxy's own address


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def _address(value: str):
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(remote_addr: str, forwarded_for: str, networks) -> str:
    """The client's address: `remote_addr` unless it is a trusted proxy, then the rightmost
    X-Forwarded-For hop that is not one (the leftmost trusted one when all are)."""
    peer = _address(remote_addr)
    if peer is None or not forwarded_for or not any(peer in net for net in networks):
        return remote_addr
    client = remote_addr
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            break  # not written by a proxy of ours: whoever sent it is the hop before
        client = str(address)
        if not any(address in net for net in networks):
            break
    return client


class ClientAddress:
    """WSGI middleware (outermost, aios/wsgi.py): REMOTE_ADDR becomes the client's address."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        resolve(environ)
        return self.application(environ, start_response)


def resolve(environ) -> None:
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if not networks:
        return
    remote = environ.get("REMOTE_ADDR", "")
    client = client_address(remote, environ.get("HTTP_X_FORWARDED_FOR", ""), networks)
    if client != remote:
        environ[PEER_KEY] = remote
        environ["REMOTE_ADDR"] = client

"""Who may read `/metrics` and the monitoring snapshot."""

import functools
import hmac
import ipaddress

from django.conf import settings
from rest_framework.authentication import TokenAuthentication


def bearer_token(request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def api_token_user(request):
    """The user behind the API's own `Authorization: Token <key>`, or None without one.

    Raises rest_framework's AuthenticationFailed for a wrong key or an inactive user.
    """
    found = TokenAuthentication().authenticate(request)
    return found[0] if found else None


def token_matches(given: str | None, expected: str) -> bool:
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]):
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def from_allowed_network(request) -> bool:
    # A request relayed by a proxy shows the proxy's address (often loopback): only a token
    # lets such a request in, so a public proxy in front never opens /metrics.
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in net for net in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


def may_scrape(request) -> bool:
    return from_allowed_network(request) or token_matches(
        bearer_token(request), settings.METRICS_TOKEN
    )

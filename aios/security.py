"""Response headers Django's SecurityMiddleware does not send, and the production guard.

Django 5.2 has no Content-Security-Policy support of its own; one header from settings is all
the site needs, so a few lines here replace a dependency.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

HEADER = "Content-Security-Policy"


def policy_for(path: str) -> str:
    """The policy for a request path: the longest matching prefix override, else the default."""
    overrides = getattr(settings, "CONTENT_SECURITY_POLICY_BY_PATH", {})
    for prefix in sorted(overrides, key=len, reverse=True):
        if path.startswith(prefix):
            return overrides[prefix]
    return settings.CONTENT_SECURITY_POLICY


class ContentSecurityPolicyMiddleware:
    """Send the policy on every response that does not already carry one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = policy_for(request.path)
        if policy and HEADER not in response:
            response[HEADER] = policy
        return response


def refuse_unsafe_production(*, debug: bool, secret_key: str) -> None:
    """Stop a production process before it serves anything with development settings."""
    if debug:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off when DJANGO_ENV=production.")
    if not secret_key or secret_key.startswith("django-insecure-") or len(secret_key) < 50:
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs DJANGO_SECRET_KEY set to a random value of 50 or more "
            "characters (the development key is refused)."
        )

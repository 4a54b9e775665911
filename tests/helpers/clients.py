"""Test clients signed in as a user: by API token (DRF's and Django's client) or by session."""

from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_of(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def signed_in(user) -> APIClient:
    """DRF's client, sending `user`'s API token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_of(user)}")
    return client


def token_client(user) -> Client:
    """Django's client (through the hit path), sending `user`'s API token."""
    return Client(HTTP_AUTHORIZATION=f"Token {token_of(user)}")


def session_client(user) -> Client:
    """Django's client, signed in with a session."""
    client = Client()
    client.force_login(user)
    return client

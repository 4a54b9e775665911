"""Password reset works end to end and never tells whether an account exists."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from tests.factories import UserFactory


def _ask(client, email):
    return client.post(reverse("password_reset"), {"email": email}, follow=True)


def _without_csrf(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


@pytest.mark.django_db
def test_the_answer_is_the_same_whether_or_not_an_account_has_the_address(client):
    UserFactory(username="dora", email="dora@example.com")
    known = _ask(client, "dora@example.com")
    sent = len(mail.outbox)
    unknown = _ask(client, "nobody@example.com")
    assert sent == 1 and len(mail.outbox) == 1  # only the real account got mail
    assert known.status_code == unknown.status_code == 200
    assert known.redirect_chain == unknown.redirect_chain == [(reverse("password_reset_done"), 302)]
    assert _without_csrf(known.content.decode()) == _without_csrf(unknown.content.decode())


@pytest.mark.django_db
def test_the_mailed_link_sets_a_new_password_once(client):
    user = UserFactory(username="erin", email="erin@example.com")
    _ask(client, "erin@example.com")
    link = re.search(r"https?://[^/\s]+(/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a new long passphrase 42", "new_password2": "a new long passphrase 42"},
        follow=True,
    )
    assert done.redirect_chain[-1][0] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password("a new long passphrase 42")
    again = client.get(link, follow=True)
    assert "This link no longer works" in again.content.decode()


@pytest.mark.django_db
def test_reset_pages_use_the_site_layout(client):
    for name in ("password_reset", "password_reset_done", "password_reset_complete"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        assert 'class="site-header"' in response.content.decode()
    broken = client.get(reverse("password_reset_confirm", args=["MQ", "set-password"]))
    assert "This link no longer works" in broken.content.decode()


@pytest.mark.django_db
def test_repeated_resets_stop_mailing_but_answer_the_same(client):
    from aios.throttling import RESETS_PER_WINDOW

    UserFactory(username="fay", email="fay@example.com")
    answers = [_ask(client, "fay@example.com") for _ in range(RESETS_PER_WINDOW + 3)]
    assert len(mail.outbox) == RESETS_PER_WINDOW  # no mail bombing of fay
    first, last = answers[0], answers[-1]
    assert last.redirect_chain == first.redirect_chain
    assert _without_csrf(last.content.decode()) == _without_csrf(first.content.decode())
    # Another person asking from another address still gets their mail.
    UserFactory(username="gus", email="gus@example.com")
    client.post(reverse("password_reset"), {"email": "gus@example.com"}, REMOTE_ADDR="10.7.7.7")
    assert len(mail.outbox) == RESETS_PER_WINDOW + 1

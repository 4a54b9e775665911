"""A small data set with an owner, another user and staff, made through the services."""

from types import SimpleNamespace

from rest_framework.authtoken.models import Token

from marketplace import services
from tests.factories import (
    AgentFactory,
    CategoryFactory,
    KnowledgeEntryFactory,
    PublisherFactory,
    UserFactory,
)

PASSWORD = "correct horse battery staple"


def seed(*, agents: int = 4) -> SimpleNamespace:
    category = CategoryFactory(name="Writing", slug="writing")
    publisher = PublisherFactory(name="Acme", slug="acme")
    listed = [
        AgentFactory(category=category, publisher=publisher, is_featured=n == 0)
        for n in range(agents)
    ]
    owner = UserFactory(username="owner")
    other = UserFactory(username="other")
    staff = UserFactory(username="staff", is_staff=True, is_superuser=True)
    for user in (owner, other):
        services.install_agent(user=user, agent=listed[0])
        services.create_review(user=user, agent=listed[0], rating=4, title="Good", body="Works.")
    entry = KnowledgeEntryFactory(user=owner, title="Owner-only knowledge note", agent=listed[0])
    other_entry = KnowledgeEntryFactory(user=other, title="Other-only knowledge note")
    return SimpleNamespace(
        category=category,
        agent=listed[0],
        agents=listed,
        owner=owner,
        other=other,
        staff=staff,
        entry=entry,
        other_entry=other_entry,
        tokens={u.username: Token.objects.create(user=u).key for u in (owner, other, staff)},
    )

import factory
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.text import slugify

from knowledge.models import KnowledgeEntry
from marketplace.models import Agent, Category, Installation, Publisher, Review


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.LazyAttribute(lambda o: slugify(o.name))
    position = factory.Sequence(int)


class PublisherFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Publisher

    name = factory.Sequence(lambda n: f"Publisher {n}")
    slug = factory.LazyAttribute(lambda o: slugify(o.name))
    verified = True


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"Agent {n}")
    slug = factory.LazyAttribute(lambda o: slugify(o.name))
    tagline = factory.LazyAttribute(lambda o: f"{o.name} does useful things")
    description = "A helpful agent."
    category = factory.SubFactory(CategoryFactory)
    publisher = factory.SubFactory(PublisherFactory)
    is_active = True


class InstallationFactory(factory.django.DjangoModelFactory):
    """A raw row: counters are not touched. Use marketplace.services to keep them exact."""

    class Meta:
        model = Installation

    user = factory.SubFactory(UserFactory)
    agent = factory.SubFactory(AgentFactory)


class ReviewFactory(factory.django.DjangoModelFactory):
    """A raw row: counters are not touched. Use marketplace.services to keep them exact."""

    class Meta:
        model = Review

    user = factory.SubFactory(UserFactory)
    agent = factory.SubFactory(AgentFactory)
    rating = 4
    title = "Solid"
    body = "Does what it says."


class KnowledgeEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KnowledgeEntry

    user = factory.SubFactory(UserFactory)
    content_type = KnowledgeEntry.ContentType.NOTE
    title = factory.Sequence(lambda n: f"Entry {n}")
    body = "Something worth remembering."


def bulk_agents(count: int, *, name: str = "Bulk", each=None, **fields) -> None:
    """`count` agents in one new category by one INSERT (factories would take seconds):
    `fields` for all of them, `each(i)` for the i-th one's own. ANALYZEd on PostgreSQL, so
    query plans see them."""
    category, publisher = CategoryFactory(), PublisherFactory()
    Agent.objects.bulk_create(
        Agent(
            name=f"{name} {i:05d}",
            slug=f"{slugify(name)}-{i}",
            category=category,
            publisher=publisher,
            **{"tagline": "x", **fields, **(each(i) if each else {})},
        )
        for i in range(count)
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Agent._meta.db_table}")

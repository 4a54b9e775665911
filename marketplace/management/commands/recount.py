"""`manage.py recount [--dry-run] [--agent SLUG ...]`: check agent counters against the rows.

Reports every agent whose stored counters (installs, rating histogram, count, average)
disagree with its installations and visible reviews, as `stored -> true`, then repairs those
agents only (unless --dry-run).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from marketplace.models import Agent
from marketplace.services import find_counter_drift, recount_agents


def _agents(n: int) -> str:
    return f"{n} agent" if n == 1 else f"{n} agents"


def _value(value) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


class Command(BaseCommand):
    help = (
        "Compare every agent's denormalised counters with its installations and reviews, "
        "report each difference as stored -> true, and repair them (not with --dry-run)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="report the drift, change nothing"
        )
        parser.add_argument(
            "--agent",
            dest="slugs",
            nargs="+",
            action="extend",
            metavar="SLUG",
            help="check only these agents (repeatable)",
        )

    def handle(self, *args, dry_run, slugs, **options):
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # A full check reads every installation and review: not a web request.
                    cursor.execute("SET LOCAL statement_timeout = 0")
            ids = self._agent_ids(slugs) if slugs else None
            checked = len(ids) if ids is not None else Agent.objects.count()
            drift = find_counter_drift(ids)
            for agent in drift:
                changes = ", ".join(
                    f"{field} {_value(value[0])} -> {_value(value[1])}"
                    for field, value in agent.items()
                    if field not in ("id", "slug")
                )
                self.stdout.write(f"{agent['slug']} (id {agent['id']}): {changes}")
            counters = sum(len(agent) - 2 for agent in drift)
            summary = f"Checked {_agents(checked)}: {len(drift)} drifted ({counters} counters)."
            if not drift:
                self.stdout.write(self.style.SUCCESS(f"{summary} Every counter matches its rows."))
                return
            if dry_run:
                self.stdout.write(f"{summary} Dry run: nothing changed.")
                return
            drifted = [agent["id"] for agent in drift]
            recount_agents(drifted)
            left = find_counter_drift(drifted)
        if left:  # only a bug in recount_agents gets here
            raise CommandError(f"{len(left)} agents still drift after the repair: {left}")
        self.stdout.write(self.style.SUCCESS(f"{summary} Repaired {_agents(len(drift))}."))

    @staticmethod
    def _agent_ids(slugs: list[str]) -> list[int]:
        found = dict(Agent.objects.filter(slug__in=slugs).values_list("slug", "pk"))
        unknown = sorted(set(slugs) - found.keys())
        if unknown:
            raise CommandError(f"No agent with the slug: {', '.join(unknown)}")
        return sorted(set(found.values()))

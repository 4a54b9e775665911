"""`manage.py recount [--dry-run] [--agent SLUG ...]`: check agent counters against the rows.

Reports every agent whose stored counters (installs, rating histogram, count, average)
disagree with its installations and visible reviews, as `stored -> true`, then repairs those
agents only (unless --dry-run). A full check (no --agent) then compares the per-category
rollup (CategoryStats, kept by database triggers) with a fresh aggregate of the agents and
rebuilds it if any row differs.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from marketplace.models import Agent, Category
from marketplace.services import (
    find_counter_drift,
    find_stats_drift,
    rebuild_category_stats,
    recount_agents,
)


def _agents(n: int) -> str:
    return f"{n} agent" if n == 1 else f"{n} agents"


def _value(value) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


class Command(BaseCommand):
    help = (
        "Compare every agent's denormalised counters with its installations and reviews, "
        "report each difference as stored -> true, and repair them (not with --dry-run). "
        "Without --agent, then check the per-category stats rollup the same way."
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
        self._check_agents(dry_run=dry_run, slugs=slugs)
        if not slugs:
            # After the agents: a repair above has already moved the rollup through the
            # triggers, so what is left to find is drift of the rollup itself.
            self._check_category_stats(dry_run=dry_run)

    def _check_agents(self, *, dry_run, slugs):
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

    def _check_category_stats(self, *, dry_run):
        with transaction.atomic():  # agent writes wait until the check (and rebuild) is done
            drift = find_stats_drift()
            slugs = dict(
                Category.objects.filter(pk__in={row["category_id"] for row in drift}).values_list(
                    "pk", "slug"
                )
            )
            for row in drift:
                changes = ", ".join(
                    f"{column} {value[0]} -> {value[1]}"
                    for column, value in row.items()
                    if column not in ("category_id", "shard")
                )
                category = slugs.get(row["category_id"], row["category_id"])
                self.stdout.write(f"category stats {category} (shard {row['shard']}): {changes}")
            rows = "1 row" if len(drift) == 1 else f"{len(drift)} rows"
            if not drift:
                self.stdout.write(self.style.SUCCESS("Category stats match the agents."))
                return
            if dry_run:
                self.stdout.write(f"Category stats: {rows} drifted. Dry run: nothing changed.")
                return
            written = rebuild_category_stats()
            left = find_stats_drift()
        if left:  # only a bug in rebuild_category_stats gets here
            raise CommandError(f"The category stats still drift after the rebuild: {left}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Category stats: {rows} drifted. Rebuilt them from the agents ({written} rows)."
            )
        )

    @staticmethod
    def _agent_ids(slugs: list[str]) -> list[int]:
        found = dict(Agent.objects.filter(slug__in=slugs).values_list("slug", "pk"))
        unknown = sorted(set(slugs) - found.keys())
        if unknown:
            raise CommandError(f"No agent with the slug: {', '.join(unknown)}")
        return sorted(set(found.values()))

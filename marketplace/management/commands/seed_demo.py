"""`manage.py seed_demo --scale small|bench|N`: a deterministic, realistic demo data set.

The same scale and seed always give the same rows. What the rows are lives in
`marketplace/demo/` (vocabulary, plan, rows, load); how they reach the database (COPY on
PostgreSQL, large `executemany` batches on SQLite) in `aios/bulk_load.py`.
"""

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from aios.bulk_load import BulkLoader
from marketplace import caching, icons
from marketplace.demo.load import delete_demo_data, load_demo, taken_usernames
from marketplace.demo.plan import ADMIN_PASSWORD, DEMO_PASSWORD, shape_for
from marketplace.models import Agent


class Command(BaseCommand):
    help = (
        "Load a deterministic demo data set. --scale small (~200 agents, a few seconds), "
        "bench (10,000 agents, 100,000 users, 1,000,000 installations, 250,000 reviews, "
        "500,000 knowledge entries) or N (N agents, everything else in bench proportion: "
        "10000 == bench). Refuses a database that has agents unless --replace or "
        f"--skip-if-present. Demo users (user000001...) and `demo` log in with {DEMO_PASSWORD!r}; "
        f"the staff account `admin` with {ADMIN_PASSWORD!r}."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", default="small", help="small, bench or a number of agents")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        present = parser.add_mutually_exclusive_group()
        present.add_argument(
            "--replace",
            action="store_true",
            help="delete every agent, installation, review, knowledge entry and demo user first",
        )
        present.add_argument(
            "--skip-if-present",
            action="store_true",
            help="do nothing (successfully) when the database already has agents",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args, scale, seed, replace, skip_if_present, no_progress, **options):
        shape = shape_for(scale)
        existing = Agent.objects.count()
        if existing and skip_if_present:
            self.stdout.write(f"The database already has {existing} agents: nothing to seed.")
            return
        if existing and not replace:
            raise CommandError(
                f"The database already has {existing} agents. Run with --replace to delete the "
                "marketplace and knowledge data and the demo users first, or with "
                "--skip-if-present to leave them."
            )
        loader = BulkLoader(progress=not no_progress and sys.stderr.isatty())
        started = time.monotonic()
        with loader.atomic():
            if replace:
                with loader.timed("(delete)"):
                    delete_demo_data()
            taken = taken_usernames()
            for name in sorted(taken):
                self.stderr.write(
                    f"A user named {name!r} already exists: not creating the demo one."
                )
            load_demo(shape, seed, loader=loader, taken=taken)
        self._after_seed()
        self._report(loader.timings, time.monotonic() - started, taken)

    def _after_seed(self) -> None:
        """Work that follows a committed seed: anything derived from the new agents, then
        retire every cached page and list (the rows changed without any signal firing)."""
        # WebP icons for the agents the first pages show; the others keep the initials badge
        # the templates draw, so a bench-scale seed stays fast (marketplace.icons).
        icons.generate_demo_icons()
        caching.forget_all()

    def _report(self, timings, elapsed: float, taken: set[str]) -> None:
        self.stdout.write(f"{'table':<15}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
        for label, rows, seconds in timings:
            rate = f"{rows / seconds:,.0f}" if rows and seconds else ""
            self.stdout.write(f"{label:<15}{rows:>12,}{seconds:>10.1f}{rate:>12}")
        self.stdout.write(f"{'total':<15}{'':>12}{elapsed:>10.1f}")
        self.stdout.write(
            self.style.SUCCESS(f"Seeded in {elapsed:.1f} s.")
            + f" Demo users user000001... log in with password {DEMO_PASSWORD!r}."
        )
        if "demo" not in taken:
            self.stdout.write(f"  demo  / {DEMO_PASSWORD}  (has installs, reviews, knowledge)")
        if "admin" not in taken:
            self.stdout.write(f"  admin / {ADMIN_PASSWORD}  (staff, superuser)")

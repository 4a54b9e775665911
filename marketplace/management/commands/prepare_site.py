"""`make run`'s set-up in one process: migrate, the demo data, static files.

The same steps as `make migrate seed static`, minus two interpreter and Django start-ups
(about 2 s each on this project's 2-core machines), so a second `make run` serves within 10 s.
Each step says what it does before it starts.
"""

import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, load the demo data unless there is some, and collect static files if stale."

    def add_arguments(self, parser):
        parser.add_argument("--scale", default="small", help="seed_demo's --scale")

    def handle(self, *args, scale, **options):
        database = settings.DATABASES["default"]
        steps = [
            (
                f"Migrating the database ({database['ENGINE'].rsplit('.', 1)[-1]} "
                f"{database['NAME']})",
                lambda: call_command("migrate", interactive=False, verbosity=1),
            ),
            (
                f"Demo data (--scale {scale}; skipped when the database has agents)",
                lambda: call_command("seed_demo", scale=scale, skip_if_present=True),
            ),
            ("Static files", lambda: call_command("collectstatic_if_stale", interactive=False)),
        ]
        for title, step in steps:
            started = time.monotonic()
            self.stdout.write(f"==> {title}")
            step()
            self.stdout.write(f"    ({time.monotonic() - started:.1f} s)")

"""`manage.py api_table [--write]`: the README's table of API routes (aios/api_table.py)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from aios import api_table


class Command(BaseCommand):
    help = "Print the API route table from the URL conf and OpenAPI schema, or --write it."

    def add_arguments(self, parser):
        parser.add_argument("--write", action="store_true", help="update README.md in place")

    def handle(self, *args, write, **options):
        if not write:
            self.stdout.write(api_table.markdown(), ending="")
            return
        readme = Path(settings.BASE_DIR) / "README.md"
        readme.write_text(api_table.with_table(readme.read_text()))
        self.stdout.write(f"{readme.name}: API table updated")

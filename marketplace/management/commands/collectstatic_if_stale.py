"""`make static`: collectstatic when its sources changed since the last complete run, else nothing.

A first collectstatic copies, hashes and compresses about a thousand files (the admin's and
Swagger UI's too), so it says how far it got every few seconds instead of keeping quiet.
"""

import time

from django.contrib.staticfiles.management.commands import collectstatic

from aios.storage import collected_is_current, record_fingerprint, source_fingerprint

PROGRESS_SECONDS = 3


class Command(collectstatic.Command):
    help = "collectstatic, skipped when the collected files match the current sources."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--force", action="store_true", help="Collect even when the sources look unchanged."
        )

    def handle(self, **options):
        started = time.monotonic()
        fingerprint = source_fingerprint()
        if not options["force"] and collected_is_current(fingerprint):
            self.stdout.write(
                f"Static files: up to date in {self.storage.location}, collectstatic skipped "
                f"({time.monotonic() - started:.1f} s to check)"
            )
            return
        self.stdout.write(
            "Static files: collecting, hashing and compressing into "
            f"{self.storage.location} (a first run takes a minute or so)"
        )
        self._counts = {"Copying": 0, "Skipping": 0, "Post-processed": 0}
        self._last_report = time.monotonic()
        super().handle(**options)
        record_fingerprint(fingerprint)
        self.stdout.write(f"Static files: done in {time.monotonic() - started:.0f} s")

    def log(self, msg, level=2):
        if level < 2 or self.verbosity >= 2:
            return super().log(msg, level)
        # The per-file lines are verbosity 2: count them and report at most every few seconds.
        verb = msg.split(" ", 1)[0]
        if verb in self._counts:
            self._counts[verb] += 1
        if time.monotonic() - self._last_report >= PROGRESS_SECONDS:
            self._last_report = time.monotonic()
            copied, unchanged, processed = self._counts.values()
            self.stdout.write(
                f"  ... {copied} copied, {unchanged} unchanged, {processed} hashed or compressed"
            )

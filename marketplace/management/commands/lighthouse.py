"""`manage.py lighthouse`: Lighthouse's default mobile run on the home, browse and agent pages.

Serves the site with gunicorn on a local port (the settings of `make run`: DEBUG off,
collectstatic output through whitenoise), runs Lighthouse `--runs` times per page, prints the
median performance score, LCP, FCP, TBT, CLS and transferred bytes, writes them to
var/lighthouse/summary.json, and fails when a median misses the targets (score >= 0.95,
LCP < 2.0 s, under 100 KB transferred). `make lighthouse` installs Lighthouse 12 with npm
into ./node_modules first.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from marketplace.models import Agent

CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-quic "
    "--disable-background-networking --disable-component-update --disable-sync --no-first-run"
)
AUDITS = {
    "lcp_ms": "largest-contentful-paint",
    "fcp_ms": "first-contentful-paint",
    "tbt_ms": "total-blocking-time",
    "cls": "cumulative-layout-shift",
    "bytes": "total-byte-weight",
}
TARGETS = {"score": 0.95, "lcp_ms": 2000, "bytes": 100 * 1024}


def _wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local server
                return
        except OSError:
            time.sleep(0.3)
    raise CommandError(f"the server did not answer {url} within {timeout:.0f} s")


class Command(BaseCommand):
    help = "Lighthouse mobile performance of the home, browse and agent pages (medians)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8031")
        parser.add_argument("--runs", type=int, default=3)
        parser.add_argument("--lighthouse", default="node_modules/.bin/lighthouse")
        parser.add_argument("--chrome", default=os.environ.get("CHROME_PATH", "/usr/bin/chromium"))
        parser.add_argument("--no-check", action="store_true", help="report only, never fail")

    def handle(self, *args, bind, runs, lighthouse, chrome, no_check, **options):
        if not Path(lighthouse).exists():
            raise CommandError(f"{lighthouse} is missing: npm install lighthouse@12")
        agent = Agent.objects.listed().ordered("-installs").values_list("slug", flat=True).first()
        if agent is None:
            raise CommandError("no listed agent: seed the demo data first (make seed)")
        pages = {"home": "/", "browse": "/agents/", "agent": f"/agents/{agent}/"}
        base = f"http://{bind}"
        env = {**os.environ, "BIND": bind, "API_WORKERS": "2", "DJANGO_DEBUG": "0"}
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
        server = subprocess.Popen(  # noqa: S603 - fixed arguments
            [gunicorn, "-c", str(Path(settings.BASE_DIR) / "aios" / "gunicorn.conf.py")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(base + "/")
            results = {
                name: self._measure(base + path, runs, lighthouse, chrome)
                for name, path in pages.items()
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
        self._report(results, pages)
        out = Path(settings.VAR_DIR) / "lighthouse"
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(
            json.dumps({"pages": pages, "medians": results}, indent=2)
        )
        failures = [
            f"{name}: {key} {value[key]} vs target {target}"
            for name, value in results.items()
            for key, target in TARGETS.items()
            if (value[key] < target if key == "score" else value[key] >= target)
        ]
        if failures and not no_check:
            raise CommandError("below target: " + "; ".join(failures))

    def _measure(self, url: str, runs: int, lighthouse: str, chrome: str) -> dict:
        samples = []
        env = {**os.environ, "CHROME_PATH": chrome}
        for _ in range(runs):
            with tempfile.NamedTemporaryFile(suffix=".json") as report:
                subprocess.run(  # noqa: S603 - fixed arguments
                    [
                        lighthouse,
                        url,
                        "--quiet",
                        "--only-categories=performance",
                        "--output=json",
                        f"--output-path={report.name}",
                        f"--chrome-flags={CHROME_FLAGS}",
                    ],
                    env=env,
                    check=True,
                )
                data = json.loads(Path(report.name).read_text())
            sample = {"score": data["categories"]["performance"]["score"]}
            for key, audit in AUDITS.items():
                sample[key] = data["audits"][audit]["numericValue"]
            samples.append(sample)
        return {key: statistics.median(s[key] for s in samples) for key in samples[0]}

    def _report(self, results: dict, pages: dict) -> None:
        self.stdout.write(
            f"{'page':<8}{'path':<34}{'score':>7}{'LCP ms':>9}{'FCP ms':>9}{'TBT ms':>9}"
            f"{'CLS':>7}{'KB':>8}"
        )
        for name, m in results.items():
            self.stdout.write(
                f"{name:<8}{pages[name]:<34}{m['score']:>7.2f}{m['lcp_ms']:>9.0f}"
                f"{m['fcp_ms']:>9.0f}{m['tbt_ms']:>9.0f}{m['cls']:>7.3f}{m['bytes'] / 1024:>8.1f}"
            )

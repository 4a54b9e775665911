"""Section "edge": the load mix through Varnish (deploy/varnish/default.vcl) beside the app alone.

One gunicorn purging one varnishd (EDGE_PURGE_URLS), the same mix as section "load" run
alternately through the edge and straight at the app, each after a warm-up: req/s, latency,
errors, the edge's hit ratio (varnishstat, and the X-Cache header of anonymous reads), the
purges the writes sent and how long the edge took to confirm them (the app's metrics).

`Varnish` starts a varnishd of its own (foreground, a free port, its own working directory)
with the committed VCL and a generated backend.vcl; the tests use it too.
"""

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .config import ROOT_DIR

VCL = ROOT_DIR / "deploy" / "varnish" / "default.vcl"
VARNISHD = shutil.which("varnishd") or "/usr/sbin/varnishd"
VARNISHSTAT = shutil.which("varnishstat") or "/usr/bin/varnishstat"


def varnish_missing() -> str | None:
    """Why varnishd cannot run here, or None."""
    if not Path(VARNISHD).exists():
        return "varnishd is not installed (apt-get install varnish varnish-modules)"
    with tempfile.TemporaryDirectory() as directory:
        _write_backend(Path(directory), 9, ("127.0.0.1",))
        probe = subprocess.run(  # noqa: S603
            [VARNISHD, "-j", "none", "-C", "-f", str(VCL), "-p", f"vcl_path={directory}"],
            capture_output=True,
            text=True,
            check=False,
        )
    if probe.returncode:
        # The xkey vmod comes with varnish-modules; without it the VCL does not compile.
        return f"varnishd cannot compile deploy/varnish/default.vcl: {probe.stderr[-300:]}"
    return None


def _write_backend(directory: Path, port: int, purgers) -> None:
    """The backend.vcl default.vcl includes: the app on `port`, the purgers ACL."""
    acl = "\n".join(f'    "{address}";' for address in purgers)
    (directory / "backend.vcl").write_text(
        f'backend app {{ .host = "127.0.0.1"; .port = "{port}"; }}\n'
        f"acl purgers {{\n{acl}\n}}\n"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Varnish:
    """`with Varnish(backend_port, directory=...) as edge:` serves on `edge.port` until the
    block ends. `purgers` are the addresses allowed to purge."""

    def __init__(self, backend_port: int, *, directory: Path, purgers=("127.0.0.1",), mb=64):
        self.backend_port = backend_port
        self.directory = Path(directory).resolve()
        self.purgers = purgers
        self.mb = mb
        self.port = _free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Varnish":
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_backend(self.directory, self.backend_port, self.purgers)
        self.log_path = self.directory / "varnishd.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            # -j none: no separate unprivileged user, which could not read a private temp dir.
            [VARNISHD, "-j", "none", "-F", "-a", f"127.0.0.1:{self.port}", "-f", str(VCL),
             "-p", f"vcl_path={self.directory}", "-n", str(self.directory / "work"),
             "-s", f"malloc,{self.mb}m", "-T", "none"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"varnishd exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("varnishd did not listen within 30 s")

    def __exit__(self, *exc) -> bool:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        return False

    def stats(self) -> dict[str, int]:
        """varnishstat's counters by name ("MAIN.cache_hit": 12, ...)."""
        done = subprocess.run(  # noqa: S603
            [VARNISHSTAT, "-n", str(self.directory / "work"), "-1", "-j"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        raw = json.loads(done.stdout)
        counters = raw.get("counters", raw)
        return {
            name: int(value["value"])
            for name, value in counters.items()
            if isinstance(value, dict) and "value" in value
        }

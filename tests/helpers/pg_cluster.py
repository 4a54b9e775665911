"""A PostgreSQL primary and a streaming replica of the tests' own, from Debian's binaries.

Both live in a temporary directory on free ports and log every statement with its
application name, so a test can tell which server ran a request's SQL. The machine's own
cluster is never touched. Run as root, the binaries run as the `postgres` user (initdb refuses
root), in a directory it owns.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

BIN = Path(os.environ.get("PG_BIN_DIR", "/usr/lib/postgresql/15/bin"))
TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")


def missing_tools() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for tool in TOOLS:
        if not (BIN / tool).exists():
            return f"{BIN / tool} is missing (apt-get install postgresql-15)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root needs runuser to start PostgreSQL as the postgres user"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(command: list) -> list:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list, *, timeout: float = 60) -> None:
    command = [str(part) for part in command]
    result = subprocess.run(_as_owner(command), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")


@dataclass
class Server:
    name: str
    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.directory / self.name

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        command = [BIN / "pg_ctl", "-D", self.data, "-l", self.log_path, "-w", "-t", "30", "start"]
        _run(command)

    def stop(self, mode: str = "fast") -> None:
        """`immediate`: the server dies as if killed (no checkpoint, connections cut)."""
        if (self.data / "postmaster.pid").exists():
            _run([BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"])

    def connect(self, database: str = "postgres", **kwargs) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=5,
            application_name="aios-test-observer",
            **kwargs,
        )

    def query(self, sql: str, params=(), *, database: str = "postgres"):
        """The rows of a SELECT; None for any other statement."""
        with self.connect(database) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else None

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def statements_since(self, offset: int, application: str) -> list[str]:
        """The statements `application` ran since the log was `offset` bytes long."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
        marker = f" {application} LOG:  statement: "
        return [line.split(marker, 1)[1] for line in text.splitlines() if marker in line]


class ReplicatedCluster:
    """A primary with one streaming replica (pg_basebackup -R), both started."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.primary = Server("primary", directory)
        self.replica = Server("replica", directory)

    def start(self) -> "ReplicatedCluster":
        if os.geteuid() == 0:
            shutil.chown(self.directory, user="postgres")
        _run(
            [BIN / "initdb", "-D", self.primary.data, "-U", "postgres", "--auth=trust", "-N"],
            timeout=120,
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": self.primary.port,
            "unix_socket_directories": f"'{self.directory}'",
            "wal_level": "replica",
            "max_wal_senders": 4,
            "max_connections": 200,
            "shared_buffers": "'32MB'",
            # Throwaway data: durability would only slow the tests down.
            "fsync": "off",
            "full_page_writes": "off",
            "log_statement": "'all'",
            "log_line_prefix": "'%m [%p] %a '",
        }
        with (self.primary.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        with (self.primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self.primary.start()
        _run(
            [BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", self.primary.port, "-U", "postgres",
             "-D", self.replica.data, "-R", "-X", "stream", "--checkpoint=fast"],
            timeout=120,
        )  # fmt: skip
        with (self.replica.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.replica.port}\n")  # the last setting wins
        self.replica.start()
        return self

    def stop(self) -> None:
        for server in (self.replica, self.primary):
            with contextlib.suppress(Exception):  # the other one must still stop
                server.stop("immediate")

    # -- replication --

    def pause_replay(self) -> None:
        self.replica.query("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.replica.query("SELECT pg_wal_replay_resume()")

    def primary_lsn(self) -> int:
        return int(self.primary.query("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")[0][0])

    def replay_lsn(self) -> int:
        return int(self.replica.query("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn")[0][0])

    def wait_for_replay(self, timeout: float = 20) -> None:
        """Until the replica has replayed everything the primary had written when called."""
        target = self.primary_lsn()
        deadline = time.monotonic() + timeout
        while self.replay_lsn() < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica did not replay to {target} in {timeout} s")
            time.sleep(0.05)

    def ensure_replica_running(self) -> None:
        """The replica up, replaying, and caught up (after a test stopped or paused it)."""
        if not (self.replica.data / "postmaster.pid").exists():
            self.replica.start()
        if self.replica.query("SELECT pg_is_wal_replay_paused()")[0][0]:
            self.resume_replay()
        self.wait_for_replay()

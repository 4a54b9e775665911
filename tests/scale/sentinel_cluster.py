"""A Redis master, its replica and three sentinels of a test's own.

Each on a free port, with its files (and the sentinels' configs, which Sentinel rewrites) in
the test's temp directory. Every wait has a deadline; `stop()` kills whatever is left, paused
processes included.
"""

import contextlib
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.faults.conftest import free_port, wait_for

DOWN_AFTER_MS = 1000


@dataclass
class Node:
    name: str
    port: int
    process: subprocess.Popen

    def alive(self) -> bool:
        return self.process.poll() is None


class SentinelCluster:
    def __init__(self, directory: Path, *, password: str, sentinel_password: str):
        self.directory = directory
        self.service = f"aios-{secrets.token_hex(4)}"  # django-redis keeps pools by name
        self.password = password
        self.sentinel_password = sentinel_password
        self.servers: dict[int, Node] = {}
        self.sentinels: list[Node] = []

    # -- processes --

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 (the process keeps it)
        try:
            return subprocess.Popen(
                ["redis-server", *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
            )
        finally:
            log.close()

    def _server(self, name: str, *extra: str) -> Node:
        port = free_port()
        args = [
            "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.directory), "--dbfilename", f"{name}.rdb",
            "--requirepass", self.password, "--masterauth", self.password, *extra,
        ]  # fmt: skip
        node = Node(name, port, self._spawn(name, args))
        self.servers[port] = node
        wait_for(lambda: self._answers(port), timeout=10, what=f"{name} on {port}")
        return node

    def _sentinel(self, index: int, master_port: int) -> Node:
        port = free_port()
        config = self.directory / f"sentinel-{index}.conf"
        config.write_text(
            f"port {port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.directory}\n"
            f"requirepass {self.sentinel_password}\n"
            f"sentinel sentinel-pass {self.sentinel_password}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {master_port} 2\n"
            f"sentinel auth-pass {self.service} {self.password}\n"
            f"sentinel down-after-milliseconds {self.service} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {self.service} 10000\n"
        )
        node = Node(
            f"sentinel-{index}", port, self._spawn(f"sentinel-{index}", [str(config), "--sentinel"])
        )
        self.sentinels.append(node)
        return node

    def start(self) -> "SentinelCluster":
        master = self._server("master")
        replica = self._server("replica", "--replicaof", "127.0.0.1", str(master.port))
        for index in range(3):
            self._sentinel(index, master.port)
        wait_for(lambda: self._replicating(replica.port), timeout=15, what="replication")
        wait_for(self._sentinels_ready, timeout=20, what="sentinels to see each other")
        return self

    def stop(self) -> None:
        for node in [*self.sentinels, *self.servers.values()]:
            if node.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.process.pid, signal.SIGCONT)
                node.process.kill()
                node.process.wait(timeout=10)

    # -- looking --

    def client(self, port: int, **options) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=port, password=self.password, socket_timeout=2, **options
        )

    def sentinel_client(self, node: Node) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=node.port, password=self.sentinel_password, socket_timeout=2
        )

    def _answers(self, port: int) -> bool:
        try:
            return self.client(port).ping()
        except redis.RedisError:
            return False

    def _replicating(self, port: int) -> bool:
        try:
            return self.client(port).info("replication").get("master_link_status") == "up"
        except redis.RedisError:
            return False

    def _sentinels_ready(self) -> bool:
        for node in self.sentinels:
            try:
                state = self.sentinel_client(node).sentinel_master(self.service)
            except redis.RedisError:
                return False
            if state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                return False
        return True

    def master_port(self) -> int | None:
        """The master's port as a sentinel that answers names it."""
        for node in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                found = self.sentinel_client(node).sentinel_get_master_addr_by_name(self.service)
                if found:
                    return int(found[1])
        return None

    def master(self) -> Node:
        return self.servers[self.master_port()]

    def replica(self) -> Node:
        master = self.master_port()
        return next(node for port, node in self.servers.items() if port != master)

    # -- settings --

    def settings(self) -> dict:
        """The environment's settings for this cluster (README, "Settings")."""
        return {
            "REDIS_URL": "",
            "REDIS_SENTINELS": [f"127.0.0.1:{node.port}" for node in self.sentinels],
            "REDIS_SENTINEL_MASTER": self.service,
            "REDIS_SENTINEL_DB": 0,
            "REDIS_PASSWORD": self.password,
            "REDIS_SENTINEL_PASSWORD": self.sentinel_password,
        }

    # -- failing --

    def kill(self, node: Node) -> float:
        """SIGKILL: the server loses whatever it had not sent its replica. Returns when."""
        node.process.kill()
        node.process.wait(timeout=10)
        return time.monotonic()

    def pause(self, node: Node) -> None:
        node.process.send_signal(signal.SIGSTOP)

    def resume(self, node: Node) -> None:
        node.process.send_signal(signal.SIGCONT)

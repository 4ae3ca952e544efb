"""The servers of bench/many_hosts.py: a private redis-server, a PostgreSQL database of the
run's own, and what they did during a run (CPU of the database's backends and of redis-server,
transactions, rows written, Redis commands), with a sampler of the pool's lease set in Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from runner.state.pg_database import describe_url

HOLDERS = "runner:local:pool:high-performance:holders"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench: redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                sys.exit("bench: redis-server did not start")
            time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def create_database(base: str) -> str:
    """A database of this run's own on the server at `base`; its URL."""
    import psycopg

    name = f"runner_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        sys.exit(f"bench: cannot create a database on {describe_url(base)}: {exc}")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def drop_database(base: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """What the servers did during a run: CPU of the database's backends (and the WAL writer)
    and of redis-server, database transactions, Redis commands (less the sampler's)."""

    def __init__(self, base: str, database: str, redis_url: str, redis_pid: int) -> None:
        import redis

        self.base = base
        self.database = urlsplit(database).path.lstrip("/")
        self.redis = redis.Redis.from_url(redis_url)
        self.redis_pid = redis_pid
        self.pg_cpu = self.redis_cpu = 0.0
        self.transactions = self.rows = self.commands = 0
        self._cpu: dict[int, float] = {}

    def _backends(self) -> list[int]:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s OR backend_type = 'walwriter'",
                (self.database,),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def _xacts(self) -> tuple[int, int]:
        """(transactions, rows written) of the database so far."""
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted "
                "FROM pg_stat_database WHERE datname = %s",
                (self.database,),
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def _commands(self) -> int:
        return int(self.redis.info("stats")["total_commands_processed"])

    def _by_command(self) -> dict[str, int]:
        stats = self.redis.info("commandstats")
        return {name[len("cmdstat_") :]: int(v["calls"]) for name, v in stats.items()}

    def start(self) -> None:
        self._cpu = {pid: cpu_seconds(pid) for pid in self._backends()}
        self._redis_cpu = cpu_seconds(self.redis_pid)
        self._commands_at = self._commands()
        self._by_command_at = self._by_command()
        self._xacts_at = self._xacts()

    def stop(self, sampled: int) -> None:
        self.pg_cpu = sum(cpu_seconds(pid) - self._cpu.get(pid, 0.0) for pid in self._backends())
        self.redis_cpu = cpu_seconds(self.redis_pid) - self._redis_cpu
        self.commands = self._commands() - self._commands_at - sampled - 1
        now = self._by_command()
        self.by_command = {
            k: v - self._by_command_at.get(k, 0) - (sampled if k == "zcard" else 0)
            for k, v in now.items()
        }
        self.by_command = {k: v for k, v in self.by_command.items() if v > 0}

    def count_transactions(self) -> None:
        time.sleep(0.2)
        transactions, rows = self._xacts()
        self.transactions = transactions - self._xacts_at[0]
        self.rows = rows - self._xacts_at[1]


class Sampler:
    """Reads the pool's lease set in Redis every few ms, in a thread: the most seen."""

    def __init__(self, url: str) -> None:
        import threading

        import redis

        self.client = redis.Redis.from_url(url)
        self.top = 0
        self.samples = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while self.running:
            self.top = max(self.top, int(self.client.zcard(HOLDERS)))
            self.samples += 1
            time.sleep(0.003)

    def stop(self) -> int:
        self.running = False
        self.thread.join(5)
        self.client.close()
        return self.top

"""A throwaway PostgreSQL server for tests (initdb + postgres on 127.0.0.1, random port).

``PostgresServer.start()`` finds the server binaries (``pg_config --bindir`` or
``/usr/lib/postgresql/*/bin``), makes a temp dir, runs ``initdb`` and ``postgres`` (as the ``postgres``
user when we are root: they refuse to run as root), waits until it accepts connections, and
``stop()`` shuts down exactly the process it started and removes the directory.
``create_database()`` returns an SQLAlchemy URL (psycopg 3) to a fresh, empty database.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def find_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.insert(0, out.stdout.strip())
    for c in candidates:
        if (Path(c) / "initdb").exists() and (Path(c) / "postgres").exists():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="tvote-pg-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_root else list(args)

    def start(self) -> PostgresServer:
        data, sock = self.dir / "data", self.dir / "sock"
        sock.mkdir()
        if self._as_root:
            shutil.chown(self.dir, "postgres")
            shutil.chown(sock, "postgres")
            os.chmod(self.dir, 0o700)
        subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )
        log = open(self.dir / "server.log", "wb")
        # fsync=off: fsync only protects against an operating-system crash or power loss, which no test can
        # cause (the crash tests SIGKILL processes; committed data in the page cache survives that). With
        # fsync=on every CREATE DATABASE and the shutdown checkpoint cost seconds per test session.
        # timezone=Asia/Tokyo: the deployment's zone, and not UTC, so a timestamp stored or read in the
        # session's local time instead of UTC shows up in the tests (the service keeps UTC everywhere).
        self.proc = subprocess.Popen(
            self._cmd(
                str(self.bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(sock),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
                "-c",
                "timezone=Asia/Tokyo",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        import psycopg

        while True:
            try:
                psycopg.connect(
                    f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", connect_timeout=2
                ).close()
                return self
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("PostgreSQL did not start") from None
                time.sleep(0.1)

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # our child is runuser (or postgres itself); signal its process group, which we created
            os.killpg(self.proc.pid, signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

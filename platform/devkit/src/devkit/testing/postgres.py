"""A real PostgreSQL server for tests: initdb in a temporary directory, loopback port only."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from devkit.localstack.ports import free_port

SERVER_OPTIONS = (
    # Durability is not what these tests measure; speed is welcome.
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c max_connections=200"
)


def postgres_bin_dir() -> Path:
    """Where initdb and pg_ctl live (Debian keeps them out of PATH)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise FileNotFoundError(
            "PostgreSQL server binaries not found: run `make setup` (it installs Debian's "
            "postgresql package)"
        )
    return Path(candidates[-1]).parent


class PostgresServer:
    """One PostgreSQL cluster of a test session; each test gets a database of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bin_dir = postgres_bin_dir()
        # PostgreSQL refuses to run as root; then it runs as the postgres user, which must be
        # able to reach its directory, so it lives outside pytest's private temp tree.
        self._run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.base_dir = Path(tempfile.mkdtemp(prefix="flotilla-pg-"))
        self.data_dir = self.base_dir / "data"
        if self._run_as:
            account = pwd.getpwnam("postgres")
            self.base_dir.chmod(0o755)
            os.chown(self.base_dir, account.pw_uid, account.pw_gid)

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._run_as, *command], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        """initdb (trust auth on loopback) and start the server; waits until it accepts."""
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir),
            "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = f"{SERVER_OPTIONS} -p {self.port} -k {self.base_dir}"
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
            "-l", str(self.base_dir / "server.log"), "-w", "start",
        )  # fmt: skip

    def restart(self) -> None:
        """Restart the server (same data, same port); its clients' connections are closed."""
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast",
            "-l", str(self.base_dir / "server.log"), "-w", "restart",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server this object started and remove its files."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def create_database(self) -> str:
        """A new, empty database; returns its SQLAlchemy URL (asyncpg driver)."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._run(
            str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}",
        )  # fmt: skip
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

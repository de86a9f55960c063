"""The PostgreSQL image's entrypoint (platform/images/postgres/entrypoint.sh), run for real on
the host with Debian's PostgreSQL 15 binaries as a non-root user, on loopback and a free port:
initdb once, a role and database per service with scram-sha-256, idempotent restarts, fast
shutdown on SIGTERM."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devkit.localstack.ports import free_port
from devkit.testing.postgres import postgres_bin_dir
from kit import layout

ENTRYPOINT = Path(__file__).parents[2] / "platform" / "images" / "postgres" / "entrypoint.sh"
# One database per service that has one (its snake name, a PostgreSQL identifier).
DATABASES = tuple(name.replace("-", "_") for name in layout.services_with_database())


def new_password() -> str:
    """A password like the secrets script's: letters and digits, starting with a letter."""
    return "p" + secrets.token_hex(16)


@dataclass
class Server:
    """One run of the entrypoint in ``base`` (PGDATA, socket and password files under it)."""

    base: Path
    port: int
    account: pwd.struct_passwd | None
    databases: tuple[str, ...] = DATABASES
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def password_dir(self) -> Path:
        return self.base / "passwords"

    def write_password(self, role: str, password: str) -> None:
        path = self.password_dir / role
        path.write_text(password)
        path.chmod(0o400)
        if self.account:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def environment(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "PGDATA": str(self.base / "data" / "pgdata"),
            "PGPORT": str(self.port),
            "POSTGRES_LISTEN_ADDRESSES": "127.0.0.1",
            "POSTGRES_SOCKET_DIR": str(self.base / "socket"),
            "POSTGRES_DATABASES": " ".join(self.databases),
            "POSTGRES_PASSWORD_DIR": str(self.password_dir),
            "POSTGRES_BIN": str(postgres_bin_dir()),
        }

    def start(self) -> None:
        """Start the entrypoint (as the postgres user when the tests run as root)."""
        uid = self.account.pw_uid if self.account else None
        gid = self.account.pw_gid if self.account else None
        self.process = subprocess.Popen(
            ["/bin/sh", str(ENTRYPOINT), "-c", "fsync=off"],
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            user=uid,
            group=gid,
            extra_groups=[] if self.account else None,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until the server accepts TCP connections (after provisioning)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"the entrypoint exited:\n{self.finish()}")
            ready = subprocess.run(
                [str(postgres_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        pytest.fail(f"the server never became ready:\n{self.stop()}")

    def psql(
        self, role: str, password: str, sql: str, database: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sql`` as ``role`` over TCP with scram-sha-256 (no .pgpass, no trust)."""
        return subprocess.run(
            [
                str(postgres_bin_dir() / "psql"),
                "--no-psqlrc",
                "-X",
                "-At",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                role,
                "-d",
                database or role,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            env={"PATH": "/usr/bin:/bin", "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"},
            capture_output=True,
            text=True,
            check=False,
        )

    @property
    def returncode(self) -> int | None:
        """The entrypoint's exit status; None while it runs."""
        return None if self.process is None else self.process.returncode

    def finish(self, timeout: float = 30) -> str:
        """Wait for the entrypoint to exit; return its output."""
        assert self.process is not None
        out, _ = self.process.communicate(timeout=timeout)
        self.output.append(out)
        return out

    def stop(self) -> str:
        """SIGTERM, as the kubelet sends it; return the output."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.finish()


@pytest.fixture
def base() -> Iterator[tuple[Path, pwd.struct_passwd | None]]:
    """A directory the server's user owns; the tests run it as "postgres" when they are root."""
    postgres_bin_dir()  # fails with what to install when the binaries are missing
    account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="flotilla-pgimage-"))
    for sub in ("", "passwords", "socket", "data"):
        (directory / sub).mkdir(exist_ok=True)
        if account:
            os.chown(directory / sub, account.pw_uid, account.pw_gid)
    directory.chmod(0o755)
    yield directory, account
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def server(base: tuple[Path, pwd.struct_passwd | None]) -> Iterator[tuple[Server, dict[str, str]]]:
    directory, account = base
    srv = Server(directory, free_port(), account)
    passwords = {name: new_password() for name in DATABASES}
    for name, password in passwords.items():
        srv.write_password(name, password)
    yield srv, passwords
    if srv.process is not None and srv.process.poll() is None:
        srv.process.kill()
        srv.process.wait()


def test_first_start_creates_a_role_and_database_per_service(
    server: tuple[Server, dict[str, str]],
) -> None:
    srv, passwords = server
    srv.start()
    srv.wait_ready()
    for name, password in passwords.items():
        result = srv.psql(name, password, "SELECT current_user, current_database()")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{name}|{name}"
        owner = srv.psql(name, password, "CREATE TABLE t (id int); SELECT count(*) FROM t")
        assert owner.returncode == 0, owner.stderr
    wrong = srv.psql("order", "p" + "0" * 32, "SELECT 1")
    assert "password authentication failed" in wrong.stderr
    other = srv.psql("order", passwords["order"], "SELECT 1", database="payment")
    assert "permission denied for database" in other.stderr, "a role reaches only its own db"
    superuser = srv.psql("postgres", passwords["order"], "SELECT 1", database="postgres")
    assert superuser.returncode != 0, "the superuser is refused over TCP"
    methods = srv.psql(
        "order", passwords["order"], "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid"
    )
    assert "permission denied" in methods.stderr  # not a superuser either
    output = srv.stop()
    assert "initialising a new cluster" in output
    assert srv.returncode == 0, output
    assert not any(p in output for p in passwords.values()), "no password in the log"


def test_sigterm_is_a_fast_shutdown_even_with_clients_connected(
    server: tuple[Server, dict[str, str]],
) -> None:
    srv, passwords = server
    srv.start()
    srv.wait_ready()
    client = subprocess.Popen(
        [
            str(postgres_bin_dir() / "psql"),
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            str(srv.port),
            "-U",
            "auth",
            "-d",
            "auth",
            "-c",
            "SELECT pg_sleep(120)",
        ],
        env={"PATH": "/usr/bin:/bin", "PGPASSWORD": passwords["auth"]},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)
        started = time.monotonic()
        output = srv.stop()
        elapsed = time.monotonic() - started
    finally:
        client.kill()
        client.wait()
    assert elapsed < 10, f"smart shutdown would wait for the client; took {elapsed:.1f}s"
    assert "fast shutdown request" in output, output
    assert srv.returncode == 0


def test_restart_keeps_the_data_and_creates_what_is_missing(
    server: tuple[Server, dict[str, str]],
) -> None:
    srv, passwords = server
    srv.start()
    srv.wait_ready()
    kept = srv.psql(
        "order", passwords["order"], "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')"
    )
    assert kept.returncode == 0, kept.stderr
    srv.stop()
    # A new service's database, and a changed password (the Secret is the source of truth).
    srv.databases = (*DATABASES, "inventory")
    passwords["inventory"] = new_password()
    passwords["order"] = new_password()
    srv.write_password("inventory", passwords["inventory"])
    (srv.password_dir / "order").unlink()
    srv.write_password("order", passwords["order"])
    srv.start()
    srv.wait_ready()
    again = srv.psql("order", passwords["order"], "SELECT v FROM kept")
    assert again.stdout.strip() == "x", again.stderr
    new = srv.psql("inventory", passwords["inventory"], "SELECT current_database()")
    assert new.stdout.strip() == "inventory", new.stderr
    output = srv.stop()
    assert "using the existing cluster" in output
    assert "initialising" not in output


def test_a_missing_password_stops_the_start_naming_the_role(
    server: tuple[Server, dict[str, str]],
) -> None:
    srv, _ = server
    (srv.password_dir / "payment").unlink()
    srv.start()
    output = srv.finish()
    assert srv.returncode != 0
    assert "no password for role payment" in output
    assert not (srv.base / "data" / "pgdata" / "PG_VERSION").exists(), "nothing initialised"

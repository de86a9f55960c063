"""Pytest fixtures: a real nats-server (shared, or fresh per test), a real three-member NATS
cluster, and free ports."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devkit.localstack.nats import NatsServer
from devkit.localstack.natscluster import NatsCluster
from devkit.localstack.process import ServiceProcess
from devkit.testing.postgres import PostgresServer


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One JetStream server for the whole session; tests use their own stream names."""
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A JetStream server of the test's own, for tests that stop or restart it."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three JetStream members of the test's own, routed together on 127.0.0.1 (what the nats
    chart runs in Kubernetes), for tests that kill or restart a member."""
    cluster = NatsCluster(tmp_path / "nats-cluster")
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def repo_root(pytestconfig: pytest.Config) -> Path:
    """The workspace root (where the Makefile is)."""
    return pytestconfig.rootpath


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session, started on first use."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


DATABASE_KINDS = ["sqlite", "postgresql"]


def database_maker(request: pytest.FixtureRequest, directory: Path) -> Callable[[str], str]:
    """Makes fresh, empty databases of the kind ``request.param`` names."""
    if request.param == "sqlite":
        return lambda name: f"sqlite+aiosqlite:///{directory / name}.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return lambda _: server.create_database()


@pytest.fixture(params=DATABASE_KINDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Makes fresh, empty databases of one kind; tests taking it run on SQLite and PostgreSQL."""
    return database_maker(request, tmp_path)


@pytest.fixture
def database_url(new_database: Callable[[str], str]) -> str:
    """A fresh, empty database, on SQLite and on PostgreSQL."""
    return new_database("test")


def service_per_database(
    name: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """Body of a module fixture parametrized by DATABASE_KINDS: the service ``name`` as a real
    process on a fresh database of that kind, with a nats-server of its own (so its streams see
    no other suite's events)."""
    directory = tmp_path_factory.mktemp(name)
    nats = NatsServer(directory / "nats")
    nats.start()
    process = ServiceProcess(
        name,
        [sys.executable, "-m", f"{name}_service.main"],
        directory,
        env={"NATS_URL": nats.url, "DATABASE_URL": database_maker(request, directory)(name)},
    )
    try:
        process.start()
        process.wait_until("/readyz", 200)
        yield process
    finally:
        process.stop()
        nats.stop()

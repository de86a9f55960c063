"""platform/secrets/cluster_secrets.py against a real kube-apiserver: it creates every Secret the
charts reference, with the right keys; a re-run keeps every value; it never prints one."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit import layout
from tests.charts.test_chart_local_values import secrets_script
from tests.e2e.clustersupport import Kubectl

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).parents[2] / "platform" / "secrets" / "cluster_secrets.py"
SCRIPT_MODULE = secrets_script()
# The script's lists come from charts/nats/files/users.conf and charts/postgres/values-local.yaml
# (make new-service adds to both); the platform's own users and databases are always there.
NATS_USERS = sorted(SCRIPT_MODULE.NATS_USERS)
DATABASES = sorted(SCRIPT_MODULE.DATABASES)


def test_the_lists_hold_the_platforms_own_users_and_databases() -> None:
    root = Path(__file__).parents[2]
    assert {*layout.service_names(root), "ci", "deployer"} <= set(NATS_USERS)
    with_database = {name.replace("-", "_") for name in layout.services_with_database(root)}
    assert with_database <= set(DATABASES)


@dataclass(frozen=True)
class Target:
    """The three namespaces of one run (random names, deleted afterwards)."""

    services: str
    nats: str
    postgres: str

    def args(self, kubectl: Kubectl) -> list[str]:
        return [
            "--kubeconfig", str(kubectl.kubeconfig), "--kubectl", str(kubectl.binary),
            "--namespace", self.services, "--nats-namespace", self.nats,
            "--postgres-namespace", self.postgres,
        ]  # fmt: skip


@pytest.fixture
def target(kubectl: Kubectl) -> Iterator[Target]:
    suffix = secrets.token_hex(3)
    chosen = Target(f"sec-{suffix}-svc", f"sec-{suffix}-nats", f"sec-{suffix}-pg")
    yield chosen
    kubectl.run(
        "delete", "namespace", chosen.services, chosen.nats, chosen.postgres,
        "--wait=false", "--ignore-not-found", check=False,
    )  # fmt: skip


def run_script(kubectl: Kubectl, target: Target) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *target.args(kubectl)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def all_secrets(kubectl: Kubectl, target: Target) -> dict[str, dict[str, str]]:
    """ "<namespace>/<name>" -> decoded data of every Secret in the three namespaces."""
    found: dict[str, dict[str, str]] = {}
    for namespace in (target.services, target.nats, target.postgres):
        for item in kubectl.json("get", "secrets", "--namespace", namespace)["items"]:
            data = {k: base64.b64decode(v).decode() for k, v in item["data"].items()}
            found[f"{namespace}/{item['metadata']['name']}"] = data
    return found


def test_creates_every_secret_once_and_keeps_them(kubectl: Kubectl, target: Target) -> None:
    first = run_script(kubectl, target)
    assert first.returncode == 0, first.stderr
    created = all_secrets(kubectl, target)
    svc, nats, pg = target.services, target.nats, target.postgres
    expected_keys = {
        f"{nats}/nats-users": NATS_USERS,
        f"{pg}/postgres-roles": DATABASES,
        **{f"{svc}/{user}-nats": ["password"] for user in NATS_USERS},
        **{f"{svc}/{SCRIPT_MODULE.database_secret(db)}": ["url"] for db in DATABASES},
        f"{svc}/flotilla-identity": ["shared-secret"],
        f"{svc}/auth-signing-keys": ["signing-key.pem"],
        f"{svc}/deployer-api": ["token"],
    }
    assert {name: sorted(data) for name, data in created.items()} == expected_keys
    # Derived values agree with their sources: the services can log in.
    for user in NATS_USERS:
        assert created[f"{svc}/{user}-nats"]["password"] == created[f"{nats}/nats-users"][user]
    for db in DATABASES:
        password = created[f"{pg}/postgres-roles"][db]
        assert created[f"{svc}/{SCRIPT_MODULE.database_secret(db)}"]["url"] == (
            f"postgresql://{db}:{password}@postgres.{pg}.svc.cluster.local:5432/{db}"
        )
    pem = created[f"{svc}/auth-signing-keys"]["signing-key.pem"].encode()
    assert isinstance(serialization.load_pem_private_key(pem, None), Ed25519PrivateKey)
    passwords = list(created[f"{nats}/nats-users"].values())
    assert len(set(passwords)) == len(passwords), "one password per user"
    for password in passwords:
        assert password[0].isalpha()
        assert password.isalnum()
        assert len(password) >= 32
    # What it printed names every Secret and no value.
    values = [v for data in created.values() for v in data.values()]
    assert first.stdout.count("created ") == len(expected_keys) + 3  # and the namespaces
    secret_lines = [line for v in values for line in v.splitlines() if "-----" not in line]
    for line in secret_lines:
        assert line not in first.stdout + first.stderr

    second = run_script(kubectl, target)
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout
    assert second.stdout.count("kept ") == len(expected_keys)
    assert all_secrets(kubectl, target) == created, "a re-run rotates nothing"


def test_a_lost_derived_secret_is_rebuilt_from_its_source(kubectl: Kubectl, target: Target) -> None:
    assert run_script(kubectl, target).returncode == 0
    before = all_secrets(kubectl, target)
    kubectl.run("delete", "secret", "order-nats", "order-database", "--namespace", target.services)
    again = run_script(kubectl, target)
    assert again.returncode == 0, again.stderr
    assert f"created  {target.services}/order-nats" in again.stdout
    assert all_secrets(kubectl, target) == before


def test_a_derived_secret_that_disagrees_is_reported(kubectl: Kubectl, target: Target) -> None:
    assert run_script(kubectl, target).returncode == 0
    kubectl.run(
        "patch", "secret", "payment-nats", "--namespace", target.services,
        "-p", '{"stringData": {"password": "somethingelse"}}',
    )  # fmt: skip
    result = run_script(kubectl, target)
    assert result.returncode == 1
    assert f"{target.services}/payment-nats does not match {target.nats}/nats-users" in (
        result.stderr
    )
    assert "delete it" in result.stderr


def test_a_missing_kubeconfig_is_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--kubeconfig", str(tmp_path / "nope"), "--kubectl", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"--kubeconfig {tmp_path / 'nope'}: no such file" in result.stderr


def test_the_lists_are_read_from_the_charts_and_bad_ones_are_refused(tmp_path: Path) -> None:
    users = tmp_path / "users.conf"
    users.write_text("{ user: stock-level, password: $NATS_PASSWORD_STOCK_LEVEL }\n")
    assert SCRIPT_MODULE.nats_users(users) == ("stock-level",)
    users.write_text("users = []\n")
    with pytest.raises(SCRIPT_MODULE.SecretsError, match="names no NATS user"):
        SCRIPT_MODULE.nats_users(users)
    values = tmp_path / "values-local.yaml"
    values.write_text("databases:\n  - auth\n  - stock_level\n")
    assert SCRIPT_MODULE.databases(values) == ("auth", "stock_level")
    assert SCRIPT_MODULE.database_secret("stock_level") == "stock-level-database"
    values.write_text("databases:\n  - stock-level\n")
    with pytest.raises(SCRIPT_MODULE.SecretsError, match="with underscores"):
        SCRIPT_MODULE.databases(values)

"""Create the Kubernetes Secrets the Flotilla platform needs in a cluster, once.

Every secret value is generated here at random and goes straight to the API server through the
pinned kubectl (on its standard input); nothing is written to disk or printed. A Secret that
already exists is kept as it is (never rotated), so a re-run does not break running pods; a
derived Secret (a service's NATS password, its DATABASE_URL) is built from the values of the
source Secret that exists. Run

    .venv/bin/python platform/secrets/cluster_secrets.py --kubeconfig <path>

before installing the charts with charts/values-local.yaml. What it creates, by namespace:

  nats:      nats-users           a password per user of charts/nats/files/users.conf
                                  (auth, order, payment, gateway, deployer, ci)
  postgres:  postgres-roles       a password per role of charts/postgres/values-local.yaml
                                  (databases: auth, order, payment)
  flotilla:  <user>-nats          key password, for each NATS user above
             <service>-database   key url (postgresql://...), for each role above
             flotilla-identity    key shared-secret
             auth-signing-keys    key signing-key.pem (an Ed25519 private key)
             deployer-api         key token
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import string
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = Path(__file__).resolve().parents[2]
# The lists come from the charts that use them (make new-service and remove-service edit those):
# the NATS users of charts/nats/files/users.conf, the roles of charts/postgres/values-local.yaml.
NATS_USERS_FILE = REPO / "charts" / "nats" / "files" / "users.conf"
POSTGRES_VALUES_FILE = REPO / "charts" / "postgres" / "values-local.yaml"
# The pattern the nats chart reads its users with (charts/nats/templates/_profile.tpl).
_NATS_USER = re.compile(r"user: ([a-z0-9_-]+), password: ")
_ROLE = re.compile(r"^[a-z_][a-z0-9_]*$")
MANAGED_BY = "flotilla-secrets"
# Letters and digits only, starting with a letter: safe unquoted in a nats-server config
# variable, in a URL and in a shell, and never read as a number or a boolean.
ALPHABET = string.ascii_letters + string.digits

Data = dict[str, str]


class SecretsError(RuntimeError):
    """The Secrets could not be ensured; the message says what to do."""


def nats_users(path: Path = NATS_USERS_FILE) -> tuple[str, ...]:
    """The NATS users the nats chart configures, in the order of its users.conf."""
    try:
        users = tuple(dict.fromkeys(_NATS_USER.findall(path.read_text())))
    except OSError as exc:
        raise SecretsError(f"cannot read the NATS users from {path}: {exc}") from None
    if not users:
        raise SecretsError(
            f"{path} names no NATS user (no `user: <name>, password: ...` line): restore it "
            "(git checkout -- charts/nats/files/users.conf)"
        )
    return users


def databases(path: Path = POSTGRES_VALUES_FILE) -> tuple[str, ...]:
    """The PostgreSQL roles (one database each) the postgres release creates: its ``databases``."""
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SecretsError(f"cannot read the databases from {path}: {exc}") from None
    names = values.get("databases") if isinstance(values, dict) else None
    if not isinstance(names, list) or not names:
        raise SecretsError(f"{path} has no `databases:` list: name one role per service there")
    bad = [name for name in names if not isinstance(name, str) or not _ROLE.match(name)]
    if bad:
        raise SecretsError(
            f"{path}: databases {bad} are not lower-case identifiers (a-z, 0-9, _): "
            "write a dashed service name with underscores (stock-level: stock_level)"
        )
    return tuple(names)


def database_secret(role: str) -> str:
    """The Secret with a role's DATABASE_URL: ``<service>-database`` (role stock_level is the
    service stock-level, whose chart reads stock-level-database)."""
    return f"{role.replace('_', '-')}-database"


NATS_USERS = nats_users()
DATABASES = databases()


def random_password(length: int = 32) -> str:
    """A random password of letters and digits that starts with a letter."""
    return secrets.choice(string.ascii_letters) + "".join(
        secrets.choice(ALPHABET) for _ in range(length - 1)
    )


def signing_key_pem() -> str:
    """A new Ed25519 private key for auth's tokens, as unencrypted PKCS#8 PEM."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode()


@dataclass(frozen=True)
class Kubectl:
    """The pinned kubectl against one cluster."""

    binary: Path
    kubeconfig: Path

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run kubectl; raise SecretsError with its stderr when it fails."""
        argv = [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args]
        try:
            result = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SecretsError(f"kubectl {' '.join(args[:3])}: {exc}") from None
        if result.returncode != 0:
            raise SecretsError(f"kubectl {' '.join(args[:3])} failed: {result.stderr.strip()}")
        return result

    def get_secret(self, namespace: str, name: str) -> Data | None:
        """The decoded data of a Secret, or None when it does not exist."""
        out = self.run(
            "get", "secret", name, "--namespace", namespace, "--ignore-not-found", "-o", "json"
        ).stdout
        if not out.strip():
            return None
        raw: dict[str, str] = json.loads(out).get("data") or {}
        return {key: base64.b64decode(value).decode() for key, value in raw.items()}

    def ensure_namespace(self, namespace: str) -> bool:
        """Create the namespace when missing; True when it was created."""
        found = self.run("get", "namespace", namespace, "--ignore-not-found", "-o", "name").stdout
        if found.strip():
            return False
        self.run("create", "namespace", namespace)
        return True

    def create_secret(self, namespace: str, name: str, data: Data) -> bool:
        """Create an Opaque Secret from the manifest on stdin; False when it already exists."""
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": MANAGED_BY,
                    "app.kubernetes.io/part-of": "flotilla",
                },
            },
            "stringData": data,
        }
        argv = [str(self.binary), "--kubeconfig", str(self.kubeconfig), "create", "-f", "-"]
        result = subprocess.run(
            argv, input=json.dumps(manifest), capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        if result.returncode == 0:
            return True
        if "AlreadyExists" in result.stderr or "already exists" in result.stderr:
            return False  # created meanwhile by someone else: kept
        raise SecretsError(f"creating secret {namespace}/{name} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class Namespaces:
    """Where each group of Secrets goes."""

    services: str
    nats: str
    postgres: str


class Ensurer:
    """Creates missing Secrets and reports each one, without a value."""

    def __init__(self, kubectl: Kubectl, out: Callable[[str], None] = print) -> None:
        self.kubectl = kubectl
        self.out = out
        self.problems: list[str] = []

    def source(self, namespace: str, name: str, keys: Sequence[str]) -> Data:
        """A Secret of random passwords (one per key): the existing one, or a new one."""
        existing = self.kubectl.get_secret(namespace, name)
        if existing is not None:
            missing = [k for k in keys if k not in existing]
            if missing:
                raise SecretsError(
                    f"secret {namespace}/{name} exists without the key(s) {', '.join(missing)}: "
                    f"add them (kubectl -n {namespace} edit secret {name}), or delete the "
                    "Secret and re-run to generate every key (pods using it must restart)."
                )
            self.out(f"kept     {namespace}/{name} (keys: {', '.join(sorted(existing))})")
            return existing
        data = {key: random_password() for key in keys}
        return self.create(namespace, name, data)

    def create(self, namespace: str, name: str, data: Data) -> Data:
        """Create the Secret unless it exists; the data in the cluster afterwards."""
        if self.kubectl.create_secret(namespace, name, data):
            self.out(f"created  {namespace}/{name} (keys: {', '.join(sorted(data))})")
            return data
        existing = self.kubectl.get_secret(namespace, name) or {}
        self.out(f"kept     {namespace}/{name} (keys: {', '.join(sorted(existing))})")
        return existing

    def single(self, namespace: str, name: str, make: Callable[[], Data]) -> Data:
        """A Secret of its own: kept when it exists, else created from ``make()``."""
        existing = self.kubectl.get_secret(namespace, name)
        if existing is not None:
            self.out(f"kept     {namespace}/{name} (keys: {', '.join(sorted(existing))})")
            return existing
        return self.create(namespace, name, make())

    def derived(self, namespace: str, name: str, data: Data, source: str) -> None:
        """A Secret whose value follows from a source Secret; a kept one that differs is
        reported, since the service would then fail to log in."""
        existing = self.kubectl.get_secret(namespace, name)
        if existing is None:
            self.create(namespace, name, data)
            return
        self.out(f"kept     {namespace}/{name} (keys: {', '.join(sorted(existing))})")
        if any(existing.get(key) != value for key, value in data.items()):
            self.problems.append(
                f"{namespace}/{name} does not match {source}: delete it "
                f"(kubectl -n {namespace} delete secret {name}) and re-run to derive it again."
            )


def ensure_all(kubectl: Kubectl, ns: Namespaces, postgres_host: str, ensurer: Ensurer) -> None:
    """Create every missing namespace and Secret of the platform."""
    for namespace in dict.fromkeys((ns.services, ns.nats, ns.postgres)):
        if kubectl.ensure_namespace(namespace):
            ensurer.out(f"created  namespace {namespace}")
    nats = ensurer.source(ns.nats, "nats-users", NATS_USERS)
    for user in NATS_USERS:
        ensurer.derived(
            ns.services, f"{user}-nats", {"password": nats[user]}, f"{ns.nats}/nats-users"
        )
    roles = ensurer.source(ns.postgres, "postgres-roles", DATABASES)
    for db in DATABASES:
        url = f"postgresql://{db}:{roles[db]}@{postgres_host}:5432/{db}"
        ensurer.derived(
            ns.services, database_secret(db), {"url": url}, f"{ns.postgres}/postgres-roles"
        )
    ensurer.single(ns.services, "flotilla-identity", lambda: {"shared-secret": random_password(48)})
    ensurer.single(ns.services, "auth-signing-keys", lambda: {"signing-key.pem": signing_key_pem()})
    ensurer.single(ns.services, "deployer-api", lambda: {"token": random_password(48)})


def pinned_kubectl() -> Path:
    """The kubectl that platform/cluster/build-tools.sh built."""
    script = REPO / "platform" / "cluster" / "build-tools.sh"
    result = subprocess.run(
        [str(script), "--path", "kubectl"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SecretsError(
            f"kubectl is not built ({result.stderr.strip()}): run `make setup`, or pass --kubectl"
        )
    return Path(result.stdout.strip())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Create the platform's Kubernetes Secrets once (existing ones are kept)."
    )
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the cluster's kubeconfig")
    parser.add_argument("--kubectl", type=Path, help="default: the pinned one (build-tools.sh)")
    parser.add_argument("--namespace", default="flotilla", help="the services' namespace")
    parser.add_argument("--nats-namespace", default="nats", help="the nats release's namespace")
    parser.add_argument(
        "--postgres-namespace", default="postgres", help="the postgres release's namespace"
    )
    parser.add_argument(
        "--postgres-host",
        help="host in DATABASE_URL; default postgres.<postgres namespace>.svc.cluster.local",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Ensure every Secret; exit 1 with a readable message when something is wrong."""
    args = parse_args(argv)
    try:
        if not args.kubeconfig.is_file():
            raise SecretsError(f"--kubeconfig {args.kubeconfig}: no such file")
        kubectl = Kubectl(args.kubectl or pinned_kubectl(), args.kubeconfig)
        namespaces = Namespaces(args.namespace, args.nats_namespace, args.postgres_namespace)
        host = args.postgres_host or f"postgres.{args.postgres_namespace}.svc.cluster.local"
        ensurer = Ensurer(kubectl)
        ensure_all(kubectl, namespaces, host, ensurer)
    except SecretsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in ensurer.problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if ensurer.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

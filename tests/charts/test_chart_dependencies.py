"""The nats and postgres charts: what they render, what their schemas refuse, that the NATS
users are those of platform/nats/local.conf, and that the rendered nats.conf runs a real
nats-server (the one the image ships) with JetStream and password logins."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from devkit.localstack.ports import free_port
from kit import layout
from tests.charts.chartsupport import Helm, Manifest, Rendered, containers, merge, walk_strings
from tests.charts.test_chart_policies import RESTRICTED_VOLUME_TYPES, effective

DEPENDENCY_TAG = "2.15.1-a8f3d21"
REPO = Path(__file__).parents[2]
# Every service's NATS user (make new-service adds it to local.conf and the chart), the deployer's
# and CI's.
PLATFORM_NATS_USERS = [*layout.service_names(REPO), "deployer", "ci"]
NATS_USERS = re.findall(
    r"(?m)^\s*user: ([a-z0-9_-]+), password: ", (REPO / "platform/nats/local.conf").read_text()
)


def password_variable(user: str) -> str:
    """The environment variable the nats chart passes a user's password in."""
    return f"NATS_PASSWORD_{user.upper().replace('-', '_')}"


def base_values() -> dict[str, Any]:
    return {"image": {"tag": DEPENDENCY_TAG}}


@pytest.fixture(scope="module")
def nats_chart(helm: Helm) -> Rendered:
    return helm.template("nats", base_values(), release="nats", namespace="nats")


@pytest.fixture(scope="module")
def postgres_chart(helm: Helm) -> Rendered:
    return helm.template("postgres", base_values(), release="postgres", namespace="postgres")


def statefulset_pod(rendered: Rendered) -> Manifest:
    spec: Manifest = rendered.one("StatefulSet")["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("chart", ["nats", "postgres"])
def test_claims_with_restricted_security(helm: Helm, chart: str) -> None:
    rendered = helm.template(chart, base_values(), release=chart, namespace=chart)
    workload = rendered.one("StatefulSet")
    # NATS: three members (tests/charts/test_chart_nats_cluster.py); PostgreSQL: one server.
    assert workload["spec"]["replicas"] == (3 if chart == "nats" else 1)
    assert workload["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    (claim,) = workload["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "storageClassName" not in claim["spec"], "unset: the cluster's default class"
    pod = statefulset_pod(rendered)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    volumes = {v["name"]: v for v in pod["volumes"]}
    for volume in volumes.values():
        assert set(volume) - {"name"} <= RESTRICTED_VOLUME_TYPES, volume
    for container in containers(pod):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert effective(pod, container, "runAsNonRoot") is True
        assert effective(pod, container, "runAsUser") == 10001
        assert effective(pod, container, "seccompProfile") == {"type": "RuntimeDefault"}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe in container
        for mount in container["volumeMounts"]:
            if not mount.get("readOnly"):
                writable = mount["name"] == "data" or "emptyDir" in volumes[mount["name"]]
                assert writable, f"{mount['mountPath']} is writable but neither claim nor emptyDir"
        for env in container.get("env", []):
            if re.search(r"PASSWORD(_[A-Z]+)?$", env["name"]) and "DIR" not in env["name"]:
                assert set(env["valueFrom"]) == {"secretKeyRef"}
    labels = workload["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == chart
    assert "Secret" not in rendered.kinds
    for path, value in walk_strings(rendered.manifests):
        assert not re.search(r"://[^/@\s]+:[^@\s]+@", value), path
    claim_values = {"storageClassName": "flotilla-local"}
    if chart == "nats":
        values = merge(base_values(), {"jetstream": {"persistence": claim_values}})
    else:
        values = merge(base_values(), {"persistence": claim_values})
    classed = helm.template(chart, values, release=chart, namespace=chart).one("StatefulSet")
    assert classed["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == (
        "flotilla-local"
    )


def test_nats_serves_the_services_default_url(nats_chart: Rendered) -> None:
    services = {s["metadata"]["name"]: s for s in nats_chart.of_kind("Service")}
    client = services["nats"]
    assert client["metadata"]["namespace"] == "nats"
    assert client["spec"]["ports"] == [
        {"name": "client", "port": 4222, "targetPort": "client", "protocol": "TCP"}
    ]
    assert client["spec"]["selector"]["app.kubernetes.io/name"] == "nats"
    workload = nats_chart.one("StatefulSet")
    assert workload["spec"]["serviceName"] == "nats-headless"
    (container,) = statefulset_pod(nats_chart)["containers"]
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/healthz?js-enabled-only=true",
        "port": "monitor",
    }
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"client": 4222, "monitor": 8222, "cluster": 6222}
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {
        password_variable(user): {"name": "nats-users", "key": user} for user in NATS_USERS
    }
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/data"] == "data"
    config = nats_chart.one("ConfigMap")["data"]["nats.conf"]
    assert 'store_dir: "/data/jetstream"' in config
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])


def test_postgres_serves_one_database_per_service(postgres_chart: Rendered) -> None:
    service = next(
        s for s in postgres_chart.of_kind("Service") if s["metadata"]["name"] == "postgres"
    )
    assert service["spec"]["ports"][0]["port"] == 5432
    pod = statefulset_pod(postgres_chart)
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["POSTGRES_DATABASES"] == "auth order payment"
    assert env["PGDATA"].startswith("/var/lib/postgresql/data/")
    assert env["POSTGRES_LISTEN_ADDRESSES"] == "0.0.0.0"
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["passwords"]["secret"]["secretName"] == "postgres-roles"
    assert [i["key"] for i in volumes["passwords"]["secret"]["items"]] == [
        "auth",
        "order",
        "payment",
    ]
    assert pod["terminationGracePeriodSeconds"] >= 30


# name: (chart, values merged over the defaults, text helm's error must contain)
REJECTIONS: dict[str, tuple[str, dict[str, Any], str]] = {
    "nats without a tag": ("nats", {"image": {"tag": None}}, "at '/image/tag'"),
    "nats latest": ("nats", {"image": {"tag": "latest"}}, "at '/image/tag': 'not' failed"),
    "postgres latest": ("postgres", {"image": {"tag": "latest"}}, "at '/image/tag'"),
    "nats unknown key": ("nats", {"replicas": 3}, "additional properties 'replicas'"),
    "postgres unknown key": ("postgres", {"replicaCount": 3}, "'replicaCount' not allowed"),
    "nats password by value": (
        "nats",
        {"auth": {"password": "x"}},
        "at '/auth': additional properties 'password' not allowed",
    ),
    "nats no secret": ("nats", {"auth": {"existingSecret": ""}}, "at '/auth/existingSecret'"),
    "postgres no secret": (
        "postgres",
        {"auth": {"existingSecret": ""}},
        "at '/auth/existingSecret'",
    ),
    "nats short lame duck": (
        "nats",
        {"server": {"lameDuckDurationSeconds": 10}},
        "at '/server/lameDuckDurationSeconds': minimum: got 10, want 30",
    ),
    "nats grace below lame duck": (
        "nats",
        {"terminationGracePeriodSeconds": 35},
        "terminationGracePeriodSeconds (35) must be at least server.lameDuckDurationSeconds + 10",
    ),
    "nats root": ("nats", {"securityContext": {"runAsUser": 0}}, "at '/securityContext/runAsUser'"),
    "postgres root": (
        "postgres",
        {"securityContext": {"runAsUser": 0}},
        "at '/securityContext/runAsUser'",
    ),
    "postgres superuser database": (
        "postgres",
        {"databases": ["auth", "postgres"]},
        "at '/databases'",
    ),
    "postgres bad database name": ("postgres", {"databases": ["Order"]}, "at '/databases/0'"),
    "postgres no resources": ("postgres", {"resources": None}, "missing property 'resources'"),
    "nats bad store size": (
        "nats",
        {"jetstream": {"maxFileStore": "2 gigs"}},
        "at '/jetstream/maxFileStore'",
    ),
}


@pytest.mark.parametrize("name", list(REJECTIONS))
def test_schema_refuses_naming_the_field(helm: Helm, name: str) -> None:
    chart, change, expected = REJECTIONS[name]
    error = helm.template_error(chart, merge(base_values(), change))
    assert expected in error, error


# --- The users and permissions: those of platform/nats/local.conf.


def user_blocks(config: str) -> dict[str, str]:
    """user name -> its permissions block, whitespace-normalised."""
    blocks: dict[str, str] = {}
    for match in re.finditer(r"user: ([\w-]+), password: \S+\s+permissions: \{", config):
        depth, index = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(config[index], 0)
            index += 1
        blocks[match.group(1)] = " ".join(config[match.end() : index - 1].split())
    return blocks


def test_users_and_permissions_are_those_of_local_conf(nats_chart: Rendered) -> None:
    local = (REPO / "platform" / "nats" / "local.conf").read_text()
    config = nats_chart.one("ConfigMap")["data"]["nats.conf"]
    assert set(PLATFORM_NATS_USERS) <= set(NATS_USERS), NATS_USERS
    assert list(user_blocks(config)) == NATS_USERS
    assert user_blocks(config) == user_blocks(local)
    for user in NATS_USERS:
        assert f"user: {user}, password: ${password_variable(user)}\n" in config
    assert "local-only" not in config, "no password of local.conf"


# --- The rendered configuration on the real nats-server (the version the image installs).


@pytest.fixture
def nats_server(helm: Helm, tmp_path: Path) -> Iterator[tuple[int, int, dict[str, str]]]:
    """nats-server with the chart's nats.conf for a single server (cluster.replicas: 1), moved
    to loopback, free ports and a temp store."""
    client, monitor = free_port(), free_port()
    single = helm.template(
        "nats", merge(base_values(), {"cluster": {"replicas": 1}}), release="nats", namespace="nats"
    )
    config = single.one("ConfigMap")["data"]["nats.conf"]
    config = config.replace("listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{client}")
    config = config.replace("http: 0.0.0.0:8222", f"http: 127.0.0.1:{monitor}")
    config = config.replace('store_dir: "/data/jetstream"', f'store_dir: "{tmp_path / "js"}"')
    assert f"127.0.0.1:{client}" in config
    assert f"127.0.0.1:{monitor}" in config
    (tmp_path / "nats.conf").write_text(config)
    passwords = {user: f"p{user}{free_port()}x" for user in NATS_USERS}
    env = {password_variable(u): p for u, p in passwords.items()}
    binary = REPO / ".venv" / "bin" / "nats-server"
    process = subprocess.Popen(
        [str(binary), "--config", str(tmp_path / "nats.conf")],
        env={"POD_NAME": "nats-0", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                url = f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                _, err = process.communicate(timeout=5)
                pytest.fail(f"nats-server did not become healthy:\n{err}")
            time.sleep(0.1)
        yield client, monitor, passwords
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_rendered_config_runs_jetstream_with_password_logins(
    nats_server: tuple[int, int, dict[str, str]],
) -> None:
    client, monitor, passwords = nats_server
    url = f"nats://127.0.0.1:{client}"
    connection = await nats.connect(
        url, user="order", password=passwords["order"], allow_reconnect=False
    )
    try:
        info = await connection.jetstream().account_info()
        assert info is not None
    finally:
        await connection.close()
    with pytest.raises(NatsError):
        await nats.connect(
            url,
            user="order",
            password=passwords["payment"],
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
        )
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/varz", timeout=2) as response:
        varz = response.read().decode()
    assert '"server_name": "nats-0"' in varz, "server_name from the pod name"

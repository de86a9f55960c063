"""The cluster's registry: where an image name lands, and what digest the registry serves.

The local node's containerd resolves every registry host to one local registry and keeps the
repository path, so ``ghcr.io/flotilla/order-service:1.1.0-abc1234`` is pushed to
``127.0.0.1:PORT/flotilla/order-service:1.1.0-abc1234`` and ``registry.k8s.io/pause:3.10.1`` to
``127.0.0.1:PORT/pause:3.10.1``.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import re
from pathlib import Path

from pipelines_cli.errors import PipelineError

REGISTRY_ENV = "FLOTILLA_REGISTRY"
CLUSTER_REGISTRY_FILE = Path(".run/cluster/registry")
_ADDRESS = re.compile(r"^[a-zA-Z0-9.-]+(:[0-9]{1,5})?$")
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


def split_reference(image: str) -> tuple[str, str, str]:
    """``(registry host, repository path, tag)`` of ``host/path:tag`` (Docker Hub's rules)."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        raise PipelineError(f"image {image!r} has no tag: name it <registry>/<path>:<tag>")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    path = name if "/" in name else f"library/{name}"
    return "docker.io", path, tag


def destination(image: str, registry: str) -> str:
    """The name ``image`` is pushed as in ``registry``: its host replaced, path and tag kept."""
    check_address(registry)
    _, path, tag = split_reference(image)
    return f"{registry}/{path}:{tag}"


def check_address(registry: str) -> None:
    """Refuse anything but ``host[:port]`` (a registry address, not a URL)."""
    if not _ADDRESS.match(registry):
        raise PipelineError(
            f"registry address {registry!r} is not host[:port] (e.g. 127.0.0.1:5000): fix "
            f"--push-to / {REGISTRY_ENV}"
        )


def is_loopback(registry: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the only registries spoken to without TLS."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cluster_registry(repo: Path) -> str:
    """The registry of the local cluster: ``$FLOTILLA_REGISTRY``, else ``.run/cluster/registry``."""
    address = os.environ.get(REGISTRY_ENV, "").strip()
    if not address:
        path = repo / CLUSTER_REGISTRY_FILE
        try:
            address = path.read_text().strip()
        except OSError:
            raise PipelineError(
                f"no cluster registry: run make cluster-up first (it writes {path}), or set "
                f"{REGISTRY_ENV}=127.0.0.1:PORT"
            ) from None
    check_address(address)
    return address


def served_digest(registry: str, repository: str, tag: str, timeout: float = 10.0) -> str:
    """The ``Docker-Content-Digest`` of ``GET /v2/<repository>/manifests/<tag>``."""
    host, _, port = registry.partition(":")
    connection: http.client.HTTPConnection = (
        http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
        if is_loopback(registry)
        else http.client.HTTPSConnection(host, int(port or 443), timeout=timeout)
    )
    path = f"/v2/{repository}/manifests/{tag}"
    try:
        connection.request("GET", path, headers={"Accept": MANIFEST_TYPES})
        response = connection.getresponse()
        response.read()
    except OSError as exc:
        raise PipelineError(
            f"cannot reach the registry {registry} ({exc}): is it running? (make cluster-up)"
        ) from None
    finally:
        connection.close()
    if response.status != 200:
        raise PipelineError(
            f"GET {registry}{path} answered {response.status}: was {repository}:{tag} pushed?"
        )
    digest = response.getheader("Docker-Content-Digest")
    if not digest:
        raise PipelineError(f"GET {registry}{path} answered without a Docker-Content-Digest")
    return digest

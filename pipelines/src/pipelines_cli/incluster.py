"""The platform on a Kubernetes cluster whose nodes pull from a registry this machine pushes to
(the local cluster's real node, whose runtime resolves every registry name to that registry):
the images, the Secrets, NATS and PostgreSQL, and one Helm release per service.

Every release takes ``charts/<chart>/values-local.yaml`` (production settings, every secret by
reference to what ``platform/secrets/cluster_secrets.py`` creates) and the image it was given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines_cli.buildah import Progress, stderr_progress
from pipelines_cli.errors import PipelineError
from pipelines_cli.imagebuild import ensure_image
from pipelines_cli.registry import destination, is_loopback, split_reference

# Namespace of the service releases and of their Secrets (values-local.yaml names them there).
PLATFORM_NAMESPACE = "flotilla"
# The in-cluster dependencies: (chart = release = namespace), installed before any service.
DEPENDENCIES = ("nats", "postgres")
SECRETS_SCRIPT = Path("platform") / "secrets" / "cluster_secrets.py"


@dataclass(frozen=True)
class Cluster:
    """A cluster to install into: its kubeconfig, the pinned kubectl and helm (with helm homes of
    its own), and the address of the registry its nodes pull from."""

    kubeconfig: Path
    kubectl: Path
    helm: Path
    helm_home: Path
    registry: str

    def helm_run(self, *args: str, timeout: float = 300) -> str:
        """Run helm against the cluster; a failure raises PipelineError with helm's stderr."""
        env = {
            "HELM_CACHE_HOME": str(self.helm_home / "cache"),
            "HELM_CONFIG_HOME": str(self.helm_home / "config"),
            "HELM_DATA_HOME": str(self.helm_home / "data"),
        }
        return _run([str(self.helm), "--kubeconfig", str(self.kubeconfig), *args], timeout, env)

    def kubectl_run(self, *args: str, timeout: float = 60) -> str:
        """Run kubectl against the cluster; a failure raises PipelineError with its stderr."""
        return _run([str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args], timeout)


def _run(argv: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> str:
    try:
        result = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        raise PipelineError(
            f"`{' '.join(argv[:4])} ...` did not finish within {timeout:g} s"
        ) from None
    if result.returncode != 0:
        raise PipelineError(
            f"`{' '.join(argv)}` exited with {result.returncode}: {result.stderr.strip()}"
        )
    return result.stdout


def image_values(image: str) -> list[str]:
    """``--set`` arguments that point a chart at ``image`` (``<repository>:<tag>``)."""
    host, path, tag = split_reference(image)
    return ["--set", f"image.repository={host}/{path}", "--set", f"image.tag={tag}"]


def release_arguments(repo: Path, chart: str, image: str) -> list[str]:
    """The values of one release on the local cluster: ``values-local.yaml`` and the image."""
    return ["-f", str(repo / "charts" / chart / "values-local.yaml"), *image_values(image)]


def create_secrets(repo: Path, cluster: Cluster, namespace: str = PLATFORM_NAMESPACE) -> str:
    """Create the platform's Secrets for the service releases in ``namespace`` (random values,
    existing ones kept); returns the script's report (names only, never a value)."""
    argv = [
        sys.executable,
        str(repo / SECRETS_SCRIPT),
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--kubectl",
        str(cluster.kubectl),
        "--namespace",
        namespace,
    ]
    return _run(argv, timeout=120)


def install_release(
    repo: Path,
    cluster: Cluster,
    chart: str,
    image: str,
    *,
    namespace: str,
    extra: Sequence[str] = (),
    timeout: float = 180,
) -> None:
    """``helm upgrade --install <chart>`` with the local values and ``image``, waiting until its
    pods are ready (and rolling back a failed upgrade)."""
    cluster.helm_run(
        "upgrade",
        "--install",
        chart,
        str(repo / "charts" / chart),
        "--namespace",
        namespace,
        "--create-namespace",
        *release_arguments(repo, chart, image),
        *extra,
        "--wait",
        "--rollback-on-failure",
        "--timeout",
        f"{timeout:g}s",
        timeout=timeout + 30,
    )


def ensure_sandbox_image(repo: Path, registry: str, progress: Progress = stderr_progress) -> None:
    """Push the pause image every pod's sandbox runs (``registry.k8s.io/pause``, built here: the
    node pulls it from the cluster's registry) unless the registry has it; without it no pod of
    a fresh machine's first cluster starts."""
    ensure_image(repo, "pause", registry, progress=progress)


def install_dependencies(
    repo: Path,
    cluster: Cluster,
    progress: Progress = stderr_progress,
    *,
    namespace: str = PLATFORM_NAMESPACE,
) -> dict[str, str]:
    """The node's sandbox image, the Secrets (those of the service releases in ``namespace``),
    then NATS and PostgreSQL as real workloads (built, pushed, installed and ready); returns each
    dependency's image."""
    ensure_sandbox_image(repo, cluster.registry, progress)
    progress(f"==> Secrets (cluster_secrets.py, services in namespace {namespace})")
    create_secrets(repo, cluster, namespace)
    images: dict[str, str] = {}
    for chart in DEPENDENCIES:
        pushed = ensure_image(repo, chart, cluster.registry, progress=progress)
        images[chart] = pushed.image.reference
        progress(f"==> helm upgrade --install {chart} (namespace {chart})")
        install_release(repo, cluster, chart, pushed.image.reference, namespace=chart)
    return images


def build_services(
    repo: Path, registry: str, tags: Mapping[str, str], progress: Progress = stderr_progress
) -> dict[str, str]:
    """Build each service of ``tags`` at its tag from ``repo`` (a work tree; cached by content)
    and push it to ``registry``; returns service -> image reference."""
    return {
        service: ensure_image(repo, service, registry, tag=tag, progress=progress).image.reference
        for service, tag in tags.items()
    }


def local_values(repo: Path, chart: str, *, node_port: bool = False) -> dict[str, Any]:
    """``charts/<chart>/values-local.yaml`` as a dict, with ``service.type: NodePort`` when
    asked (the local cluster answers NodePorts on 127.0.0.1)."""
    values: dict[str, Any] = yaml.safe_load(
        (repo / "charts" / chart / "values-local.yaml").read_text()
    )
    if node_port:
        values.setdefault("service", {})["type"] = "NodePort"
    return values


def _buildah(*args: str) -> str:
    try:
        result = subprocess.run(
            ["buildah", *args], capture_output=True, text=True, timeout=300, check=False
        )
    except FileNotFoundError:
        raise PipelineError("buildah not found: run make images-tools") from None
    if result.returncode != 0:
        raise PipelineError(f"buildah {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


# Builds that are really broken, for rollback drills: the service's image with another command.
EXITS_AT_START = ("python", "-c", "raise SystemExit('broken build: exits at start')")
# Alive (/healthz 200) but never ready (/readyz and everything else 503), on the service's port.
NEVER_READY = (
    "python",
    "-c",
    """import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        alive = self.path == "/healthz"
        self.send_response(200 if alive else 503)
        self.end_headers()
        self.wfile.write(b"alive" if alive else b"broken build: never ready")
    def log_message(self, *args):
        pass
port = int(os.environ.get("SERVICE_PORT", "8000"))
http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
""",
)


def push_variant(
    image: str,
    variant: str,
    registry: str,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Push ``variant``: the local image ``image`` with another command (e.g. a build whose
    process exits at start, for rollback drills) or more environment (e.g.
    ``SERVICE_FAULT_ERROR_RATIO``, for canary drills), or the same (a new image of the same
    code: a label names the variant); returns the digest the registry stored."""
    container = _buildah("from", "--pull=never", image)
    try:
        if command is not None:
            _buildah("config", "--cmd", json.dumps(list(command)), container)
        for name, value in (env or {}).items():
            _buildah("config", "--env", f"{name}={value}", container)
        _buildah("config", "--label", f"dev.flotilla.variant={variant}", container)
        _buildah("commit", "--quiet", container, variant)
    finally:
        _buildah("rm", container)
    tls = ["--tls-verify=false"] if is_loopback(registry) else []
    with tempfile.TemporaryDirectory() as scratch:
        digest_file = Path(scratch) / "digest"
        _buildah(
            "push", "--quiet", *tls, "--digestfile", str(digest_file),
            variant, f"docker://{destination(variant, registry)}",
        )  # fmt: skip
        return digest_file.read_text().strip()

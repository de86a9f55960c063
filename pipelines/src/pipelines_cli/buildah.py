"""buildah, the daemonless image builder: run it and read images from its local storage."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pipelines_cli.errors import PipelineError

Progress = Callable[[str], None]
INSTALL_HINT = "install it: make images-tools (or apt-get install -y buildah runc debootstrap)"
# oci (runc) is buildah's default; chroot needs no cgroups, for hosts where runc cannot start.
ISOLATION = os.environ.get("FLOTILLA_BUILDAH_ISOLATION", "oci")


def stderr_progress(message: str) -> None:
    """The default progress reporter: one line on stderr."""
    print(f"==> {message}", file=sys.stderr, flush=True)


def require(*binaries: str) -> None:
    """Raise PipelineError naming the install command when one of ``binaries`` is missing."""
    for binary in binaries:
        if shutil.which(binary) is None and not Path("/usr/sbin", binary).exists():
            raise PipelineError(f"{binary} not found: {INSTALL_HINT}")


# A file that streamed build output goes to instead of stderr (the demo keeps it in its logs).
BUILD_LOG_ENV = "FLOTILLA_BUILD_LOG"


def run(args: Sequence[str], *, capture: bool = True, cwd: Path | None = None) -> str:
    """Run ``buildah args``; return stdout (``capture``) or stream it to stderr (or to the file
    ``$FLOTILLA_BUILD_LOG`` names).

    A failure raises PipelineError with buildah's own message, which says what went wrong.
    """
    require("buildah")
    command = ["buildah", *args]
    log_path = os.environ.get(BUILD_LOG_ENV)
    with (
        open(log_path, "a")
        if log_path and not capture
        else contextlib.nullcontext(sys.stderr) as out
    ):
        result = subprocess.run(
            command,
            cwd=cwd,
            stdout=subprocess.PIPE if capture else out,
            stderr=subprocess.PIPE if capture else out,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        where = f"its output is in {log_path}" if log_path else "its output is above"
        detail = (result.stderr or "").strip() if capture else f"({where})"
        raise PipelineError(f"`{' '.join(command)}` failed with exit {result.returncode}: {detail}")
    return result.stdout if capture else ""


def inspect_image(reference: str) -> dict[str, object] | None:
    """buildah's JSON description of a local image, or None when storage has no such image."""
    require("buildah")
    result = subprocess.run(
        ["buildah", "inspect", "--type", "image", reference],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    data = json.loads(result.stdout)
    return data if isinstance(data, dict) else None


def image_id(reference: str) -> str | None:
    """The local image id (64 hex digits) of ``reference``, or None."""
    data = inspect_image(reference)
    value = data.get("FromImageID") if data else None
    return value if isinstance(value, str) and value else None


def image_labels(reference: str) -> dict[str, str]:
    """The labels of a local image (empty when it has none or does not exist)."""
    data = inspect_image(reference)
    if not data:
        return {}
    config = data.get("OCIv1")
    labels = config.get("config", {}).get("Labels") if isinstance(config, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def tag(image: str, *names: str) -> None:
    """Give the local image ``image`` (id or name) more names."""
    run(["tag", image, *names])


def push(image: str, destination: str, *, tls_verify: bool, digest_file: Path) -> str:
    """Push the local ``image`` to ``docker://destination``; return the manifest digest."""
    run(
        [
            "push",
            f"--tls-verify={str(tls_verify).lower()}",
            "--digestfile",
            str(digest_file),
            image,
            f"docker://{destination}",
        ]
    )
    digest = digest_file.read_text().strip()
    if not digest.startswith("sha256:"):
        raise PipelineError(f"buildah push wrote no digest to {digest_file}: got {digest!r}")
    return digest

"""Local base images made from Debian packages, for a machine that reaches no container registry.

``localhost/flotilla/debian:bookworm`` is a debootstrap (minbase) of bookworm from the mirror the
host's apt uses, with the host's CA bundle (the package registries may sit behind a TLS-
intercepting proxy) and apt pointed at that mirror. ``localhost/flotilla/python:3.11-bookworm``
adds Debian's Python 3.11 and behaves like the official ``python:3.11-slim`` for the project's
Dockerfiles: ``python``/``pip`` on the PATH, pip, setuptools and wheel installed under
/usr/local by ensurepip (so ``pip uninstall`` can remove them), and no EXTERNALLY-MANAGED marker.

Each image is labelled with a key over its inputs (suite, packages, mirror, CA bundle, this
recipe's code), so it is built once per machine and again only when an input changes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines_cli import buildah
from pipelines_cli.buildah import Progress, stderr_progress
from pipelines_cli.errors import PipelineError

SUITE = "bookworm"
DEBIAN_IMAGE = f"localhost/flotilla/debian:{SUITE}"
PYTHON_IMAGE = f"localhost/flotilla/python:3.11-{SUITE}"
KEY_LABEL = "dev.flotilla.base-key"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Where the images keep the host's bundle: a path no Debian package owns, so installing
# ca-certificates (which rewrites /etc/ssl/certs/ca-certificates.crt) cannot drop the proxy's CA.
IMAGE_CA_BUNDLE = "/etc/ssl/flotilla/ca-bundle.crt"
APT_DIR = Path("/etc/apt")
DEBIAN_PACKAGES = ("passwd",)
PYTHON_PACKAGES = ("python3.11", "python3.11-venv", "python-is-python3", "libpython3.11")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CERT_ENV = (
    f"SSL_CERT_FILE={IMAGE_CA_BUNDLE}",
    f"PIP_CERT={IMAGE_CA_BUNDLE}",
    f"REQUESTS_CA_BUNDLE={IMAGE_CA_BUNDLE}",
    "LANG=C.UTF-8",
)
_PYTHON_SETUP = (
    "set -eu; export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; "
    f"apt-get install -y -qq --no-install-recommends {' '.join(PYTHON_PACKAGES)} >/dev/null; "
    "rm -f /usr/lib/python3*/EXTERNALLY-MANAGED; "
    # Debian disables ensurepip for its python; pip's own wheel installs pip and setuptools
    # under /usr/local with their RECORD files, as in the official image, so they uninstall.
    "wheel=$(ls /usr/share/python-wheels/pip-*.whl); "
    "python $wheel/pip install --quiet --no-cache-dir --no-index "
    "--find-links /usr/share/python-wheels pip setuptools 2>/dev/null; "
    "apt-get clean; rm -rf /var/lib/apt/lists/* /root/.cache; "
    "python -m pip --version; id -u"
)


@dataclass(frozen=True)
class BaseImages:
    """The local base images' names and ids, and the build arguments that select them."""

    debian: str
    python: str
    debian_id: str
    python_id: str

    @property
    def build_args(self) -> dict[str, str]:
        """``PYTHON_IMAGE`` and ``DEBIAN_IMAGE`` for the Dockerfiles' ``FROM ${...}``."""
        return {"PYTHON_IMAGE": self.python, "DEBIAN_IMAGE": self.debian}


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    """The Debian archive the host's apt uses (deb822 ``.sources`` or one-line lists)."""
    files = [*sorted(apt_dir.glob("sources.list.d/*.sources")), apt_dir / "sources.list"]
    files += sorted(apt_dir.glob("sources.list.d/*.list"))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.MULTILINE))
            if SUITE in fields.get("Suites", "").split():
                for uri in fields.get("URIs", "").split():
                    if uri.rstrip("/").endswith("/debian"):
                        return uri.rstrip("/")
        for line in text.splitlines():
            match = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
            if match and match[2] == SUITE and match[1].rstrip("/").endswith("/debian"):
                return str(match[1]).rstrip("/")
    return DEFAULT_MIRROR


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _debian_key(mirror: str) -> str:
    recipe = {
        "suite": SUITE,
        "variant": "minbase",
        "packages": DEBIAN_PACKAGES,
        "env": _CERT_ENV,
        "mirror": mirror,
        "ca_bundle": _sha256(CA_BUNDLE.read_bytes()) if CA_BUNDLE.is_file() else None,
        # The code that makes the root file system: editing it makes a new image.
        "recipe": _sha256(
            (inspect.getsource(_debootstrap) + inspect.getsource(_build_debian)).encode()
        ),
    }
    return _sha256(json.dumps(recipe, sort_keys=True).encode())


def _cached(name: str, key: str) -> str | None:
    if buildah.image_labels(name).get(KEY_LABEL) == key:
        return buildah.image_id(name)
    return None


def _apt_sources(mirror: str) -> str:
    security = mirror.rsplit("/", 1)[0] + "/debian-security"
    return (
        f"deb {mirror} {SUITE} main\n"
        f"deb {mirror} {SUITE}-updates main\n"
        f"deb {security} {SUITE}-security main\n"
    )


def _debootstrap(rootfs: Path, mirror: str, progress: Progress) -> None:
    buildah.require("debootstrap")
    progress(f"debootstrap --variant=minbase {SUITE} from {mirror} (one time, a few minutes)")
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(DEBIAN_PACKAGES)}",
        SUITE,
        str(rootfs),
        mirror,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log = rootfs / "debootstrap" / "debootstrap.log"
        tail = log.read_text()[-2000:] if log.is_file() else result.stdout[-2000:]
        raise PipelineError(
            f"debootstrap failed (exit {result.returncode}) fetching {SUITE} from {mirror}: "
            f"{result.stderr.strip()} {tail} -- check that apt-get update works on this host"
        )
    (rootfs / "etc/apt/sources.list").write_text(_apt_sources(mirror))
    if CA_BUNDLE.is_file():
        for path in (IMAGE_CA_BUNDLE, str(CA_BUNDLE)):
            target = rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(CA_BUNDLE, target)
    subprocess.run(["chroot", str(rootfs), "apt-get", "clean"], check=False)
    for leftover in ("var/lib/apt/lists", "var/cache/apt", "var/log"):
        for child in (rootfs / leftover).glob("*"):
            if child.is_file():
                child.unlink()


def _build_debian(key: str, mirror: str, progress: Progress) -> str:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flotilla-debootstrap-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _debootstrap(rootfs, mirror, progress)
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(
            ["tar", "-C", str(rootfs), "--numeric-owner", "--exclude=./dev/*",
             "--exclude=./proc/*", "--exclude=./sys/*", "-cf", str(archive), "."],
            check=True,
        )  # fmt: skip
        container = buildah.run(["from", "scratch"]).strip()
        try:
            buildah.run(["add", container, str(archive), "/"])
            config = ["config", "--cmd", "bash", "--label", f"{KEY_LABEL}={key}"]
            config += ["--label", f"org.opencontainers.image.title=debian {SUITE} (debootstrap)"]
            for env in (_PATH_ENV, *_CERT_ENV):
                config += ["--env", env]
            buildah.run([*config, container])
            image = buildah.run(["commit", "--rm", "--quiet", container, DEBIAN_IMAGE]).strip()
        except PipelineError:
            buildah.run(["rm", container])
            raise
    progress(f"{DEBIAN_IMAGE} built in {time.monotonic() - started:.0f} s")
    return image


def _build_python(key: str, progress: Progress) -> str:
    started = time.monotonic()
    progress(f"{PYTHON_IMAGE}: apt-get install {' '.join(PYTHON_PACKAGES)} (one time)")
    container = buildah.run(["from", "--pull=never", DEBIAN_IMAGE]).strip()
    try:
        run = ["run", f"--isolation={buildah.ISOLATION}", "--network", "host", container]
        buildah.run([*run, "--", "sh", "-c", _PYTHON_SETUP])
        config = ["config", "--cmd", "python3", "--label", f"{KEY_LABEL}={key}"]
        config += ["--label", "org.opencontainers.image.title=python 3.11 on debian bookworm"]
        config += ["--env", "PYTHON_VERSION=3.11"]
        # Debian's default scheme puts `pip install --prefix P` scripts in P/local/bin; the
        # official image (and the nats Dockerfile) expect P/bin, which deb_system gives.
        config += ["--env", "DEB_PYTHON_INSTALL_LAYOUT=deb_system"]
        buildah.run([*config, container])
        image = buildah.run(["commit", "--rm", "--quiet", container, PYTHON_IMAGE]).strip()
    except PipelineError:
        buildah.run(["rm", container])
        raise
    progress(f"{PYTHON_IMAGE} built in {time.monotonic() - started:.0f} s")
    return image


def ensure_base_images(progress: Progress = stderr_progress) -> BaseImages:
    """Build the local Debian and Python base images unless storage has them with their key."""
    buildah.require("buildah")
    mirror = debian_mirror()
    debian_key = _debian_key(mirror)
    debian_id = _cached(DEBIAN_IMAGE, debian_key) or _build_debian(debian_key, mirror, progress)
    recipe = f"{debian_id}\n{_PYTHON_SETUP}\n{inspect.getsource(_build_python)}"
    python_key = _sha256(recipe.encode())
    python_id = _cached(PYTHON_IMAGE, python_key) or _build_python(python_key, progress)
    return BaseImages(DEBIAN_IMAGE, PYTHON_IMAGE, debian_id, python_id)

"""The local control plane for tests: start and delete a kwok cluster, run the pinned kubectl
and helm against a kubeconfig. The fixtures in tests/e2e/cluster_fixtures.py are built on it."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = REPO_ROOT / "platform" / "cluster"
# Environment variable naming the kubeconfig of an existing cluster to test against.
KUBECONFIG_ENV = "FLOTILLA_KUBECONFIG"
# Label on every namespace the tests create, so they can be found (and only they deleted).
TEST_NAMESPACE_LABEL = "flotilla.dev/test-namespace"


class ToolError(RuntimeError):
    """A kubectl, helm or cluster.sh command failed; the message has its stderr."""

    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"{' '.join(args)} exited with {result.returncode}:\n{result.stderr.strip()}"
        )
        self.result = result


def _run(
    args: list[str],
    *,
    stdin: str = "",
    env: dict[str, str] | None = None,
    timeout: float,
    check: bool,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, input=stdin, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise ToolError(args, result)
    return result


def built_tool(binary: str) -> Path:
    """The path of a binary built by platform/cluster/build-tools.sh (never one from PATH)."""
    script = str(CLUSTER_DIR / "build-tools.sh")
    result = _run([script, "--path", binary], timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{binary} is not built: run `make cluster-tools` (platform/cluster/build-tools.sh, "
            f"about 10 minutes the first time). {result.stderr.strip()}"
        )
    return Path(result.stdout.strip())


def pinned_versions() -> dict[str, str]:
    """platform/cluster/versions.env as a dict (KUBE_VERSION, ETCD_VERSION, ...)."""
    pairs = (
        line.split("=", 1)
        for line in (CLUSTER_DIR / "versions.env").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def unique_name(prefix: str, hint: str = "") -> str:
    """A DNS-1123 label (at most 63 characters): prefix, a slug of ``hint``, a random suffix."""
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:30].strip("-")
    return "-".join(part for part in (prefix, slug, secrets.token_hex(3)) if part)


def create_test_namespace(kubectl: Kubectl, name: str) -> None:
    """Create namespace ``name``, labelled as a test's and enforcing the restricted Pod Security
    Standard."""
    kubectl.run("create", "namespace", name)
    kubectl.run(
        "label",
        "namespace",
        name,
        f"{TEST_NAMESPACE_LABEL}=true",
        "pod-security.kubernetes.io/enforce=restricted",
    )


def delete_test_namespace(kubectl: Kubectl, name: str) -> None:
    """Delete namespace ``name`` and everything in it, without waiting for it to go."""
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@dataclass(frozen=True)
class Kubectl:
    """The pinned kubectl bound to one kubeconfig."""

    binary: Path
    kubeconfig: Path

    def run(
        self, *args: str, stdin: str = "", check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl; with ``check`` a non-zero exit raises ToolError with its stderr."""
        argv = [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args]
        return _run(argv, stdin=stdin, timeout=timeout, check=check)

    def json(self, *args: str) -> Any:
        """Run kubectl with ``-o json`` and parse its output."""
        return json.loads(self.run(*args, "-o", "json").stdout)


@dataclass(frozen=True)
class Helm:
    """The pinned helm bound to one kubeconfig, with its own config, cache and data homes (so no
    repository or plugin of the user's is read)."""

    binary: Path
    kubeconfig: Path
    home: Path

    def environment(self) -> dict[str, str]:
        """The process environment of every helm call."""
        return {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }

    def run(
        self, *args: str, stdin: str = "", check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run helm with ``--kubeconfig``; with ``check`` a failure raises ToolError."""
        argv = [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args]
        return _run(argv, stdin=stdin, env=self.environment(), timeout=timeout, check=check)


@dataclass(frozen=True)
class LocalCluster:
    """A kwok cluster started by platform/cluster/cluster.sh in ``workdir`` (KWOK_WORKDIR)."""

    name: str
    workdir: Path

    @property
    def state_dir(self) -> Path:
        """kwokctl's directory of this cluster (pki, logs, pids, etcd data)."""
        return self.workdir / "clusters" / self.name

    @property
    def kubeconfig(self) -> Path:
        """The cluster's admin kubeconfig (https://127.0.0.1:<port>, client certificates)."""
        return self.state_dir / "kubeconfig.yaml"

    def _cluster_sh(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KWOK_WORKDIR": str(self.workdir)}
        argv = [str(CLUSTER_DIR / "cluster.sh"), *args]
        return _run(argv, env=env, timeout=timeout, check=True)

    @property
    def registry(self) -> str:
        """``127.0.0.1:<port>`` of the real node's registry (only a cluster with a real node)."""
        path = self.state_dir / "registry"
        if not path.is_file():
            raise RuntimeError(f"cluster {self.name} has no real node, so no registry ({path})")
        return path.read_text().strip()

    @classmethod
    def start(
        cls, workdir: Path, name: str, nodes: int = 2, *, real_node: bool = False
    ) -> LocalCluster:
        """Create the cluster and wait until its API server, ``nodes`` fake nodes and (with
        ``real_node``) the machine's real node are ready; on failure whatever was started is
        deleted again."""
        cluster = cls(name, workdir)
        args = ["create", "--name", name, "--nodes", str(nodes)]
        if real_node:
            args.append("--real-node")
        try:
            cluster._cluster_sh(*args, timeout=300)
        except BaseException:
            cluster.delete()
            raise
        return cluster

    def delete(self) -> None:
        """Stop the components and delete the cluster's state (a no-op when nothing is left)."""
        if self.state_dir.exists():
            self._cluster_sh("delete", "--name", self.name, timeout=60)

    def pids(self) -> dict[str, int]:
        """The cluster's processes by component (etcd, kube-apiserver, ..., kwok-controller)."""
        return {
            path.stem: int(path.read_text().strip())
            for path in sorted((self.state_dir / "pids").glob("*.pid"))
        }


@dataclass(frozen=True)
class KubeCluster:
    """The cluster of a test session: the local control plane the session started, or the user's
    existing cluster named by FLOTILLA_KUBECONFIG (``local`` is then None)."""

    kubeconfig: Path
    local: LocalCluster | None


def session_cluster_name() -> str:
    """A cluster name that tells which test process owns it: ``pytest-<pid>-<random>``."""
    return f"pytest-{os.getpid()}-{secrets.token_hex(2)}"


def reap_stale_clusters(workdir: Path) -> list[str]:
    """Delete the test clusters in ``workdir`` whose pytest process is gone (e.g. killed before
    its teardown ran); return their names."""
    reaped = []
    for state in sorted((workdir / "clusters").glob("pytest-*")):
        match = re.fullmatch(r"pytest-(\d+)-[0-9a-f]+", state.name)
        if match is None or _alive(int(match.group(1))):
            continue
        LocalCluster(state.name, workdir).delete()
        reaped.append(state.name)
    return reaped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def listening_addresses(pid: int) -> set[tuple[IPAddress, int]]:
    """The TCP (IPv4 and IPv6) addresses and ports process ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    found: set[tuple[IPAddress, int]] = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.add((_proc_net_address(address), int(port, 16)))
    return found


def _proc_net_address(hex_address: str) -> IPAddress:
    """/proc/net/tcp{,6} print addresses as 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


class KubectlWatch:
    """``kubectl get ... --watch -o json`` in the background, recording every version of the
    watched objects in the order the API server sent them. Use as a context manager: entering
    returns once the initial list has arrived (at least one object must exist), so no later
    change is missed."""

    def __init__(self, kubectl: Kubectl, *args: str) -> None:
        self._argv = [
            str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig),
            "get", *args, "--watch", "--output", "json",
        ]  # fmt: skip
        self.objects: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> KubectlWatch:
        self._process = subprocess.Popen(
            self._argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        self._reader.start()
        try:
            self.wait_for(lambda objects: bool(objects), timeout=30, what="initial list")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        assert self._reader is not None
        self._process.terminate()
        self._process.wait(timeout=10)
        self._reader.join(timeout=10)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        for line in process.stdout:
            buffer += line
            if not line.startswith("}"):  # objects are pretty-printed: "}" ends one
                continue
            obj, end = decoder.raw_decode(buffer.lstrip())
            buffer = buffer.lstrip()[end:]
            with self._changed:
                self.objects.append(obj)
                self._changed.notify_all()

    def wait_for(
        self, check: Callable[[list[dict[str, Any]]], bool], *, timeout: float, what: str
    ) -> None:
        """Block until ``check(objects)`` holds; fail after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: check(self.objects), timeout=timeout):
                stderr = ""
                if self._process is not None and self._process.poll() is not None:
                    assert self._process.stderr is not None
                    stderr = self._process.stderr.read()
                raise AssertionError(f"watch {' '.join(self._argv[3:])}: no {what}. {stderr}")

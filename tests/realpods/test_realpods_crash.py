"""The real node's life cycle on this machine: after a kill -9 of the whole stack `cluster.sh up`
works again, and `cluster.sh down` leaves no bridge, veth, network namespace, iptables rule,
mount, cgroup or process behind (platform/cluster/node.sh leftovers)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipelines_cli.imagebuild import ensure_image
from tests.e2e.clustersupport import CLUSTER_DIR, REPO_ROOT, Kubectl, built_tool
from tests.realpods.realcluster import RealCluster, cluster_name, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.real_node,
    pytest.mark.own_real_cluster,
    pytest.mark.timeout(600),
]

WORKLOAD = """
apiVersion: v1
kind: Pod
metadata:
  name: sleeper
  namespace: default
  labels: {app: sleeper}
spec:
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 65535
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: pause
      image: registry.k8s.io/pause:3.10.1
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      resources: {limits: {cpu: 50m, memory: 16Mi}}
      volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes:
    - {name: scratch, emptyDir: {medium: Memory, sizeLimit: 1Mi}}
---
apiVersion: v1
kind: Service
metadata:
  name: sleeper
  namespace: default
spec:
  type: NodePort
  selector: {app: sleeper}
  ports: [{port: 80, targetPort: 8080}]
"""


def leftovers() -> str:
    result = subprocess.run(
        [str(CLUSTER_DIR / "node.sh"), "leftovers"], capture_output=True, text=True, check=False
    )
    return result.stdout


def processes_naming(marker: str) -> dict[int, str]:
    """Processes whose command line contains ``marker`` (the cluster's run directory)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found[int(proc.name)] = cmdline
    return found


def run_workload(cluster: RealCluster) -> Kubectl:
    kubectl = Kubectl(built_tool("kubectl"), cluster.kubeconfig)
    kubectl.run("apply", "-f", "-", stdin=WORKLOAD)
    kubectl.run("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=90s", timeout=100)
    return kubectl


def test_a_killed_stack_comes_back_up_and_down_leaves_nothing_behind(tmp_path: Path) -> None:
    before = leftovers()
    assert before == "", f"the machine is not clean before the test:\n{before}"
    run_dir = tmp_path / "cluster"
    cluster = RealCluster.up(run_dir, "crash")
    try:
        ensure_image(REPO_ROOT, "pause", cluster.registry)
        run_workload(cluster)
        assert "link: bridge flotilla0" in leftovers()

        # kill -9 of the whole stack: control plane, node, runtime shims (the containers
        # themselves go on running, as after a real crash).
        stack = processes_naming(str(run_dir))
        assert len(stack) >= 8, stack
        for pid in stack:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not processes_naming(str(run_dir)), timeout=20, what="stack gone")
        assert "link: bridge flotilla0" in leftovers()

        began = time.monotonic()
        cluster = RealCluster.up(run_dir, cluster_name(run_dir))
        restart = time.monotonic() - began
        run_workload(cluster)
        print(f"cluster.sh up after kill -9: {restart:.1f} s")
    finally:
        cluster.down()
    assert leftovers() == ""
    assert processes_naming(str(run_dir)) == {}

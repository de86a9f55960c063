"""The real node's configuration files (platform/cluster/node/templates), rendered without a node.

node.sh wrote them through heredocs until they became templates; `node_config/` holds what those
heredocs wrote for the sample settings below (the test's directory stands in as @ROOT@), so a
template that renders one byte differently fails here, not on a real node.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "platform/cluster/node"
TEMPLATES = NODE_DIR / "templates"
EXPECTED = Path(__file__).resolve().parent / "node_config"

# The settings node.sh has and those cmd_up chooses, as sample values. The run directory's name
# has a space, '&', a backslash and '$': a value is copied as it is, never expanded or escaped.
WRITE_ALL = r"""
set -euo pipefail
source "$NODE_PARTS/render.sh"
source "$NODE_PARTS/config.sh"
declare -A BIN_DIRS=([cni]=/cache/flotilla/cni-v1.8.0/bin)
d="$ROOT/run dir & \1 \$x/node"
SOCKET=/run/flotilla-node/containerd.sock
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
RUNC=/usr/sbin/runc
REGISTRY=127.0.0.1:35001
BRIDGE=flotilla0
POD_CIDR=198.19.128.0/20
NODE_IP=198.19.128.1
KUBELET_PORT=35002; KUBELET_HEALTHZ_PORT=35003
PROXY_HEALTHZ_PORT=35004; PROXY_METRICS_PORT=35005
COREDNS_HEALTH_PORT=35006; COREDNS_READY_PORT=35007
CLIENT_CA="$ROOT/cluster/pki/ca.crt"
CGROUP_ROOT=flotilla-node
KUBECONFIG_FILE="$ROOT/cluster/kubeconfig"
NODE_NAME=flotilla-node
REGISTRY_DATA="$ROOT/cache/registry"
VOLUMES=10
mkdir -p "$d"/{logs,pids,containerd,kubelet,kube-proxy,coredns,registry,pods-logs,runc}
write_configs "$d"
volumes_manifest "$d" > "$ROOT/volumes.yaml"
"""


def bash(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with bash and only ``env`` (plus PATH) in its environment."""
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=False, timeout=60,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
    )  # fmt: skip


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_templates_render_what_the_heredocs_wrote(tmp_path: Path) -> None:
    result = bash(WRITE_ALL, NODE_PARTS=str(NODE_DIR), ROOT=str(tmp_path))
    assert result.returncode == 0, result.stderr
    node = tmp_path / "run dir & \\1 $x" / "node"
    written = {**files_under(node), "volumes.yaml": (tmp_path / "volumes.yaml").read_bytes()}
    root = str(tmp_path).encode()
    written = {path: data.replace(root, b"@ROOT@") for path, data in written.items()}
    expected = files_under(EXPECTED)
    assert sorted(written) == sorted(expected)
    for path, data in expected.items():
        assert written[path] == data, f"{path} differs from tests/cluster/node_config/{path}"


def test_every_template_is_rendered_by_the_writers() -> None:
    config = (NODE_DIR / "config.sh").read_text()
    templates = sorted(p.name.removesuffix(".tmpl") for p in TEMPLATES.glob("*.tmpl"))
    assert templates
    unused = [n for n in templates if f" {n} " not in config and f"/{n}.tmpl" not in config]
    assert not unused, f"templates no writer renders: {unused}"


def render(tmp_path: Path, template: str, *values: str) -> subprocess.CompletedProcess[str]:
    """render_template on a template with the text ``template``."""
    path = tmp_path / "t.tmpl"
    path.write_text(template)
    script = 'source "$NODE_PARTS/render.sh"; render_template "$TEMPLATE" "$@"'
    env = {"PATH": "/usr/bin:/bin", "NODE_PARTS": str(NODE_DIR), "TEMPLATE": str(path)}
    return subprocess.run(
        ["bash", "-c", script, "render", *values], capture_output=True, text=True, check=False,
        timeout=30, env=env,
    )  # fmt: skip


def test_a_value_is_copied_as_it_is_and_trailing_newlines_stay(tmp_path: Path) -> None:
    result = render(tmp_path, "a=${A}\nb=${B}${A}\n\n", "A=&\\1 ${B} $(id)", "B=")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a=&\\1 ${B} $(id)\nb=&\\1 ${B} $(id)\n\n"


@pytest.mark.parametrize(
    ("template", "values", "reason"),
    [
        ("x=${X} y=${Y}\n", ["X=1"], "no value for ${Y} (pass Y=VALUE)"),
        ("x=${X}\n", ["X=1", "Z=2"], "no placeholder ${Z} for the value Z"),
        ("x=$X\n", [], "a '$' outside a ${NAME} placeholder"),
        ("x=${X:-1}\n", ["X=1"], "a '$' outside a ${NAME} placeholder"),
        ("x=${X}\n", ["X"], "argument 'X' is not NAME=VALUE"),
        ("x=${X}\n", ["1X=1"], "argument '1X=1' is not NAME=VALUE"),
    ],
)
def test_a_template_and_values_that_do_not_match_are_refused(
    tmp_path: Path, template: str, values: list[str], reason: str
) -> None:
    result = render(tmp_path, template, *values)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"render: template {tmp_path / 't.tmpl'}: ")
    assert reason in result.stderr


def test_a_missing_template_is_refused(tmp_path: Path) -> None:
    script = 'source "$NODE_PARTS/render.sh"; render_template "$NODE_PARTS/templates/nope.tmpl"'
    result = bash(script, NODE_PARTS=str(NODE_DIR))
    assert result.returncode == 1
    assert "nope.tmpl: no such readable file" in result.stderr


def test_a_template_error_stops_the_writers(tmp_path: Path) -> None:
    # Under node.sh's set -e a writer's render error ends `up`: no config file is left half-filled
    # for a process to start on.
    parts = tmp_path / "node"
    shutil.copytree(NODE_DIR, parts)
    conflist = parts / "templates/cni.conflist.tmpl"
    conflist.write_text(conflist.read_text().replace("${BRIDGE}", "${BRIDGE_NAME}"))
    result = bash(WRITE_ALL, NODE_PARTS=str(parts), ROOT=str(tmp_path))
    assert result.returncode == 1
    assert "cni.conflist.tmpl: no value for ${BRIDGE_NAME}" in result.stderr
    assert not (tmp_path / "run dir & \\1 $x/node/kubelet/config.yaml").exists()


def test_node_sh_sources_its_parts_and_prints_its_usage() -> None:
    result = subprocess.run(
        [str(REPO / "platform/cluster/node.sh"), "--help"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for command in ("up", "down", "status", "leftovers", "registry"):
        assert f"node.sh {command} " in result.stdout


def test_the_node_scripts_pass_shellcheck() -> None:
    # Each part alone and node.sh with the parts it sources (-x), as a CI shellcheck would.
    found = subprocess.run(
        [str(REPO / "pipelines/tools.sh"), "--path", "shellcheck"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    if found.returncode != 0:
        pytest.fail(
            f"shellcheck is not installed: run `pipelines/tools.sh shellcheck` ({found.stderr})"
        )
    scripts = ["node.sh", *sorted(f"node/{p.name}" for p in NODE_DIR.glob("*.sh"))]
    result = subprocess.run(
        [found.stdout.strip(), "-x", *scripts], cwd=REPO / "platform/cluster",
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout

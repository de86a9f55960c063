"""Chart hygiene: helm lint --strict, the vendored library, generated schemas, helper comments."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chartsupport import (
    CHARTS,
    DEPENDENCY_CHARTS,
    LIBRARY,
    Helm,
    production_values,
    scenario_values,
    walk_strings,
)

ALL_CHARTS = (*CHARTS, *DEPENDENCY_CHARTS)
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("values", ["defaults", "production"])
def test_lint_strict(helm: Helm, chart: str, values: str) -> None:
    chosen = (
        scenario_values(chart, "defaults") if values == "defaults" else production_values(chart)
    )
    output = helm.run(
        "lint", "--strict", str(helm.charts_dir / chart), "--values", "-", stdin=yaml.dump(chosen)
    )
    assert "0 chart(s) failed" in output


def test_lint_strict_library(helm: Helm) -> None:
    output = helm.run("lint", "--strict", str(helm.charts_dir / LIBRARY))
    assert "0 chart(s) failed" in output


def load_yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.mark.parametrize("chart", ALL_CHARTS)
def test_chart_metadata(charts_dir: Path, chart: str) -> None:
    meta = load_yaml(charts_dir / chart / "Chart.yaml")
    library = load_yaml(charts_dir / LIBRARY / "Chart.yaml")
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == chart
    assert meta["type"] == "application"
    assert SEMVER.match(meta["version"]), meta["version"]
    # The dependency charts carry their server's version (nats 2.15.1, PostgreSQL 15).
    app_version = re.compile(r"^\d+(\.\d+){0,2}$") if chart in DEPENDENCY_CHARTS else SEMVER
    assert app_version.match(str(meta["appVersion"])), meta["appVersion"]
    assert meta["dependencies"] == [
        {"name": LIBRARY, "version": library["version"], "repository": f"file://../{LIBRARY}"}
    ]
    lock = load_yaml(charts_dir / chart / "Chart.lock")
    assert [(d["name"], d["version"]) for d in lock["dependencies"]] == [
        (LIBRARY, library["version"])
    ], f"charts/{chart}/Chart.lock is stale; run charts/vendor-lib.sh"


def test_library_chart_metadata(charts_dir: Path) -> None:
    meta = load_yaml(charts_dir / LIBRARY / "Chart.yaml")
    assert meta["type"] == "library"
    assert SEMVER.match(meta["version"])


def library_files(charts_dir: Path) -> dict[str, bytes]:
    root = charts_dir / LIBRARY
    return {
        f"{LIBRARY}/{path.relative_to(root)}": path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("chart", ALL_CHARTS)
def test_vendored_library_matches_source(charts_dir: Path, chart: str) -> None:
    """The committed charts/<chart>/charts/flotilla-lib-*.tgz is exactly charts/flotilla-lib."""
    version = load_yaml(charts_dir / LIBRARY / "Chart.yaml")["version"]
    vendored = sorted((charts_dir / chart / "charts").iterdir())
    tarball = charts_dir / chart / "charts" / f"{LIBRARY}-{version}.tgz"
    assert vendored == [tarball], f"charts/{chart}/charts must hold only {tarball.name}"
    with tarfile.open(tarball) as archive:
        packaged: dict[str, bytes] = {}
        for member in archive.getmembers():
            extracted = archive.extractfile(member)
            if extracted is not None:
                packaged[member.name] = extracted.read()
    source = library_files(charts_dir)
    # helm package re-serialises Chart.yaml, so that file is compared as data.
    chart_yaml = f"{LIBRARY}/Chart.yaml"
    assert yaml.safe_load(packaged.pop(chart_yaml, b"")) == yaml.safe_load(source.pop(chart_yaml))
    assert packaged == source, (
        f"charts/{chart}/charts/{tarball.name} differs from charts/{LIBRARY}; "
        "run charts/vendor-lib.sh and commit the result"
    )


def test_schemas_are_generated(repo_root: Path) -> None:
    """Every values.schema.json is the output of charts/schemagen (python -m charts.schemagen)."""
    result = subprocess.run(
        [sys.executable, "-m", "charts.schemagen", "--check"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def template_files(charts_dir: Path) -> list[Path]:
    return sorted(charts_dir.glob("*/templates/_*.tpl"))


def test_every_helper_has_a_usage_comment(charts_dir: Path) -> None:
    """Each named template is preceded by a one-line `{{- /* Usage: ... */ -}}` comment."""
    missing = []
    for path in template_files(charts_dir):
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            match = re.match(r'^\{\{- define "([^"]+)" -\}\}$', line)
            if not match:
                continue
            previous = lines[index - 1] if index else ""
            if not re.match(r"^\{\{- /\* Usage: .+ \*/ -\}\}$", previous):
                missing.append(f"{path.relative_to(charts_dir)}: {match.group(1)}")
    assert not missing, f"helpers without a one-line usage comment: {missing}"
    assert len(template_files(charts_dir)) >= 10


def test_library_helpers_are_namespaced(charts_dir: Path) -> None:
    names = re.findall(
        r'define "([^"]+)"', "".join(p.read_text() for p in template_files(charts_dir))
    )
    # Chart-local helpers are namespaced by their chart; everything shared is flotilla-lib's.
    local = tuple(f"{chart}." for chart in ("deployer", *DEPENDENCY_CHARTS))
    library = [n for n in names if not n.endswith(".profile") and not n.startswith(local)]
    assert library, "no helpers found"
    assert all(n.startswith("flotilla-lib.") for n in library), library


SECRETISH = re.compile(r"password|secret|token|credential|private|apikey|signing", re.IGNORECASE)


@pytest.mark.parametrize("chart", ALL_CHARTS)
def test_values_hold_no_secret(charts_dir: Path, chart: str) -> None:
    """Secret-looking keys only name Secrets and their keys; no value is a secret."""
    values = load_yaml(charts_dir / chart / "values.yaml")
    local = charts_dir / chart / "values-local.yaml"
    if local.exists():
        values = {"values": values, "values-local": load_yaml(local)}
    offenders = [
        (path, value)
        for path, value in walk_strings(values)
        if SECRETISH.search(path.split(".")[-1])
        and not re.search(r"(existingSecret|Key)$", path)
        and value
    ]
    assert not offenders, f"values.yaml of {chart} holds secret-looking values: {offenders}"
    credentials_in_url = [
        v for _, v in walk_strings(values) if re.search(r"://[^/@\s]+:[^@\s]+@", v)
    ]
    assert not credentials_in_url

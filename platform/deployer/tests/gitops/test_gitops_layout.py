"""The desired state's files: one folder per environment and service, chart copies named by
their content, and the tidying that keeps an environment's list and the charts in step."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml

from deployer.gitops.apply import tidy
from deployer.gitops.charts import ChartCopies, chart_digest
from deployer.gitops.layout import ServiceRelease, chart_path_of, service_files

REPO = Path(__file__).resolve().parents[4]
ORDER_CHART = REPO / "charts" / "order"


def release(environment: str = "prod", chart: str = "charts/order/0.1.0-aaa") -> ServiceRelease:
    return ServiceRelease(
        environment=environment,
        service="order",
        chart_path=PurePosixPath(chart),
        values={"image": {"repository": "r/order", "tag": "1.2.0-abc1234", "digest": ""}},
        deployment_id="d-1",
        timeout_seconds=90,
    )


def test_a_release_folder_holds_the_helm_release_its_values_and_their_kustomization() -> None:
    files = {str(path): yaml.safe_load(text) for path, text in service_files(release()).items()}
    folder = "environments/prod/order"
    assert sorted(files) == [
        f"{folder}/helmrelease.yaml",
        f"{folder}/kustomization.yaml",
        f"{folder}/kustomizeconfig.yaml",
        f"{folder}/values.yaml",
    ]
    helm_release = files[f"{folder}/helmrelease.yaml"]
    spec = helm_release["spec"]
    assert helm_release["metadata"]["annotations"] == {"flotilla.dev/deployment": "d-1"}
    assert spec["chart"]["spec"]["chart"] == "./charts/order/0.1.0-aaa"
    assert spec["chart"]["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flotilla"}
    assert spec["timeout"] == "90s"
    assert spec["valuesFrom"] == [
        {"kind": "ConfigMap", "name": "order-values", "valuesKey": "values.yaml"}
    ]
    assert spec["upgrade"]["remediation"]["strategy"] == "rollback"
    assert files[f"{folder}/values.yaml"]["image"]["tag"] == "1.2.0-abc1234"
    generator = files[f"{folder}/kustomization.yaml"]["configMapGenerator"]
    assert generator == [{"name": "order-values", "files": ["values.yaml"]}]
    assert chart_path_of(service_files(release())[PurePosixPath(f"{folder}/helmrelease.yaml")]) == (
        PurePosixPath("charts/order/0.1.0-aaa")
    )


def test_a_chart_copy_carries_its_digest_in_its_version_and_folder(tmp_path: Path) -> None:
    copies = ChartCopies(tmp_path / "copies")
    copy = copies.prepare(ORDER_CHART)
    short = chart_digest(ORDER_CHART)[:12]
    assert copy.folder == PurePosixPath(f"charts/order/0.1.0-{short}")
    assert copy.version == f"0.1.0+{short}"
    chart_yaml = yaml.safe_load((copy.local / "Chart.yaml").read_text())
    assert chart_yaml["version"] == f"0.1.0+{short}"
    assert (copy.local / "charts").is_dir()  # the vendored library goes along
    assert copies.prepare(ORDER_CHART) == copy  # the same content: the same copy


def test_a_chart_edited_without_a_version_bump_gets_a_new_copy(tmp_path: Path) -> None:
    chart = tmp_path / "order"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: order\nversion: 0.1.0\n")
    first = ChartCopies(tmp_path / "copies").prepare(chart)
    (chart / "values.yaml").write_text("replicaCount: 2\n")
    second = ChartCopies(tmp_path / "copies").prepare(chart)
    assert first.folder != second.folder
    assert first.local.is_dir()
    assert second.local.is_dir()


def test_tidy_lists_the_service_folders_and_drops_charts_no_release_names(tmp_path: Path) -> None:
    for path, text in service_files(release(chart="charts/order/0.1.0-new")).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    for copy in ("0.1.0-new", "0.1.0-old"):
        (tmp_path / "charts" / "order" / copy).mkdir(parents=True)
    (tmp_path / "environments" / "prod" / "notes").mkdir()  # not a service folder
    tidy(tmp_path, "prod")
    listing = yaml.safe_load((tmp_path / "environments/prod/kustomization.yaml").read_text())
    assert listing["resources"] == ["order"]
    assert sorted(p.name for p in (tmp_path / "charts" / "order").iterdir()) == ["0.1.0-new"]

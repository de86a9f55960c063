"""One owner per naming rule (kit.naming): CI (pipelines), the deployer and the charts' schemas
accept and refuse the same image tags, repositories and service names, because each of them uses
the owner's rule instead of a copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy_contract.events import SERVICE_NAME, service_from_subject
from deploy_contract.images import ImageRejectedError, parse_image
from kit import layout, naming
from pipelines_cli.build import image_reference
from pipelines_cli.deployables import Deployable, discover
from pipelines_cli.errors import PipelineError, TagError
from pipelines_cli.tagging import TAG_PATTERN, make_tag
from tests.charts.chartsupport import CHARTS, Helm, HelmError, minimal_values

GOOD_TAGS = ("1.4.2-a8f3d21", "v0.1.0-0123456789abcdef", "2.0.0-rc.1-a8f3d21")
BAD_TAGS = (
    "latest",
    "1.4.2",
    "1.4-a8f3d21",
    "01.4.2-a8f3d21",
    "1.4.2-A8F3D21",
    "1.4.2-a8f3d",
    "1.4.2-a8f3d21\n",
    "1.٤.2-a8f3d21",  # an Arabic-Indic digit: \d would take it, [0-9] does not
)
GOOD_REGISTRIES = ("ghcr.io/acme", "localhost:5000", "registry.local", "127.0.0.1:5001/a/b")
BAD_REGISTRIES = ("ghcr.io/Acme", "-bad.example/x", "ghcr.io//acme", "a b")
GOOD_NAMES = ("order", "stock-level", "a" * 40)
BAD_NAMES = ("Order", "1order", "-order", "order_history", "a" * 41, "")


def pipelines_accepts_tag(tag: str) -> bool:
    return TAG_PATTERN.fullmatch(tag) is not None


def deployer_accepts_tag(tag: str) -> bool:
    try:
        parse_image(f"registry.local/order-service:{tag}")
    except ImageRejectedError:
        return False
    return True


def helm_accepts(helm: Helm, image: dict[str, str]) -> bool:
    values = minimal_values("order")
    values["image"] = {**values["image"], **image}
    try:
        helm.template_text("order", values)
    except HelmError:
        return False
    return True


@pytest.mark.parametrize("tag", GOOD_TAGS + BAD_TAGS)
def test_ci_the_deployer_and_the_charts_agree_on_every_tag(helm: Helm, tag: str) -> None:
    expected = tag in GOOD_TAGS
    assert naming.is_image_tag(tag) is expected
    assert pipelines_accepts_tag(tag) is expected
    assert deployer_accepts_tag(tag) is expected
    assert helm_accepts(helm, {"tag": tag}) is expected


def test_make_tag_refuses_what_the_rule_refuses() -> None:
    assert make_tag("1.4.2", "a8f3d21" + "0" * 33) == "1.4.2-a8f3d21"
    with pytest.raises(TagError, match=r"'1\.4' is not MAJOR\.MINOR\.PATCH"):
        make_tag("1.4", "a8f3d21")


@pytest.mark.parametrize("registry", GOOD_REGISTRIES + BAD_REGISTRIES)
def test_ci_the_deployer_and_the_charts_agree_on_every_repository(
    helm: Helm, registry: str
) -> None:
    expected = registry in GOOD_REGISTRIES
    order = Deployable("order", "services/order")
    try:
        reference = image_reference(registry, order, "1.4.2-a8f3d21")
    except PipelineError:
        pipelines = False
    else:
        pipelines = True
        assert reference == f"{registry}/order-service:1.4.2-a8f3d21"
    assert pipelines is expected
    repository = f"{registry}/order-service"
    assert naming.is_image_repository(repository) is expected
    assert deployer_accepts_tag_of(repository) is expected
    assert helm_accepts(helm, {"repository": repository}) is expected


def deployer_accepts_tag_of(repository: str) -> bool:
    try:
        parse_image(f"{repository}:1.4.2-a8f3d21")
    except ImageRejectedError:
        return False
    return True


@pytest.mark.parametrize("name", GOOD_NAMES + BAD_NAMES)
def test_ci_and_the_deployer_agree_on_every_service_name(tmp_path: Path, name: str) -> None:
    expected = name in GOOD_NAMES
    assert naming.is_service_name(name) is expected
    assert SERVICE_NAME == naming.SERVICE_NAME
    assert (service_from_subject(f"pipeline.artifact.{name}") == name) is expected
    if name:
        (tmp_path / "services" / name).mkdir(parents=True)
        (tmp_path / "services" / name / "pyproject.toml").write_text("[project]\n")
        assert (name in discover(tmp_path)) is expected


def test_every_chart_schema_holds_the_owners_patterns() -> None:
    charts = Path(__file__).parents[2] / "charts"
    assert set(layout.service_names()) <= set(CHARTS)
    for chart in CHARTS:
        schema = json.loads((charts / chart / "values.schema.json").read_text())
        image = schema["properties"]["image"]["properties"]
        assert image["tag"]["pattern"] == naming.IMAGE_TAG, chart
        assert image["repository"]["pattern"] == naming.IMAGE_REPOSITORY, chart
        assert image["digest"]["pattern"] == "^$|" + naming.IMAGE_DIGEST, chart


def test_the_errors_say_what_to_do() -> None:
    with pytest.raises(naming.NamingError, match="mutable"):
        naming.check_image_tag("latest")
    with pytest.raises(naming.NamingError, match=r"e\.g\. 1\.4\.2-a8f3d21"):
        naming.check_image_tag("1.4.2")
    with pytest.raises(naming.NamingError, match="localhost:5000"):
        naming.check_registry("Bad Registry")
    with pytest.raises(naming.NamingError, match="stock-level"):
        naming.check_service_name("Stock_Level")
    parts = naming.check_image_tag("v2.0.0-rc.1-a8f3d21")
    assert parts == naming.TagParts(2, 0, 0, "rc.1", "a8f3d21")

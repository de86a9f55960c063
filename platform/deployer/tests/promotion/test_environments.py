"""The environments configuration: what it accepts, and what it refuses naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.intake.checks import RejectedError
from deployer.promotion.environments import EnvironmentsError, EnvironmentSpec, load_environments

ALONE = EnvironmentSpec(name="development", namespace="flotilla")
CHAIN = """
- {name: prod, namespace: flotilla-prod, upstream: staging, promotion: {approval: true}}
- {name: dev, namespace: flotilla-dev}
- {name: staging, namespace: flotilla-staging, upstream: dev, promotion: {soakSeconds: 60}}
- {name: prod-us, namespace: flotilla-prod-us, upstream: staging, kubeContext: us-east}
"""


def test_without_a_configuration_one_environment_is_served() -> None:
    environments = load_environments(None, None, default=ALONE)
    assert environments.names == ["development"]
    assert environments.entry == ALONE


def test_a_chain_is_ordered_upstream_first_and_may_branch(tmp_path: Path) -> None:
    file = tmp_path / "environments.yaml"
    file.write_text(CHAIN)
    environments = load_environments(None, file, default=ALONE)
    assert environments.names == ["dev", "staging", "prod", "prod-us"]
    assert environments.entry.name == "dev"
    assert [s.name for s in environments.downstream("staging")] == ["prod", "prod-us"]
    assert environments.get("prod").promotion.approval is True
    assert environments.get("prod-us").kube_context == "us-east"
    with pytest.raises(
        RejectedError,
        match="unknown environment 'qa': known environments are dev, staging, prod, prod-us",
    ):
        environments.get("qa")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- {name: dev, namespace: a}\n- {name: dev, namespace: b, upstream: dev}",
            "unique: dev repeated",
        ),
        (
            "- {name: a, namespace: a}\n- {name: b, namespace: b}",
            "exactly one environment must have no upstream",
        ),
        (
            "- {name: a, namespace: a}\n- {name: b, namespace: b, upstream: c}",
            "b: upstream 'c' is not an environment",
        ),
        (
            "- {name: a, namespace: a}\n- {name: b, namespace: b, upstream: c}\n"
            "- {name: c, namespace: c, upstream: b}",
            "its upstreams loop back",
        ),
        (
            "- {name: a, namespace: a, promotion: {approval: true}}",
            "a: promotion rules need an upstream",
        ),
        (
            "- {name: a, namespace: a, soak: 3}",
            "environments.0.soak: Extra inputs are not permitted",
        ),
        ("- {name: Prod, namespace: a}", "environments.0.name"),
        (
            "- {name: a, namespace: a}\n- {name: b, namespace: b, upstream: a, promotion: "
            "{freeze: [{name: w, timezone: Europe/Berlin, start: '2027-01-01T18:00', "
            "end: '2027-01-04T08:00', rrule: 'FREQ=SOMETIMES'}]}}",
            "environments.1.promotion.freeze.0.rrule",
        ),
        ("- {name: a, namespace: a}\n- [", "is not YAML or JSON"),
        ("- {name: a, namespace: a, mode: gitops}", "a: mode gitops needs a gitops block"),
        (
            "- {name: a, namespace: a, gitops: {repository: 'https://git.example/p.git'}}",
            "a: a gitops block needs mode: gitops",
        ),
        (
            "- {name: a, namespace: a, mode: gitops, gitops: "
            "{repository: 'https://ci:s3cret@git.example/p.git'}}",
            "the URL carries a password",
        ),
        (
            "- {name: a, namespace: a, mode: gitops, gitops: {repository: 'git.example/p.git'}}",
            "environments.0.gitops.repository",
        ),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(EnvironmentsError, match="in DEPLOYER_ENVIRONMENTS") as refused:
        load_environments(text, None, default=ALONE)
    assert message in str(refused.value)


def test_a_gitops_environment_names_its_repository_and_flux_its_own_url() -> None:
    text = (
        "- {name: dev, namespace: dev}\n"
        "- {name: prod, namespace: prod, upstream: dev, mode: gitops, gitops: "
        "{repository: 'https://git.example/p.git', fluxRepository: 'http://git.flux/p.git', "
        "secretRef: git-read}}"
    )
    prod = load_environments(text, None, default=ALONE).get("prod")
    assert prod.mode == "gitops"
    assert prod.gitops is not None
    assert prod.gitops.source_url == "http://git.flux/p.git"
    assert (prod.gitops.branch, prod.gitops.secret_ref) == ("main", "git-read")


def test_text_and_file_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentsError, match="not both"):
        load_environments(CHAIN, tmp_path / "x.yaml", default=ALONE)

import pytest

from deploy_contract.images import ImageRejectedError, parse_image


def test_an_immutable_tag_is_parsed() -> None:
    image = parse_image("registry.example:5000/team/order-service:1.4.2-a8f3d21")
    assert image.repository == "registry.example:5000/team/order-service"
    assert image.tag == "1.4.2-a8f3d21"
    assert image.commit == "a8f3d21"
    assert str(image.version) == "1.4.2"
    assert image.digest is None


def test_a_digest_may_pin_the_tag() -> None:
    digest = "sha256:" + "ab" * 32
    image = parse_image(f"order-service:2.0.0-rc.1-a8f3d21@{digest}")
    assert image.digest == digest
    assert str(image.version) == "2.0.0-rc.1"


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("order-service:latest", "mutable"),
        ("order-service", "no tag"),
        ("order-service:", "not <semver>-<git sha>"),
        ("order-service:1.4.2", "not <semver>-<git sha>"),
        ("order-service:main-a8f3d21", "not <semver>-<git sha>"),
        ("order-service@sha256:" + "ab" * 32, "digest but no tag"),
        ("order-service:1.4.2-a8f3d21@sha256:short", "64 hex"),
        ("Order_Service:1.4.2-a8f3d21", "not a valid OCI name"),
    ],
)
def test_mutable_or_malformed_references_are_refused(reference: str, reason: str) -> None:
    with pytest.raises(ImageRejectedError, match=reason):
        parse_image(reference)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.4.2-aaaaaaa", "1.4.10-aaaaaaa"),
        ("1.9.9-aaaaaaa", "2.0.0-aaaaaaa"),
        ("2.0.0-rc.1-aaaaaaa", "2.0.0-aaaaaaa"),
        ("2.0.0-rc.2-aaaaaaa", "2.0.0-rc.10-aaaaaaa"),
        ("2.0.0-alpha-aaaaaaa", "2.0.0-beta-aaaaaaa"),
    ],
)
def test_versions_follow_semver_precedence(older: str, newer: str) -> None:
    assert parse_image(f"x:{older}").is_older_than(parse_image(f"x:{newer}"))
    assert not parse_image(f"x:{newer}").is_older_than(parse_image(f"x:{older}"))

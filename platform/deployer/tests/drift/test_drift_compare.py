"""Drift as pure comparisons: which fields drifted, ignored pointers, the rules."""

from __future__ import annotations

from typing import Any

import pytest

from deployer.drift.compare import drifted_fields, kept_as_live, without_pointer
from deployer.drift.config import IgnoreRule, load_drift_config

DEPLOYMENT: dict[str, Any] = {
    "kind": "Deployment",
    "metadata": {"name": "order"},
    "spec": {
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "order", "image": "order:1.0.0-aaaaaaa"}]}},
    },
}


def with_(path: list[Any], value: Any) -> dict[str, Any]:
    import copy

    obj = copy.deepcopy(DEPLOYMENT)
    target = obj
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return obj


def test_drift_names_the_field_and_both_values() -> None:
    live = with_(["spec", "template", "spec", "containers"], [{"name": "order", "image": "x:hand"}])
    [field] = drifted_fields(live, DEPLOYMENT, [])
    assert field.object == "Deployment/order"
    assert field.path == "spec.template.spec.containers[order].image"
    assert (field.before, field.after) == ("x:hand", "order:1.0.0-aaaaaaa")
    assert drifted_fields(DEPLOYMENT, DEPLOYMENT, []) == []


def test_a_deleted_object_is_drift() -> None:
    [field] = drifted_fields(None, DEPLOYMENT, [])
    assert (field.object, field.before, field.after) == ("Deployment/order", None, "present")


def test_ignored_pointers_are_not_drift_and_stay_live_when_corrected() -> None:
    scaled = with_(["spec", "replicas"], 5)
    replicas = IgnoreRule(paths=["/spec/replicas"], kind="Deployment")
    assert drifted_fields(scaled, DEPLOYMENT, [replicas]) == []
    assert drifted_fields(scaled, DEPLOYMENT, [IgnoreRule(paths=["/spec/replicas"], kind="Job")])
    assert kept_as_live(DEPLOYMENT, scaled, [replicas])["spec"]["replicas"] == 5
    assert DEPLOYMENT["spec"]["replicas"] == 2  # pure: the manifest object is not modified


def test_json_pointers_follow_rfc_6901() -> None:
    obj = {"metadata": {"annotations": {"example.com/a": "1", "b": "2"}}, "items": [1, 2, 3]}
    assert without_pointer(obj, "/metadata/annotations/example.com~1a") == {
        "metadata": {"annotations": {"b": "2"}},
        "items": [1, 2, 3],
    }
    assert without_pointer(obj, "/items/1")["items"] == [1, 3]
    assert without_pointer(obj, "/missing/path") == obj
    assert without_pointer(obj, "") == obj


def test_drift_config_is_checked_with_clear_errors() -> None:
    config = load_drift_config(
        '{"default": {"mode": "warn"}, "services": {"order": {"mode": "correct", '
        '"ignore": [{"paths": ["/spec/replicas"]}]}}}'
    )
    assert config.rules("order").mode == "correct"
    assert config.rules("payment").mode == "warn"
    assert load_drift_config(None).rules("x").mode == "warn"
    with pytest.raises(ValueError, match="not a JSON pointer"):
        load_drift_config('{"default": {"ignore": [{"paths": ["spec.replicas"]}]}}')
    with pytest.raises(ValueError, match=r"default\.mode"):
        load_drift_config('{"default": {"mode": "sometimes"}}')

"""Intake checks of a deployment's values, before anything is queued: the guardrails, the deploy
policy, then the chart's schema on the merged values (what helm would refuse later)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deploy_contract.events import ArtifactPublished
from deploy_contract.images import ImageRejectedError, parse_image
from deployer.intake.chartvalues import ChartValues, merge, without_nulls
from deployer.intake.guardrails import guardrail_violations
from deployer.intake.policy import DeployPolicy, Rules, policy_violations


class RejectedError(ValueError):
    """A deployment the deployer will not act on; the message is the reason."""


class Intake:
    """What the environment gives each service, and what a deployment may add to it."""

    def __init__(
        self,
        charts: dict[str, Path],
        values_dir: Path | None,
        policy: DeployPolicy,
        environment: str,
    ) -> None:
        self._charts = {service: ChartValues(path) for service, path in charts.items()}
        self._values_dir = values_dir
        self.policy = policy
        self.environment = environment

    @property
    def services(self) -> list[str]:
        """The deployable services (one chart each)."""
        return sorted(self._charts)

    def known(self, service: str) -> str:
        """``service``, when it has a chart; else RejectedError naming the known ones."""
        if service not in self._charts:
            raise RejectedError(
                f"unknown service {service!r}: known services are "
                f"{', '.join(self.services)} (each needs charts/<service>)"
            )
        return service

    def check_request(self, request: ArtifactPublished, deployed: str | None) -> ArtifactPublished:
        """Refuse unknown services, mutable tags, an image older than the ``deployed`` one, and
        values the guardrails, the deploy policy or the chart's schema refuse."""
        self.known(request.service)
        try:
            parse_image(request.image)
            refusal = request.refusal_over(parse_image(deployed) if deployed else None)
        except ImageRejectedError as exc:
            raise RejectedError(str(exc)) from None
        if refusal is not None:
            raise RejectedError(refusal)
        self.check_values(request)
        return request

    def rules(self, service: str) -> Rules:
        """The policy's rules for ``service`` in this deployer's environment."""
        return self.policy.rules(service, self.environment)

    def environment_values(self, service: str) -> dict[str, Any]:
        """The environment's values file of ``service`` (``<values dir>/<service>.yaml``)."""
        if self._values_dir is None:
            return {}
        path = self._values_dir / f"{service}.yaml"
        if not path.exists():
            return {}
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise RejectedError(
                f"the environment's values file {path} is not YAML: {exc}"
            ) from None
        if not isinstance(loaded, dict | None):
            raise RejectedError(f"the environment's values file {path} is not a mapping")
        return loaded or {}

    def release_values(
        self, request: ArtifactPublished, environment: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The environment's values (read unless given) < the request's values < its image (helm
        adds the chart's defaults). Nothing carries over from the previous release."""
        image = parse_image(request.image)
        if environment is None:
            environment = self.environment_values(request.service)
        values = merge(environment, request.values)
        reference = {"repository": image.repository, "tag": image.tag, "digest": image.digest or ""}
        return merge(values, {"image": reference})

    def merged(self, service: str, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` over the chart's defaults, as helm renders them."""
        merged: dict[str, Any] = without_nulls(merge(self._charts[service].defaults(), values))
        return merged

    def check_values(self, request: ArtifactPublished) -> None:
        """Refuse values that break a guardrail, the policy, or the chart's schema; the reason
        names every offending path with its value and the rule."""
        chart = self._charts[request.service]
        environment = self.environment_values(request.service)
        base = merge(chart.defaults(), environment)
        problems = list(
            guardrail_violations(
                request.service,
                request.values,
                base,
                self._charts,
                self.policy.shared_secrets,
            )
        )
        problems += policy_violations(request.values, self.rules(request.service))
        if not problems:
            problems = chart.schema_violations(self.release_values(request, environment))
        if problems:
            count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
            raise RejectedError(f"values refused ({count}): " + "; ".join(problems))

"""The deployer's settings (``DEPLOYER_*``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The library, the deployer's own chart and the platform's NATS and PostgreSQL: in charts/ (and so
# in the deployer's image) beside the services' charts, but never deployed as a service.
NOT_A_SERVICE_CHART = frozenset({"flotilla-lib", "deployer", "nats", "postgres"})


class DeployerSettings(BaseSettings):
    """Where the charts are, which namespace releases go to, how helm runs, the deploy policy and
    the API tokens."""

    model_config = SettingsConfigDict(env_prefix="DEPLOYER_", extra="ignore")

    charts_dir: Path = Path("charts")
    # Comma-separated in the environment; the first one receives the service releases.
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["flotilla"], min_length=1
    )
    values_dir: Path | None = None  # optional <service>.yaml values per environment
    helm_binary: Path | None = None
    kubeconfig: Path | None = None
    helm_timeout_seconds: float = Field(default=120.0, gt=0)
    # Stop waiting for a rollout (helm then rolls back) once a new pod's container crashed or was
    # OOM-killed and restarted this many times, or its image cannot be pulled; 0: wait for helm.
    fail_fast_restarts: int = Field(default=2, ge=0)
    history_max: int = Field(default=10, ge=1)
    max_concurrent: int = Field(default=4, ge=1)
    # How many `helm template` processes of the releases upgraded last wait started ahead for
    # their next render, per environment (about 12 MB each; 0: none): a render's helm then skips
    # its start-up, most of its time, on the way from a pipeline event to its upgrade.
    warm_renders: int = Field(default=2, ge=0)
    retry_seconds: float = Field(default=2.0, gt=0)
    # One token with every scope (named admin); "dev" when no token is set, in development only.
    api_token: SecretStr | None = None
    # Scoped tokens, YAML from a Secret (deployer.web.tokens).
    api_tokens: SecretStr | None = None
    # The deploy policy as JSON or YAML text, or a file of it (deployer.intake.policy); default: the
    # image alone.
    policy: str | None = None
    policy_file: Path | None = None
    # The environments and their promotion rules, YAML or JSON text, or a file of it
    # (deployer.promotion.environments); default: one environment in the first namespace.
    environments: str | None = None
    environments_file: Path | None = None
    # How often waiting promotions are decided again (an outcome decides them at once too).
    promotion_seconds: float = Field(default=2.0, gt=0)
    # Drift detection: how often (0: only on demand) and the rules, JSON or YAML (deployer.drift).
    drift_interval_seconds: float = Field(default=60.0, ge=0)
    drift: str | None = None
    # The Prometheus that scrapes the service pods (with a `track` label: canary or stable); the
    # canary analysis queries it. Unset: every analysis is inconclusive, so a canary pauses.
    prometheus_url: str | None = None
    # How often that Prometheus scrapes the pods: an analysis window must span two scrapes.
    prometheus_scrape_interval_seconds: float = Field(default=15.0, gt=0)

    # GitOps environments: where the deployer keeps its working copies and chart copies, and the
    # credentials it pushes with (HTTP basic; a token as the password).
    gitops_dir: Path = Path("/tmp/flotilla-gitops")  # noqa: S108 (the pod's emptyDir)
    git_username: str | None = None
    git_password: SecretStr | None = None
    git_author_name: str = "Flotilla deployer"
    git_author_email: str = "deployer@flotilla.invalid"

    # High availability (deployer.ha): replicas share leases in NATS key-value; one leads.
    # This replica's id: stable across a restart of the same pod (the chart sets the pod's name)
    # so a restarted replica takes its own leases back at once; default: host name and process id.
    replica_id: str | None = Field(default=None, min_length=1, max_length=120)
    # Where the other replicas reach this one's API (they forward requests to the leader); the
    # chart sets http://<pod IP>:<port>; default: SERVICE_HOST:SERVICE_PORT unless 0.0.0.0.
    advertise_url: str | None = None
    # A replica that stops renewing its leases loses them after this long; a standby takes over.
    lease_seconds: float = Field(default=10.0, ge=1.0, le=300.0)

    @field_validator("namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def namespace(self) -> str:
        """The namespace service releases are installed in."""
        return self.namespaces[0]

    def helm(self) -> Path:
        """The helm binary: DEPLOYER_HELM_BINARY, else the one on PATH (the image ships it)."""
        if self.helm_binary is not None:
            return self.helm_binary
        found = shutil.which("helm")
        if found is None:
            raise FileNotFoundError(
                "helm not found: set DEPLOYER_HELM_BINARY (locally: "
                "platform/cluster/build-tools.sh --path helm)"
            )
        return Path(found)

    def service_charts(self) -> dict[str, Path]:
        """The deployable services: every application chart except the deployer's own."""
        if not self.charts_dir.is_dir():
            raise FileNotFoundError(
                f"charts directory {self.charts_dir} not found: set DEPLOYER_CHARTS_DIR"
            )
        return {
            chart.name: chart
            for chart in sorted(self.charts_dir.iterdir())
            if (chart / "Chart.yaml").exists() and chart.name not in NOT_A_SERVICE_CHART
        }

"""The repository of a gitops environment, as configured in its ``gitops`` block."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

RESOURCE_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class GitOpsSpec(BaseModel):
    """Where an environment's desired state lives and how Flux reads it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    repository: str = Field(
        pattern=r"^(https?|ssh|file)://\S+$",
        description="The git URL the deployer pushes to (credentials from DEPLOYER_GIT_USERNAME "
        "and DEPLOYER_GIT_PASSWORD, never in the URL)",
    )
    flux_repository: str | None = Field(
        default=None,
        alias="fluxRepository",
        pattern=r"^(https?|ssh)://\S+$",
        description="The URL Flux fetches from, when it differs (an in-cluster address)",
    )
    branch: str = Field(default="main", pattern=r"^[A-Za-z0-9._/-]{1,100}$")
    secret_ref: str | None = Field(
        default=None,
        alias="secretRef",
        pattern=RESOURCE_NAME,
        description="The Secret (username, password) Flux reads the repository with",
    )
    interval_seconds: int = Field(
        default=600,
        ge=10,
        alias="intervalSeconds",
        description="Flux's own polling, the fallback: the deployer asks for a reconcile after "
        "every push",
    )

    @field_validator("repository", "flux_repository")
    @classmethod
    def _no_credentials(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).password is not None:
            raise ValueError(
                "the URL carries a password, which would show in logs and events: remove it and "
                "set DEPLOYER_GIT_USERNAME and DEPLOYER_GIT_PASSWORD (Flux: secretRef)"
            )
        return url

    @property
    def source_url(self) -> str:
        """The URL Flux's GitRepository points at."""
        return self.flux_repository or self.repository

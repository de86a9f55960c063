"""``pipelines wait``: the outcome of a deployment, or of its release in an environment, as the
step's exit code."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import typer

from deploy_contract.events import SERVICE_NAME, DeployEventData, DeployPhase
from deploy_contract.promotions import GateVerdict, PromotionEventData
from kit.settings import NatsSettings, load_settings
from pipelines_cli.commands.common import err, user_errors
from pipelines_cli.errors import PipelineError
from pipelines_cli.exitcodes import ExitCode
from pipelines_cli.publish import deployment_id
from pipelines_cli.wait import exit_code, wait_for_outcome, wait_for_release


def _describe(event: DeployEventData, environment: bool = False) -> str:
    """One line per deploy event (``environment``: saying where it deploys)."""
    head = f"{datetime.now(UTC):%H:%M:%S} {event.service} {event.phase.value}"
    if environment and event.environment:
        head += f" in {event.environment}"
    parts = [head]
    if event.progress is not None:
        p = event.progress
        parts.append(
            f"replicas {p.updated}/{p.desired} updated, {p.ready} ready, {p.available} available"
        )
        if p.replica_sets:
            sets = ", ".join(f"{name}: {ready}" for name, ready in sorted(p.replica_sets.items()))
            parts.append(f"ready by ReplicaSet: {sets}")
    if event.revision is not None:
        parts.append(f"revision {event.revision}")
    if event.image:
        parts.append(event.image)
    if event.superseded_by:
        parts.append(f"superseded by {event.superseded_by}")
    if event.reason:
        parts.append(f"reason: {event.reason}")
    if event.phase is DeployPhase.PENDING_APPROVAL:
        parts.append(
            f"a person approves it with: deployer approve {event.deployment_id} "
            "(a token with the approve scope), or denies it with: deployer deny"
        )
    return " | ".join(parts)


def _describe_promotion(event: PromotionEventData) -> str:
    """One line per promotion event: its state, and the first gate that does not pass and why
    (the promotion's own reason once every gate passed)."""
    head = (
        f"{datetime.now(UTC):%H:%M:%S} {event.service} promotion {event.source} -> "
        f"{event.environment} {event.state.value}"
    )
    stuck = next((g for g in event.gates if g.verdict is not GateVerdict.PASSED), None)
    why = event.reason
    if stuck is not None:
        why = f"{stuck.gate.value} gate {stuck.verdict.value}: {stuck.reason}"
    return f"{head} | {why} | promotion {event.promotion_id}"


def wait_command(
    service: Annotated[str, typer.Argument(help="The service being deployed.")],
    deployment: Annotated[
        str | None,
        typer.Option("--deployment-id", help="The id `publish` printed."),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(envvar="PIPELINE_RUN_ID", help="Or: the run id given to `publish`."),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(envvar="PIPELINE_WAIT_TIMEOUT", help="Seconds before giving up (exit 6)."),
    ] = 900.0,
    environment: Annotated[
        str | None,
        typer.Option(
            help="Wait for the deployment's release to reach this environment (e.g. staging), "
            "through its promotions, instead of for the deployment itself."
        ),
    ] = None,
) -> None:
    """Wait for the outcome of SERVICE's deployment and exit with it.

    Reads deploy.<service>.> from the DEPLOY stream (so an outcome published before `wait`
    started counts), prints each event of this deployment, and exits 0 succeeded, 3 failed or
    rolled back, 4 rejected, 5 superseded by a newer deployment, 6 timeout (1 for other errors).
    A deployment waiting in pending_approval keeps it waiting (the timeout still counts).

    With --environment ENV it follows the deployment's release (its release_id, or its image)
    on to ENV: the deployment's events, each promotion event into ENV (its state and the first
    gate that does not pass), the release's deployment events in ENV, and exits 0 when that
    deployment succeeded (or ended unchanged); 3 when it failed or rolled back, when the
    deployment CI started failed or rolled back, or when the promotion into ENV failed (a gate
    failed, or ENV refused it); 4 when a deployment was rejected or a person cancelled the
    promotion; 5 when a newer deployment or release superseded it; 6 when the release did not
    reach ENV within the timeout (a promotion waiting at a gate, e.g. for approval, keeps it
    waiting).
    """
    with user_errors():
        if not re.match(SERVICE_NAME, service):
            raise PipelineError(
                f"{service!r} is not a service name: pass one like 'order' (lowercase letters, "
                "digits and '-')"
            )
        if deployment is None:
            if run_id is None:
                raise PipelineError("pass --deployment-id, or --run-id (or PIPELINE_RUN_ID)")
            deployment = deployment_id(run_id, service)
        settings = load_settings(NatsSettings)
        if environment is not None:
            _wait_for_release(settings, service, deployment, environment, timeout)
        err(f"waiting up to {timeout:.0f} s for deployment {deployment} of {service}")
        outcome = asyncio.run(
            wait_for_outcome(
                settings,
                service,
                deployment,
                timeout,
                on_event=lambda event: typer.echo(_describe(event)),
                on_notice=lambda note: err(f"note: {note}"),
            )
        )
    code = exit_code(outcome)
    if outcome is None:
        err(f"error: no outcome for deployment {deployment} of {service} within {timeout:.0f} s")
    elif code is not ExitCode.SUCCEEDED:
        err(f"error: deployment {deployment} of {service} ended {outcome.phase.value}")
    raise typer.Exit(code)


def _wait_for_release(
    settings: NatsSettings, service: str, deployment: str, environment: str, timeout: float
) -> NoReturn:
    """``wait --environment``: exits with the code of the release's end in ``environment``."""
    err(
        f"waiting up to {timeout:.0f} s for the release of deployment {deployment} of {service} "
        f"to reach {environment}"
    )
    arrival = asyncio.run(
        wait_for_release(
            settings,
            service,
            deployment,
            environment,
            timeout,
            on_event=lambda event: typer.echo(_describe(event, environment=True)),
            on_promotion=lambda event: typer.echo(_describe_promotion(event)),
            on_notice=lambda note: err(f"note: {note}"),
        )
    )
    if arrival is None:
        err(
            f"error: the release of deployment {deployment} of {service} did not reach "
            f"{environment} within {timeout:.0f} s (is {environment} an environment after the "
            "one CI deploys to? `deployer environments` lists them)"
        )
        raise typer.Exit(ExitCode.TIMEOUT)
    err(arrival.summary if arrival.code is ExitCode.SUCCEEDED else f"error: {arrival.summary}")
    raise typer.Exit(arrival.code)


def register(app: typer.Typer) -> None:
    """Add ``wait`` to ``app``."""
    app.command("wait")(wait_command)

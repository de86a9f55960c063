"""`deployer environments | board | releases | promote | promotions | holds | dora`: the
environments, the releases in them, their promotions from one environment to the next, the holds
on automatic promotion and the DORA figures. :data:`commands` is added to the ``deployer`` app
(:mod:`deployer.cli.app`) without a name, so these are top-level commands of it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from deploy_contract.promotions import PromotionState
from deployer.cli.common import (
    Output,
    OutputOption,
    TokenOption,
    UrlOption,
    call,
    query_string,
    segment,
    send,
    show,
)
from deployer.cli.promotion_format import (
    render_board,
    render_dora,
    render_environments,
    render_holds,
    render_promotion,
    render_promotions,
    render_releases,
)

commands = typer.Typer()
"""The commands of this module; ``deployer.cli.app`` adds them to its app."""


@commands.command()
def environments(
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """The environments in promotion order: each one's upstream, where it deploys, and the rules
    of promotion into it (soak, metric analysis, freeze windows, approval)."""
    show(send("GET", f"{url}/api/environments", token), output, render_environments)


@commands.command()
def board(
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Per service and environment: the image serving, its phase, the promotion coming in (with
    the first gate that does not pass, and why) and any hold."""
    show(send("GET", f"{url}/api/environments/board", token), output, render_board)


@commands.command()
def releases(
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    limit: int = 20,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Releases, newest first: id, image, commit, and where each stands in every environment."""
    query = query_string(service=service, limit=limit)
    show(send("GET", f"{url}/api/releases{query}", token), output, render_releases)


@commands.command()
def promote(
    release: Annotated[str, typer.Argument(help="The release id (deployer releases lists them)")],
    environment: Annotated[str, typer.Argument(help="The environment it enters")],
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Promote RELEASE into ENVIRONMENT from that environment's upstream, where it must have
    succeeded; its gates still apply (a hold does not stop a promotion a person asked for)."""
    body = {"release": release, "environment": environment}
    promotion = call("POST", f"{url}/api/promotions", token, body)
    typer.echo(f"{promotion['id']}: {promotion['state']} ({promotion['reason']})")
    typer.echo(f"its gates: deployer promotions show {promotion['id']}")


promotions_app = typer.Typer()
commands.add_typer(promotions_app, name="promotions")


@promotions_app.callback(invoke_without_command=True)
def promotions(
    context: typer.Context,
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    environment: Annotated[
        str | None, typer.Option(help="Only promotions into this environment")
    ] = None,
    state: Annotated[
        PromotionState | None, typer.Option(case_sensitive=False, help="Only in this state")
    ] = None,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Promotions, newest first (the options filter them); `show`, `approve` and `cancel` act on
    one of them."""
    if context.invoked_subcommand is not None:
        return
    query = query_string(
        service=service, environment=environment, state=state.value if state else None
    )
    show(send("GET", f"{url}/api/promotions{query}", token), output, render_promotions)


PromotionId = Annotated[str, typer.Argument(help="The promotion's id, <release>.<environment>")]


@promotions_app.command("show")
def promotions_show(
    promotion_id: PromotionId,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """One promotion: its release, path, state, and every gate with its verdict, reason and
    evidence."""
    path = f"{url}/api/promotions/{segment(promotion_id)}"
    show(send("GET", path, token), output, render_promotion)


@promotions_app.command("approve")
def promotions_approve(
    promotion_id: PromotionId,
    reason: Annotated[str, typer.Option(help="Why (kept with the approval)")] = "",
    override_freeze: Annotated[
        bool,
        typer.Option(help="Let it through a freeze as well (needs a --reason)"),
    ] = False,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Approve a promotion waiting for its gates; it proceeds once every other gate passes."""
    body = {"reason": reason, "overrideFreeze": override_freeze}
    path = f"{url}/api/promotions/{segment(promotion_id)}/approve"
    promotion = call("POST", path, token, body)
    approval = promotion.get("approval") or {}
    through = ", through the freeze" if approval.get("override_freeze") else ""
    typer.echo(
        f"{promotion['id']}: approved by {approval.get('by', '?')}{through}; its gates are "
        "decided again (deployer promotions show to follow it)"
    )


@promotions_app.command("cancel")
def promotions_cancel(
    promotion_id: PromotionId,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Cancel a promotion waiting for its gates."""
    path = f"{url}/api/promotions/{segment(promotion_id)}/cancel"
    promotion = call("POST", path, token)
    typer.echo(f"{promotion['id']}: {promotion['state']} ({promotion['reason']})")


holds_app = typer.Typer()
commands.add_typer(holds_app, name="holds")


@holds_app.callback(invoke_without_command=True)
def holds(
    context: typer.Context,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """The holds on automatic promotion (a rollback in an environment sets one); `set` and
    `clear` change them."""
    if context.invoked_subcommand is not None:
        return
    show(send("GET", f"{url}/api/holds", token), output, render_holds)


HoldEnvironment = Annotated[str, typer.Argument(help="The environment promotion goes into")]
HoldService = Annotated[str, typer.Argument(help="The service")]


@holds_app.command("set")
def holds_set(
    environment: HoldEnvironment,
    service: HoldService,
    reason: Annotated[str, typer.Option(help="Why automatic promotion must wait")],
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Hold automatic promotion of SERVICE into ENVIRONMENT until someone clears it."""
    path = f"{url}/api/holds/{segment(environment)}/{segment(service)}"
    hold = call("PUT", path, token, {"reason": reason})
    typer.echo(f"{hold['service']} held in {hold['environment']}: {hold['reason']}")


@holds_app.command("clear")
def holds_clear(
    environment: HoldEnvironment,
    service: HoldService,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
) -> None:
    """Clear the hold on SERVICE in ENVIRONMENT: automatic promotion into it resumes."""
    path = f"{url}/api/holds/{segment(environment)}/{segment(service)}"
    hold = call("DELETE", path, token)
    typer.echo(
        f"{hold['service']} in {hold['environment']}: hold cleared (it was: {hold['reason']}); "
        "automatic promotion resumes"
    )


def _instant(value: str | None, option: str) -> str | None:
    """``value`` checked as an ISO 8601 date-time with a UTC offset (usage error otherwise)."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date-time with a UTC offset, e.g. 2026-12-01T00:00:00Z",
            param_hint=option,
        )
    return at.isoformat()


@commands.command()
def dora(
    since: Annotated[
        str | None, typer.Option(help="Start of the window, ISO 8601 (default: 30 days back)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End of the window (default: now)")] = None,
    url: UrlOption = "http://127.0.0.1:8090",
    token: TokenOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """The DORA metrics per service and environment over a window: deployments per day, lead
    time (median, 90th percentile), change failure rate, time to restore, open failures."""
    query = query_string(since=_instant(since, "--since"), until=_instant(until, "--until"))
    show(send("GET", f"{url}/api/dora{query}", token), output, render_dora)

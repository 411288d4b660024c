"""``trusteq promote`` and ``trusteq verify``: promotion that obeys the signed verdict.

Exit codes: 0 done / valid pass verdict, 1 refused (no valid pass verdict, or the server's gate
refused) or the tracking server failed (5xx, down, too slow), 2 usage error (bad arguments,
unknown model version).  Each request to the server is bounded by ``--timeout`` seconds
(``TRUSTEQ_HTTP_TIMEOUT``, default 5) and ``--retries`` (``TRUSTEQ_HTTP_RETRIES``, default 0).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .._errors import InvalidInputError
from ..integration.promote import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    PromotionRefused,
    TrackingServerError,
    bounded_http,
    decide,
    describe,
    promote_version,
)

__all__ = ["policy_digest_command", "promote_command", "verify_command"]


class _Usage(click.ClickException):
    exit_code = EXIT_USAGE


def _version(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from trusteq_gate.signing import MAX_VERSION, parse_version_number

    n = parse_version_number(value)
    if n is None:
        raise click.BadParameter(f"expected a version number from 1 to {MAX_VERSION}, got {value!r}")
    return str(n)


def _client(tracking_uri: str | None) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri) if tracking_uri else MlflowClient()


def _options(f: Any) -> Any:
    f = click.option("--retries", type=click.IntRange(0, 10), default=0, show_default=True,
                     envvar="TRUSTEQ_HTTP_RETRIES", help="Retries per request to the tracking server.")(f)
    f = click.option("--timeout", "timeout_s", type=click.FloatRange(1, 600), default=5.0, show_default=True,
                     envvar="TRUSTEQ_HTTP_TIMEOUT", help="Seconds each request to the tracking server may take.")(f)
    return click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                        help="MLflow tracking URI [env: MLFLOW_TRACKING_URI].")(f)


@click.command("promote")
@click.argument("name")
@click.argument("version", callback=_version)
@click.option("--alias", help="Alias to set on the version (e.g. champion).")
@click.option("--stage", type=click.Choice(["Staging", "Production"], case_sensitive=False),
              help="Legacy stage transition (deprecated in MLflow; prefer --alias).")
@click.option("--archive-existing", is_flag=True, help="With --stage: archive the versions now in that stage.")
@_options
def promote_command(name: str, version: str, alias: str | None, stage: str | None, archive_existing: bool,
                    tracking_uri: str | None, timeout_s: float, retries: int) -> None:
    """Promote NAME VERSION (alias or stage) if it carries a valid signed pass verdict.

    Refuses, with the reasons, otherwise: exit 0 promoted, 1 refused or server failure, 2 usage error.
    """
    if bool(alias) == bool(stage):
        raise _Usage("give exactly one of --alias or --stage")
    if archive_existing and not stage:
        raise _Usage("--archive-existing goes with --stage")
    try:
        with bounded_http(timeout_s, retries):
            decision = promote_version(_client(tracking_uri), name, version, alias=alias, stage=stage,
                                       archive_existing=archive_existing)
    except InvalidInputError as e:
        raise _Usage(str(e)) from None
    except TrackingServerError as e:
        raise click.ClickException(str(e)) from None
    except PromotionRefused as e:
        click.echo(f"refused: {e}", err=True)
        if e.decision is not None and not e.decision.ok:
            click.echo(describe(e.decision, name, version), err=True)
        sys.exit(EXIT_REFUSED)
    target = f"alias {alias!r}" if alias else f"stage {stage!r}"
    click.echo(f"promoted models:/{name}/{version} to {target} (verdict: pass, run {decision.fields.get('run_id')})")


@click.command("verify")
@click.argument("name")
@click.argument("version", callback=_version)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.option("--alias", help="Ask the server's gate about this alias (its per-alias policy, if it has one).")
@click.option("--stage", type=click.Choice(["Staging", "Production"], case_sensitive=False),
              help="Ask the server's gate about a transition to this stage.")
@_options
def verify_command(name: str, version: str, as_json: bool, alias: str | None, stage: str | None,
                   tracking_uri: str | None, timeout_s: float, retries: int) -> None:
    """Say what the promotion gate would decide for NAME VERSION, and why.

    With --alias or --stage the tracking server's trusteq-gate answers, under the policy it requires
    for that alias or stage. Exit 0 for a valid signed pass verdict, 1 otherwise (or a server failure),
    2 for a usage error.
    """
    import json

    if alias and stage:
        raise _Usage("give at most one of --alias or --stage")
    try:
        with bounded_http(timeout_s, retries):
            decision = decide(_client(tracking_uri), name, version, alias=alias, stage=stage)
    except InvalidInputError as e:
        raise _Usage(str(e)) from None
    except TrackingServerError as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(decision.to_dict(), indent=2) if as_json else describe(decision, name, version))
    sys.exit(EXIT_OK if decision.ok else EXIT_REFUSED)


@click.command("policy-digest")
@click.argument("policy_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def policy_digest_command(policy_files: tuple[str, ...]) -> None:
    """Print the digest of each POLICY_FILE (TOML), as the gate's per-alias policy file names it.

    One ``digest  name  file`` line each; paste the digest into TRUSTEQ_GATE_ALIAS_POLICIES's file.
    """
    from .._errors import PolicyError
    from ..policy import Policy

    for path in policy_files:
        try:
            policy = Policy.from_toml(path)
        except PolicyError as e:
            raise _Usage(str(e)) from None
        click.echo(f"{policy.digest}  {policy.name}  {path}")

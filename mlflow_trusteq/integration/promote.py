"""``trusteq promote`` and ``trusteq verify``: promotion that obeys the signed verdict.

Exit codes: 0 done / valid pass verdict, 1 refused (no valid pass verdict, or the server's gate
refused), 2 usage error (bad arguments, unknown model version).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

__all__ = ["promote_command", "verify_command", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class _Usage(click.ClickException):
    exit_code = EXIT_USAGE


def _version(ctx: click.Context, param: click.Parameter, value: str) -> str:
    v = str(value).strip()
    if not v.isdigit() or int(v) < 1:
        raise click.BadParameter(f"expected a version number >= 1, got {value!r}")
    return str(int(v))


def _client(tracking_uri: str | None) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri) if tracking_uri else MlflowClient()


def _decide(client: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    from .._errors import TrustEqError
    from .registry import verify_verdict

    try:
        return verify_verdict(client, name, version)
    except MlflowException as e:
        if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise _Usage(e.message) from None
        raise click.ClickException(f"cannot read models:/{name}/{version}: {e.message}") from None
    except TrustEqError as e:
        raise _Usage(str(e)) from None


def _describe(decision: Any, name: str, version: str) -> str:
    lines = [f"models:/{name}/{version}: {'PROMOTABLE' if decision.ok else 'NOT PROMOTABLE'}",
             f"  verdict:   {decision.verdict or '(none)'}"
             f"  (signature {'valid' if decision.signature_valid else 'not valid'})"]
    for key in ("parent", "run_id", "data_digest", "policy_digest", "key_id", "inherited_from"):
        if decision.fields.get(key):
            lines.append(f"  {key + ':':<14}{decision.fields[key]}")
    if decision.verdict_reasons:
        lines.append("  verdict reasons:")
        lines += [f"    - {r}" for r in decision.verdict_reasons]
    if decision.reasons:
        lines.append("  why it cannot be promoted:")
        lines += [f"    - {r}" for r in decision.reasons]
    return "\n".join(lines)


_tracking_option = click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                                help="MLflow tracking URI [env: MLFLOW_TRACKING_URI].")


@click.command("promote")
@click.argument("name")
@click.argument("version", callback=_version)
@click.option("--alias", help="Alias to set on the version (e.g. champion).")
@click.option("--stage", type=click.Choice(["Staging", "Production"], case_sensitive=False),
              help="Legacy stage transition (deprecated in MLflow; prefer --alias).")
@click.option("--archive-existing", is_flag=True, help="With --stage: archive the versions now in that stage.")
@_tracking_option
def promote_command(name: str, version: str, alias: str | None, stage: str | None, archive_existing: bool,
                    tracking_uri: str | None) -> None:
    """Promote NAME VERSION (alias or stage) if it carries a valid signed pass verdict.

    Refuses, with the reasons, otherwise: exit 0 promoted, 1 refused, 2 usage error.
    """
    from mlflow.exceptions import MlflowException

    if bool(alias) == bool(stage):
        raise _Usage("give exactly one of --alias or --stage")
    if archive_existing and not stage:
        raise _Usage("--archive-existing goes with --stage")
    client = _client(tracking_uri)
    decision = _decide(client, name, version)
    target = f"alias {alias!r}" if alias else f"stage {stage!r}"
    if not decision.ok:
        click.echo(f"refused: models:/{name}/{version} cannot be promoted to {target}.", err=True)
        click.echo(_describe(decision, name, version), err=True)
        sys.exit(EXIT_REFUSED)
    try:
        if alias:
            client.set_registered_model_alias(name, alias, version)
        else:
            client.transition_model_version_stage(name, version, stage, archive_existing_versions=archive_existing)
    except MlflowException as e:  # the server's gate (or permissions) refused
        click.echo(f"refused by the tracking server: {e.message}", err=True)
        sys.exit(EXIT_REFUSED)
    click.echo(f"promoted models:/{name}/{version} to {target} (verdict: pass, run {decision.fields.get('run_id')})")


@click.command("verify")
@click.argument("name")
@click.argument("version", callback=_version)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@_tracking_option
def verify_command(name: str, version: str, as_json: bool, tracking_uri: str | None) -> None:
    """Say what the promotion gate would decide for NAME VERSION, and why.

    Exit 0 for a valid signed pass verdict, 1 otherwise, 2 for a usage error.
    """
    import json

    decision = _decide(_client(tracking_uri), name, version)
    click.echo(json.dumps(decision.to_dict(), indent=2) if as_json else _describe(decision, name, version))
    sys.exit(EXIT_OK if decision.ok else EXIT_REFUSED)

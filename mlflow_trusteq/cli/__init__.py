"""``trusteq``: judge a compressed model against its parent from the shell or CI.

Exit codes of ``evaluate``: 0 the candidate passes, 1 it fails or is incomplete (or the evaluation
itself failed: fail closed), 2 bad usage (unknown column, unreadable data, missing parent, label
mismatch, bad policy file, a tracking server that does not answer). ``show`` exits 0 whenever it
shows an evaluation, whatever its verdict: showing is not judging.

Every command bounds its first requests to the tracking server (``--timeout`` seconds,
``--retries``; env ``TRUSTEQ_HTTP_TIMEOUT``, ``TRUSTEQ_HTTP_RETRIES``) instead of MLflow's retry
loop of minutes, and keeps MLflow's artifact progress bars out of its output.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..integration.promote import bounded_http
from ._options import measurement_options
from ._promote import _options as _server_options

from .._data import read_table
from .._config import TrustEqConfig
from .._errors import InvalidInputError, MissingDependencyError, ModelAdapterError, PolicyError, TrustEqError

if TYPE_CHECKING:
    import pandas as pd

    from ..integration.evaluator import EvaluationOutcome

logger = logging.getLogger("mlflow_trusteq")

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageProblem(click.ClickException):
    """A user error reported with exit code 2, like click's own usage errors."""

    exit_code = EXIT_USAGE


def _setup(tracking_uri: str | None, verbose: int) -> None:
    import mlflow

    logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mlflow_trusteq").setLevel(logging.INFO if verbose else logging.WARNING)
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="mlflow-trusteq")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Is a compressed model trust-equivalent to the model it came from?

    trusteq compares a CANDIDATE model version (quantized, pruned, distilled, exported) with its
    PARENT on the same data: do they predict the same labels (loyalty), with the same
    confidence (calibration), for the same reasons (attribution alignment), and do they break
    under the same attacks (robustness)? It logs the evidence to MLflow, records a signed
    verdict on the candidate's registered version, and blocks promotion of one that fails.

    \b
    Typical use in CI:
      trusteq evaluate models:/sentiment/2 --parent models:/sentiment/1 \\
          --data dev.tsv --text-column sentence --label-column label
      trusteq promote sentiment 2 --alias champion
    """
    # MLflow's artifact-download progress bars are noise in a terminal summary and in JSON output
    saved = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"
    ctx.call_on_close(lambda: os.environ.pop(_PROGRESS_BAR, None) if saved is None
                      else os.environ.__setitem__(_PROGRESS_BAR, saved))


_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


#: ``trusteq evaluate`` option -> the :class:`TrustEqConfig` field it sets (a test checks both ways)
CONFIG_OPTIONS = {
    "parent": "parent",
    "text_columns": "feature_columns",
    "feature_columns": "feature_columns",
    "policy_path": "policy",
    "alignment": "alignment",
    "explain_examples": "alignment",
    "robustness": "robustness",
    "attack_examples": "robustness",
    "query_budget": "robustness",
    "seed": "random_state",
    "n_resamples": "n_resamples",
    "no_record": "record_verdict",
    "engine": "engine",
    "slices": "slices",
}
#: options that are not evaluation settings (where the data is, where to log, how loud)
CLI_ONLY_OPTIONS = ("candidate", "data_path", "label_column", "experiment", "tracking_uri", "verbose", "as_json",
                    "quiet", "timeout_s", "retries")


@cli.command("evaluate")
@click.argument("candidate")
@click.option("--parent", help="Parent model URI (models:/name/1, models:/name@alias, runs:/...). "
              "Default: the candidate version's trusteq.parent lineage tag.")
@click.option("--data", "data_path", required=True, type=click.Path(),
              help="Evaluation data: .csv, .tsv or .parquet (with --engine spark also a Parquet folder or a "
              "table name).")
@measurement_options
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="spark: measure the whole table in Spark executors (pip install 'mlflow-trusteq[spark]').")
@click.option("--slice", "--slices", "slices", multiple=True,
              help="Measure every metric per slice (repeatable): 'builtin' (parent's class, confidence and "
              "input-length bins), a data column (each value a slice; 'col:N' bins a numeric one), or 'a*b' "
              "(a cross). A policy check with slices = \"all\" gates on them.")
@click.option("--experiment", help="MLflow experiment name to log into (created if missing).")
@click.option("--no-record", is_flag=True, help="Do not record the verdict on the candidate's model version.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict and the key numbers as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors; the exit code is the verdict.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@_server_options
def evaluate_command(candidate: str, data_path: str, label_column: str | None, experiment: str | None,
                     tracking_uri: str | None, verbose: int, as_json: bool, quiet: bool, timeout_s: float,
                     retries: int, **options: Any) -> None:
    """Judge CANDIDATE (a model URI) against its parent on --data; exit 0 pass, 1 fail, 2 usage."""
    _setup(tracking_uri, verbose)
    config = config_from_options(options)
    frame: Any = data_path  # the Spark engine reads the table itself
    if config.engine == "local":
        frame = _read_frame(data_path)
        _check_columns(frame, data_path, config.feature_columns, label_column)
    _check_reachable(tracking_uri, timeout_s, retries)
    with warnings.catch_warnings():
        # the evaluator also says it on stderr, through its own logger: once is enough here
        from ..integration.evaluator import VerdictNotRecordedWarning

        warnings.simplefilter("ignore", VerdictNotRecordedWarning)
        outcome = _run_evaluation(candidate, frame, label_column, config, experiment)
    if as_json:
        click.echo(json.dumps(outcome_json(outcome), indent=2))
    elif not quiet:
        _print_outcome(outcome)
    sys.exit(EXIT_PASS if outcome.verdict.passed else EXIT_FAIL)


def _check_reachable(tracking_uri: str | None, timeout_s: float, retries: int) -> None:
    """A tracking server that does not answer is a usage error within seconds, not minutes of retries."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri or mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return
    with bounded_http(timeout_s, retries):
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except Exception as exc:  # refused, timed out, DNS, a proxy's 5xx: the server is not usable
            text = getattr(exc, "message", None) or str(exc)
            raise UsageProblem(
                f"the tracking server {uri} did not answer within {timeout_s:g} s and {retries} retries "
                f"({type(exc).__name__}: {text[:300]}); nothing was evaluated or changed. Check that it is up "
                "and the URI is right, or raise --timeout / --retries") from None


def outcome_json(outcome: EvaluationOutcome) -> dict[str, Any]:
    """``trusteq evaluate --json``: the verdict, where it is recorded, and the key numbers."""
    report, verdict = outcome.report, outcome.verdict
    keys = [c.metric for c in verdict.checks] + ["candidate/accuracy", "parent/accuracy", "speedup", "size_ratio"]
    numbers = {k: report.metrics[k].to_dict() for k in dict.fromkeys(keys) if k in report.metrics}
    candidate = f"models:/{outcome.candidate[0]}/{outcome.candidate[1]}" if outcome.candidate else None
    return {"verdict": verdict.label, "passed": verdict.passed, "reasons": verdict.reasons,
            "run_id": outcome.run_id, "candidate": candidate, "parent": outcome.parent_uri,
            "recorded": bool(outcome.version_tags), "not_recorded": outcome.not_recorded,
            "n_examples": report.n_examples, "data_digest": report.data_digest, "policy": verdict.policy_name,
            "metrics": numbers, "skipped": dict(report.skipped)}


def config_from_options(options: dict[str, Any]) -> TrustEqConfig:
    """The :class:`TrustEqConfig` of ``trusteq evaluate``'s options (keys of :data:`CONFIG_OPTIONS`)."""
    unknown = sorted(set(options) - set(CONFIG_OPTIONS))
    if unknown:  # a new option must be mapped onto the config (or listed as CLI-only)
        raise AssertionError(f"evaluate options {unknown} are not mapped onto TrustEqConfig")
    o = options
    if o["text_columns"] and o["feature_columns"]:
        raise UsageProblem("give either --text-column or --feature-column, not both")
    seed = o["seed"]
    align = o["alignment"] and {"random_state": seed, **_given(n_examples=o["explain_examples"])}
    attack = o["robustness"] and {"random_state": seed, **_given(n_examples=o["attack_examples"],
                                                                   query_budget=o["query_budget"])}
    try:
        return TrustEqConfig.from_mapping({
            "parent": o["parent"] or "lineage", "policy": o["policy_path"],
            "feature_columns": list(o["text_columns"] or o["feature_columns"]) or None,
            "alignment": align, "robustness": attack, "random_state": seed, "n_resamples": o["n_resamples"],
            "record_verdict": not o["no_record"], "engine": o["engine"], "slices": list(o.get("slices") or ()) or None})
    except InvalidInputError as exc:
        raise UsageProblem(str(exc)) from None


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _read_frame(data_path: str) -> pd.DataFrame:
    try:
        return read_table(data_path)
    except InvalidInputError as exc:
        raise UsageProblem(str(exc)) from None


def _check_columns(frame: pd.DataFrame, data_path: str, columns: tuple[str, ...] | None,
                   label_column: str | None) -> None:
    for col in [*(columns or []), *([label_column] if label_column else [])]:
        if col not in frame.columns:
            raise UsageProblem(f"column {col!r} is not in {data_path}; its columns are {list(frame.columns)}")
    if columns is None and label_column is None and _is_tabular(frame):
        raise UsageProblem(f"{data_path} is tabular: give --label-column (the gold labels; without it every column, "
                           "the labels too, is read as a feature), or name the features with --feature-column")
    if columns is None and label_column is None and len(frame.columns) > 1:
        logger.warning("no --label-column: every column is read as a feature and calibration is not measured")


def _is_tabular(frame: pd.DataFrame) -> bool:
    from ..compare import infer_kind

    try:
        return infer_kind(frame) == "tabular"
    except InvalidInputError:  # mixed columns: the evaluation says what is wrong
        return False


def _run_evaluation(candidate: str, frame: pd.DataFrame, label_column: str | None, config: TrustEqConfig,
                    experiment: str | None) -> EvaluationOutcome:
    """``evaluate_and_log``, its errors mapped to exit codes: 2 for usage, 1 (fail closed) for the rest."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from ..integration.evaluator import evaluate_and_log

    try:
        if experiment:
            mlflow.set_experiment(experiment)
        return evaluate_and_log(candidate, frame, targets=label_column, config=config)
    except (InvalidInputError, PolicyError, ModelAdapterError, MissingDependencyError) as exc:
        raise UsageProblem(str(exc)) from None
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UsageProblem(exc.message) from None
        _fail(exc.message)
    except TrustEqError as exc:
        _fail(str(exc))
    except Exception as exc:  # a model that raises, a store that went away: fail closed, say what happened
        logger.debug("evaluation failed", exc_info=True)
        _fail(f"{type(exc).__name__}: {exc}")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: the evaluation failed, no verdict was recorded: {message}", err=True)
    sys.exit(EXIT_FAIL)


def _print_outcome(outcome: EvaluationOutcome) -> None:
    from ..report import summary_table

    click.echo(summary_table(outcome.report, outcome.verdict))
    click.echo(f"\nrun: {outcome.run_id}   (trusteq show {outcome.run_id})")
    if outcome.version_tags:
        name, version = outcome.candidate or ("?", "?")
        click.echo(f"verdict recorded on {name} version {version}")


@cli.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the full TrustReport as JSON instead.")
@_server_options
def show_command(run_id: str, tracking_uri: str | None, as_json: bool, timeout_s: float, retries: int) -> None:
    """Summarise a past evaluation: metrics with intervals, verdict and reasons (exit 0 whatever the verdict)."""
    from mlflow.exceptions import MlflowException

    from ..integration.runlog import load_evaluation
    from ..report import summary_table

    _setup(tracking_uri, 0)
    _check_reachable(tracking_uri, timeout_s, retries)
    try:
        with bounded_http(timeout_s, retries):
            report, verdict, tags = load_evaluation(run_id)
    except InvalidInputError as exc:
        raise UsageProblem(str(exc)) from None
    except MlflowException as exc:
        raise UsageProblem(f"cannot read run {run_id!r}: {exc.message}") from None
    if as_json:
        click.echo(report.to_json())
        return
    click.echo(summary_table(report, verdict))
    candidate = tags.get("trusteq.candidate", "(not registered)")
    click.echo(f"\nparent: {tags.get('trusteq.parent')}   candidate: {candidate}")


from ._promote import policy_digest_command, promote_command, verify_command  # noqa: E402

cli.add_command(promote_command, "promote")
cli.add_command(verify_command, "verify")
cli.add_command(policy_digest_command, "policy-digest")
from ._compare_candidates import compare_candidates_command  # noqa: E402

cli.add_command(compare_candidates_command)


def main() -> None:  # pragma: no cover
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()

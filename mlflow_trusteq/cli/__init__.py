"""``trusteq``: judge a compressed model against its parent from the shell or CI.

Exit codes: 0 the candidate passes, 1 it fails (or the evaluation itself failed: fail closed),
2 bad usage (unknown column, unreadable data, missing parent, label mismatch, bad policy file).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

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
def cli() -> None:
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


_DEFAULTS = TrustEqConfig()

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
}
#: options that are not evaluation settings (where the data is, where to log, how loud)
CLI_ONLY_OPTIONS = ("candidate", "data_path", "label_column", "experiment", "tracking_uri", "verbose")


@cli.command("evaluate")
@click.argument("candidate")
@click.option("--parent", help="Parent model URI (models:/name/1, models:/name@alias, runs:/...). "
              "Default: the candidate version's trusteq.parent lineage tag.")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
              help="Evaluation data: .csv, .tsv or .parquet.")
@click.option("--text-column", "text_columns", multiple=True,
              help="Text column the models read; give it twice for text pairs (e.g. premise, hypothesis).")
@click.option("--feature-column", "feature_columns", multiple=True,
              help="Tabular feature column (repeatable). Default: every column but the label column.")
@click.option("--label-column", help="Gold label column. Without it only fidelity is judged: calibration "
              "needs labels, and the default policy then fails (closed).")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
              help="Policy TOML file (thresholds). Default: the built-in policy (see README).")
@click.option("--alignment/--no-alignment", default=False, show_default=True,
              help="Also compare LIME and SHAP attributions (text and tabular; slower).")
@click.option("--explain-examples", type=click.IntRange(min=1), help="How many examples to explain.")
@click.option("--robustness/--no-robustness", default=False, show_default=True,
              help="Also run the word- and character-level attacks on both models (text; slower).")
@click.option("--attack-examples", type=click.IntRange(min=1), help="How many examples to attack.")
@click.option("--query-budget", type=click.IntRange(min=1), help="Attack: model queries per example.")
@click.option("--seed", type=int, default=_DEFAULTS.random_state, show_default=True,
              help="Seed of every random step.")
@click.option("--n-resamples", type=click.IntRange(min=1), default=_DEFAULTS.n_resamples, show_default=True,
              help="Bootstrap resamples behind every confidence interval.")
@click.option("--experiment", help="MLflow experiment name to log into (created if missing).")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI [env: MLFLOW_TRACKING_URI].")
@click.option("--no-record", is_flag=True, help="Do not record the verdict on the candidate's model version.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def evaluate_command(candidate: str, data_path: str, label_column: str | None, experiment: str | None,
                     tracking_uri: str | None, verbose: int, **options: Any) -> None:
    """Judge CANDIDATE (a model URI) against its parent on --data; exit 0 pass, 1 fail, 2 usage."""
    _setup(tracking_uri, verbose)
    frame = _read_frame(data_path)
    config = config_from_options(options)
    _check_columns(frame, data_path, config.feature_columns, label_column)
    outcome = _run_evaluation(candidate, frame, label_column, config, experiment)
    _print_outcome(outcome)
    sys.exit(EXIT_PASS if outcome.verdict.passed else EXIT_FAIL)


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
            "record_verdict": not o["no_record"]})
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
    if columns is None and label_column is None and len(frame.columns) > 1:
        logger.warning("no --label-column: every column is read as a feature and calibration is not measured")


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
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI [env: MLFLOW_TRACKING_URI].")
@click.option("--json", "as_json", is_flag=True, help="Print the full TrustReport as JSON instead.")
def show_command(run_id: str, tracking_uri: str | None, as_json: bool) -> None:
    """Summarise a past evaluation: metrics with intervals, verdict and reasons."""
    from mlflow.exceptions import MlflowException

    from ..integration.runlog import load_evaluation
    from ..report import summary_table

    _setup(tracking_uri, 0)
    try:
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
    sys.exit(EXIT_PASS if verdict.passed else EXIT_FAIL)


from ..integration.promote import promote_command, verify_command  # noqa: E402

cli.add_command(promote_command, "promote")
cli.add_command(verify_command, "verify")


def main() -> None:  # pragma: no cover
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()

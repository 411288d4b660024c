"""``trusteq``: judge a compressed model against its parent from the shell or CI.

Exit codes: 0 the candidate passes, 1 it fails (or the evaluation itself failed: fail closed),
2 bad usage (unknown column, unreadable data, missing parent, label mismatch, bad policy file).
"""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path
from typing import Any

import click

from ._errors import InvalidInputError, MissingDependencyError, ModelAdapterError, PolicyError, TrustEqError

logger = logging.getLogger("mlflow_trusteq")

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageProblem(click.ClickException):
    """A user error reported with exit code 2, like click's own usage errors."""

    exit_code = EXIT_USAGE


def read_table(path: str) -> Any:
    """Read CSV, TSV or Parquet by extension, with a clear error when it cannot be read."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise UsageProblem(f"data file {path!r} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".tsv", ".tab"):
            return pd.read_csv(p, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
        if suffix == ".csv":
            return pd.read_csv(p)
    except Exception as exc:
        raise UsageProblem(f"cannot read data file {path!r} as {suffix[1:].upper()}: {exc}") from None
    raise UsageProblem(f"data file {path!r}: unknown format {suffix!r}; use .csv, .tsv or .parquet")


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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random step.")
@click.option("--n-resamples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Bootstrap resamples behind every confidence interval.")
@click.option("--experiment", help="MLflow experiment name to log into (created if missing).")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI [env: MLFLOW_TRACKING_URI].")
@click.option("--no-record", is_flag=True, help="Do not record the verdict on the candidate's model version.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def evaluate_command(candidate: str, parent: str | None, data_path: str, text_columns: tuple[str, ...],
                     feature_columns: tuple[str, ...], label_column: str | None, policy_path: str | None,
                     alignment: bool, explain_examples: int | None, robustness: bool, attack_examples: int | None,
                     query_budget: int | None, seed: int, n_resamples: int, experiment: str | None,
                     tracking_uri: str | None, no_record: bool, verbose: int) -> None:
    """Judge CANDIDATE (a model URI) against its parent on --data; exit 0 pass, 1 fail, 2 usage."""
    import mlflow
    from mlflow.exceptions import MlflowException

    _setup(tracking_uri, verbose)
    frame = read_table(data_path)
    if text_columns and feature_columns:
        raise UsageProblem("give either --text-column or --feature-column, not both")
    columns = list(text_columns or feature_columns) or None
    for col in [*(columns or []), *([label_column] if label_column else [])]:
        if col not in frame.columns:
            raise UsageProblem(f"column {col!r} is not in {data_path}; its columns are {list(frame.columns)}")
    if columns is None and label_column is None and len(frame.columns) > 1:
        logger.warning("no --label-column: every column is read as a feature and calibration is not measured")
    align_cfg: Any = alignment and ({"n_examples": explain_examples, "random_state": seed} if explain_examples
                                    else {"random_state": seed})
    attack_cfg: Any = robustness and {k: v for k, v in {"n_examples": attack_examples, "query_budget": query_budget,
                                                          "random_state": seed}.items() if v is not None}
    config = {"parent": parent or "lineage", "policy": policy_path, "feature_columns": columns,
              "alignment": align_cfg, "robustness": attack_cfg, "random_state": seed,
              "n_resamples": n_resamples, "record_verdict": not no_record}
    from .integration.evaluator import evaluate_and_log
    from .report import summary_table

    try:
        if experiment:
            mlflow.set_experiment(experiment)
        outcome = evaluate_and_log(candidate, frame, targets=label_column, config=config)
    except (InvalidInputError, PolicyError, ModelAdapterError, MissingDependencyError) as exc:
        raise UsageProblem(str(exc)) from None
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UsageProblem(exc.message) from None
        click.echo(f"error: the evaluation failed, no verdict was recorded: {exc.message}", err=True)
        sys.exit(EXIT_FAIL)
    except TrustEqError as exc:
        click.echo(f"error: the evaluation failed, no verdict was recorded: {exc}", err=True)
        sys.exit(EXIT_FAIL)
    except Exception as exc:  # a model that raises, a store that went away: fail closed, say what happened
        logger.debug("evaluation failed", exc_info=True)
        click.echo(f"error: the evaluation failed, no verdict was recorded: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_FAIL)
    click.echo(summary_table(outcome.report, outcome.verdict))
    click.echo(f"\nrun: {outcome.run_id}   (trusteq show {outcome.run_id})")
    if outcome.version_tags:
        name, version = outcome.candidate or ("?", "?")
        click.echo(f"verdict recorded on {name} version {version}")
    sys.exit(EXIT_PASS if outcome.verdict.passed else EXIT_FAIL)


@cli.command("show")
@click.argument("run_id")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI [env: MLFLOW_TRACKING_URI].")
@click.option("--json", "as_json", is_flag=True, help="Print the full TrustReport as JSON instead.")
def show_command(run_id: str, tracking_uri: str | None, as_json: bool) -> None:
    """Summarise a past evaluation: metrics with intervals, verdict and reasons."""
    from mlflow.exceptions import MlflowException

    from .integration.runlog import load_evaluation
    from .report import summary_table

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


from .integration.promote import promote_command, verify_command  # noqa: E402

cli.add_command(promote_command, "promote")
cli.add_command(verify_command, "verify")


def main() -> None:  # pragma: no cover
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()

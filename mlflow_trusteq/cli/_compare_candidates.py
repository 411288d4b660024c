"""``trusteq compare-candidates``: several candidates of one parent, side by side, on one page."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._errors import InvalidInputError, MissingDependencyError, ModelAdapterError, PolicyError
from . import EXIT_FAIL, EXIT_PASS, UsageProblem, _check_columns, _read_frame, _setup, config_from_options
from ._options import measurement_options

if TYPE_CHECKING:
    from ..candidates import CandidateComparison

__all__ = ["compare_candidates_command"]


@click.command("compare-candidates")
@click.argument("candidates", nargs=-1, required=True)
@click.option("--parent", required=True, help="Parent model URI (models:/name/1, models:/name@alias, runs:/...).")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
              help="Evaluation data: .csv, .tsv or .parquet.")
@measurement_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="trusteq-candidates", show_default=True,
              help="Folder for candidates.html, its figure, candidates.csv and each candidate's report.")
@click.option("--log-to-mlflow", is_flag=True,
              help="Also log the page to a new MLflow run (no verdict is recorded on any version).")
@click.option("--experiment", help="MLflow experiment name to log into (created if missing).")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI [env: MLFLOW_TRACKING_URI].")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def compare_candidates_command(candidates: tuple[str, ...], data_path: str, label_column: str | None, out_dir: str,
                               log_to_mlflow: bool, experiment: str | None, tracking_uri: str | None, verbose: int,
                               **options: Any) -> None:
    """Compare CANDIDATES (model URIs) with one --parent and write a page to pick the best compression.

    The parent is scored once; each candidate is measured (loyalty, calibration, and alignment
    and robustness when asked) and judged by the policy, and the page marks the Pareto fronts of
    label loyalty's lower bound against speed-up and against size. Comparing judges no version:
    exit 0 when every candidate was measured, 1 when one could not be, 2 on bad usage.
    """
    from ..candidates import compare_candidates

    _setup(tracking_uri, verbose)
    if len(set(candidates)) != len(candidates):
        raise UsageProblem(f"a candidate is given twice: {list(candidates)}")
    if options["parent"] in candidates:
        raise UsageProblem(f"the parent {options['parent']} is also given as a candidate")
    frame = _read_frame(data_path)
    config = config_from_options({**_evaluate_defaults(), **options, "no_record": True})
    _check_columns(frame, data_path, config.feature_columns, label_column)
    try:
        comparison = compare_candidates(options["parent"], {c: c for c in candidates}, frame, targets=label_column,
                                        config=config, parent_kwargs={"name": options["parent"],
                                                                      **config.parent_kwargs})
    except (InvalidInputError, PolicyError, ModelAdapterError, MissingDependencyError) as exc:
        raise UsageProblem(str(exc)) from None
    except Exception as exc:  # a missing model version, a model that raises: say what, exit 1
        message = getattr(exc, "message", None) or str(exc)
        if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UsageProblem(message) from None
        click.echo(f"error: the comparison failed: {type(exc).__name__}: {message}", err=True)
        sys.exit(EXIT_FAIL)
    _write_and_print(comparison, Path(out_dir), log_to_mlflow, experiment)
    sys.exit(EXIT_PASS if all(c.ok for c in comparison.candidates) else EXIT_FAIL)


def _evaluate_defaults() -> dict[str, Any]:
    """``trusteq evaluate``'s defaults of the config options this command does not have (e.g. ``--engine``)."""
    from . import CONFIG_OPTIONS, evaluate_command

    # parsed as click parses them (an option without a default is None or (), not click's UNSET marker)
    parsed = evaluate_command.make_context("evaluate", ["CANDIDATE", "--data", "DATA"], resilient_parsing=True).params
    return {name: value for name, value in parsed.items() if name in CONFIG_OPTIONS}


def _write_and_print(comparison: CandidateComparison, out: Path, log_to_mlflow: bool, experiment: str | None) -> None:
    from .._format import format_estimate, format_number
    from ..report import write_candidates_page

    write_candidates_page(comparison, out)
    width = max(len(n) for n in comparison.names)
    click.echo(f"{'candidate':<{width}}  verdict  label loyalty [CI]          speed-up  size    Pareto")
    for c in comparison.candidates:
        if not c.ok:
            click.echo(f"{c.name:<{width}}  error    {c.error}")
            continue
        fronts = ",".join(a.replace("_ratio", "") for a, names in comparison.front.items() if c.name in names)
        loyal = format_estimate(c.report.metrics.get("label_loyalty")) if c.report is not None else ""
        click.echo(f"{c.name:<{width}}  {c.verdict.label if c.verdict else '?':<7}  {loyal:<26}  "
                   f"{format_number(c.value('speedup')):<8}  {format_number(c.value('size_ratio')):<6}  {fronts}")
    best = comparison.best()
    click.echo(f"\nbest passing candidate: {best}" if best else "\nno candidate passes the policy")
    click.echo(f"page: {out / 'candidates.html'}")
    if log_to_mlflow:
        _log(comparison, out, experiment)


def _log(comparison: CandidateComparison, out: Path, experiment: str | None) -> None:
    import mlflow
    from mlflow import MlflowClient

    from ..integration.runlog import log_comparison

    if experiment:
        mlflow.set_experiment(experiment)
    experiment_id = mlflow.tracking.fluent._get_experiment_id()
    if experiment_id is None:  # MLflow names a default experiment unless its registry is cleared
        raise UsageProblem("no MLflow experiment to log the comparison into: give --experiment")
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name="trusteq-candidates")
    try:
        tags = log_comparison(client, run.info.run_id, comparison, out)
    except BaseException:
        client.set_terminated(run.info.run_id, "FAILED")
        raise
    client.set_terminated(run.info.run_id, "FINISHED")
    click.echo(f"logged to run {run.info.run_id}: {tags.get('trusteq.report_url', tags['trusteq.report'])}")

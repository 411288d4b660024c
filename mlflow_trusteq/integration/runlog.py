"""Log a TrustReport and its Verdict to an MLflow run: metrics, params, tags, artifacts, tables."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._keys import mlflow_name

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models.evaluation.base import EvaluationArtifact

    from ..compare import TrustReport
    from ..policy import Policy, Verdict

logger = logging.getLogger(__name__)

__all__ = ["ARTIFACT_DIR", "REPORT_PATH", "metric_payload", "log_evaluation", "load_evaluation", "report_links",
           "merge_description", "description_block", "evaluation_artifacts", "record_version_display", "log_comparison",
           "TABLE_PREFIX"]

#: Run-relative folder of every trusteq artifact (the MLflow tables excepted, see :data:`TABLE_PREFIX`).
ARTIFACT_DIR = "trusteq"
#: The run-relative path of the HTML report.
REPORT_PATH = f"{ARTIFACT_DIR}/report.html"
#: MLflow tables are logged at the run's root as ``trusteq_<name>.json``: ``EvaluationResult.tables``
#: (``mlflow.load_table``) finds a table only there, by its file name.
TABLE_PREFIX = "trusteq_"
#: MLflow's tag behind a run's "Description" (markdown), shown at the top of the run page.
RUN_NOTE_TAG = "mlflow.note.content"
#: The delimiters of trusteq's part of a description; text outside them is the user's and is kept.
#: Markdown link-reference definitions: every markdown renderer hides them (MLflow's UI shows an
#: HTML comment that follows a list as text).
BLOCK_BEGIN = "[//]: # (trusteq:begin)"
BLOCK_END = "[//]: # (trusteq:end)"


def metric_payload(report: TrustReport, verdict: Verdict) -> dict[str, float]:
    """The numeric metrics of a report, namespaced ``trusteq/…``; CI bounds as ``…/ci_lower|ci_upper``.

    Non-finite values are left out (MLflow would store them, but they cannot be compared).
    The verdict is ``trusteq/verdict`` = 1 (pass) or 0 (fail).
    """
    out: dict[str, float] = {mlflow_name("verdict"): 1.0 if verdict.passed else 0.0}
    for key, est in sorted(report.metrics.items()):
        for bound, value in ((None, est.value), ("ci_lower", est.lower), ("ci_upper", est.upper)):
            if value is not None and math.isfinite(float(value)):
                out[mlflow_name(key, bound)] = float(value)
    out[mlflow_name("n_examples")] = float(report.n_examples)
    return out


def _flat(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, scalar)`` pairs of a nested settings dict (lists joined with commas)."""
    out: list[tuple[str, Any]] = []
    for k, v in (d.items() if isinstance(d, dict) else ()):
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flat(v, f"{name}."))
        elif isinstance(v, (list, tuple)):
            out.append((name, ",".join(str(x) for x in v)))
        elif v is not None:
            out.append((name, v))
    return out


def _params(report: TrustReport, policy: Policy, parent_uri: str) -> dict[str, str]:
    s = report.settings
    params = {
        "parent": parent_uri,
        "policy": policy.name,
        "js_base": s.get("js_base"),
        "n_bins_equal_width": s.get("n_bins_equal_width"),
        "n_bins_equal_mass": s.get("n_bins_equal_mass"),
        "min_bin_count": s.get("min_bin_count"),
        "n_resamples": s.get("n_resamples"),
        "confidence": s.get("confidence"),
        "random_state": s.get("random_state"),
        "feature_columns": ",".join(report.feature_columns),
        "kind": report.kind,
    }
    for role in ("parent", "candidate"):  # what changes a model's numbers: batch plan, runtime, tokenizer
        for k, v in _flat(s.get(f"{role}_scoring") or {}):
            params[f"{role}_scoring.{k}"] = v
    for k, v in _flat({"serving_plan": s.get("serving_plan") or {}, "headline_plan": s.get("headline_plan")}):
        params[k] = v
    for section in ("alignment", "robustness", "consistency"):
        result = getattr(report, section)()
        if result is not None:
            for k, v in (result.settings or {}).items():
                if isinstance(v, (int, float, str, bool)):
                    params[f"{section}.{k}"] = v
    sliced = report.slices()
    if sliced is not None:  # the specs and the correction: what changes a slice's numbers and its judgement
        params["slices"] = ",".join(sliced.specs)
        params["slices.correction"] = sliced.correction
    return {f"trusteq.{k}": str(v)[:500] for k, v in params.items() if v is not None}


def log_evaluation(client: MlflowClient, run_id: str, report: TrustReport, verdict: Verdict, policy: Policy, *,
                   parent_uri: str, candidate: tuple[str, str] | None, max_disagreements: int = 200
                   ) -> tuple[dict[str, float], dict[str, str]]:
    """Log everything about one evaluation to ``run_id``; returns (metrics, artifact paths).

    Artifacts land under ``trusteq/``: ``report.html`` (self-contained, verdict on top),
    ``verdict.json``, ``report.json`` (the TrustReport), ``policy.json``, the figures, and the
    tables (disagreements, and the alignment and robustness per-example tables) as MLflow tables
    so that they show in the UI's evaluation view.
    """
    from mlflow.entities import Metric, Param, RunTag

    from ..report import summary_line

    metrics = metric_payload(report, verdict)
    now = int(time.time() * 1000)
    entities = [Metric(k, v, now, 0) for k, v in metrics.items()]
    existing = client.get_run(run_id).data.params
    params = {k: v for k, v in _params(report, policy, parent_uri).items() if k not in existing}
    tags = {
        "trusteq.verdict": verdict.label,
        "trusteq.parent": parent_uri,
        "trusteq.policy": policy.name,
        "trusteq.policy_digest": policy.digest,
        "trusteq.data_digest": report.data_digest,
        "trusteq.reasons": "\n".join(verdict.reasons)[:4900] or "all checks passed",
    }
    if candidate is not None:
        tags["trusteq.candidate"] = f"models:/{candidate[0]}/{candidate[1]}"
    links = report_links(client, run_id)
    tags.update(links)
    tags["trusteq.summary"] = summary_line(report, verdict)
    tags[RUN_NOTE_TAG] = merge_description(
        client.get_run(run_id).data.tags.get(RUN_NOTE_TAG),
        description_block(tags["trusteq.summary"], parent_uri=parent_uri, run_id=run_id, links=links,
                          candidate_uri=tags.get("trusteq.candidate")))
    for start in range(0, len(entities), 900):
        client.log_batch(run_id, metrics=entities[start:start + 900])
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])

    artifacts = _log_artifacts(client, run_id, report, verdict, policy, parent_uri, tags.get("trusteq.candidate"))
    artifacts.update(_log_tables(client, run_id, report, max_disagreements))
    return metrics, artifacts


def _log_artifacts(client: MlflowClient, run_id: str, report: TrustReport, verdict: Verdict, policy: Policy,
                   parent_uri: str, candidate_uri: str | None) -> dict[str, str]:
    """The files under ``trusteq/``: the HTML report and figures, the JSON records, the section pages."""
    from ..report import write_report

    artifacts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="trusteq-") as tmp:
        out = Path(tmp)
        files = write_report(report, verdict, out)
        (out / "verdict.json").write_text(json.dumps(
            {**verdict.to_dict(), "parent": parent_uri, "run_id": run_id, "data_digest": report.data_digest,
             "candidate": candidate_uri}, indent=2))
        (out / "report.json").write_text(report.to_json())
        (out / "policy.json").write_text(json.dumps(policy.to_dict(), indent=2))
        names = [Path(p).name for p in files.values()] + ["verdict.json", "report.json", "policy.json"]
        for section in ("alignment", "robustness", "consistency", "slices"):  # each section's view as its own page
            result = getattr(report, section)()
            if result is not None:
                (out / f"{section}.html").write_text(_standalone_page(section, result.html()))
                names.append(f"{section}.html")
        layers = (report.settings or {}).get("onnx_layers") or {}
        if layers.get("top"):  # the per-layer ONNX comparison (explain.onnx_layers), worst layers first
            import pandas as pd

            pd.DataFrame(layers["top"]).to_csv(out / "onnx_layers.csv", index=False)
            names.append("onnx_layers.csv")
        client.log_artifacts(run_id, str(out), ARTIFACT_DIR)
        for name in names:
            artifacts[name] = f"{ARTIFACT_DIR}/{name}"
    return artifacts


def _log_tables(client: MlflowClient, run_id: str, report: TrustReport, max_disagreements: int) -> dict[str, str]:
    """The disagreement and per-example section tables, as MLflow tables (shown in the evaluation view)."""
    from ..report import disagreement_frame

    tables = {"disagreements": disagreement_frame(report, max_rows=max_disagreements)}
    for section in ("alignment", "robustness", "consistency", "slices"):
        result = getattr(report, section)()
        if result is not None:
            tables[section] = result.table()
    artifacts: dict[str, str] = {}
    for name, frame in tables.items():
        if frame is not None and len(frame):
            client.log_table(run_id, _table_safe(frame), f"{TABLE_PREFIX}{name}.json")
            artifacts[f"{TABLE_PREFIX}{name}"] = f"{TABLE_PREFIX}{name}.json"
    return artifacts


def report_links(client: MlflowClient, run_id: str, *, path: str = REPORT_PATH) -> dict[str, str]:
    """Where the run's report is: ``trusteq.report`` (a ``runs:/`` URI) and, against an http(s)
    tracking server, ``trusteq.report_url`` (the MLflow UI's page of that artifact)."""
    links = {"trusteq.report": f"runs:/{run_id}/{path}"}
    base = str(client.tracking_uri).rstrip("/")
    if base.startswith(("http://", "https://")):
        experiment_id = client.get_run(run_id).info.experiment_id
        links["trusteq.report_url"] = f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}"
    return links


def description_block(summary: str, *, parent_uri: str, run_id: str, links: dict[str, str],
                      candidate_uri: str | None = None) -> str:
    """trusteq's part of a run's or model version's description (markdown, between the delimiters).

    It is what a reviewer reads first: the one-line summary, the parent, and where the evidence is.
    The verdict that the gate trusts is the signed one in the ``trusteq.*`` tags, not this text.
    """
    report = links.get("trusteq.report_url")
    where = f"[the report]({report})" if report else f"`{links['trusteq.report']}`"
    lines = [BLOCK_BEGIN, "", f"**trusteq verdict — {_md(summary)}**", "",
             f"- parent: `{parent_uri}`" + (f" · candidate: `{candidate_uri}`" if candidate_uri else ""),
             f"- evidence: {where} (run `{run_id}`, artifact `{REPORT_PATH}`)",
             "- the signed verdict is in the version's `trusteq.*` tags; the gate checks that, not this text",
             "", BLOCK_END]  # the blank line: a definition cannot interrupt a paragraph
    return "\n".join(lines)


def cleared_block() -> str:
    """The description block of a version whose verdict was cleared (a re-evaluation started)."""
    return "\n".join([BLOCK_BEGIN, "", "**trusteq verdict — none**: the earlier verdict was cleared for a "
                      "re-evaluation; see the version's latest trusteq run", "", BLOCK_END])


def _md(text: str) -> str:
    """Text safe inside markdown emphasis: the characters markdown acts on are escaped."""
    return "".join("\\" + ch if ch in "\\`*_[]#|" else ch for ch in text)


def merge_description(existing: str | None, block: str) -> str:
    """``existing`` with its trusteq block replaced by ``block`` (appended when there is none).

    Text outside :data:`BLOCK_BEGIN` ... :data:`BLOCK_END` is the user's and is kept as it is.
    """
    text = existing or ""
    start = text.find(BLOCK_BEGIN)
    end = text.find(BLOCK_END, start + 1) if start >= 0 else -1
    if start >= 0 and end >= 0:
        return text[:start] + block + text[end + len(BLOCK_END):]
    return f"{text.rstrip()}\n\n{block}" if text.strip() else block


def evaluation_artifacts(client: MlflowClient, run_id: str, artifacts: dict[str, str]) -> dict[str, Any]:
    """What an evaluation logged, as MLflow's ``EvaluationArtifact`` objects (for ``EvaluationResult``).

    Keys are the keys of ``artifacts`` with ``.`` as ``_`` (``report_html``, ``flip_matrix_png``,
    ``verdict_json``; the tables: ``trusteq_disagreements``...); each artifact's URI is its location
    in the run's artifact store and its content is loaded: a PIL image, parsed JSON, a data frame (CSV) or text (HTML).
    """
    from mlflow.models.evaluation.artifacts import (
        CsvEvaluationArtifact,
        ImageEvaluationArtifact,
        JsonEvaluationArtifact,
        TextEvaluationArtifact,
    )

    kinds: dict[str, Callable[..., EvaluationArtifact]] = {
        ".png": ImageEvaluationArtifact, ".json": JsonEvaluationArtifact, ".csv": CsvEvaluationArtifact,
        ".html": TextEvaluationArtifact}
    root = client.get_run(run_id).info.artifact_uri.rstrip("/")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="trusteq-") as tmp, _no_progress_bars():
        folder = Path(client.download_artifacts(run_id, ARTIFACT_DIR, tmp))  # one download for the folder
        for name, path in sorted(artifacts.items()):
            cls = kinds.get(Path(path).suffix)
            if cls is None:
                continue
            inside = path.startswith(f"{ARTIFACT_DIR}/")
            if inside:
                local = str(folder / Path(path).relative_to(ARTIFACT_DIR))
            else:
                local = client.download_artifacts(run_id, path, tmp)
            artifact = cls(uri=f"{root}/{path}")
            artifact._load(local)  # MLflow's own loader for the kind (content kept in memory)
            out[name.replace(".", "_")] = artifact
    return out


def record_version_display(client: MlflowClient, name: str, version: str, report: TrustReport, verdict: Verdict, *,
                           run_id: str, parent_uri: str) -> dict[str, str]:
    """Put the summary, the report link and the description block on a version whose verdict was just recorded.

    Returns the display tags written; a failure is logged (the signed verdict stands either way).
    """
    from ..report import summary_line
    from .registry import record_display

    links = report_links(client, run_id)
    summary = summary_line(report, verdict)
    block = description_block(summary, parent_uri=parent_uri, run_id=run_id, links=links)
    try:
        return record_display(client, name, version, {"trusteq.summary": summary, **links}, description_block=block)
    except Exception as exc:  # the signed verdict is recorded; only what a reviewer reads is missing
        logger.warning("the verdict on models:/%s/%s is recorded, but its summary and description are not: %s: %s",
                       name, version, type(exc).__name__, exc)
        return {}


def log_comparison(client: MlflowClient, run_id: str, comparison: Any, out_dir: str | Path) -> dict[str, str]:
    """Log a written candidates page (:func:`~mlflow_trusteq.report.write_candidates_page`) to ``run_id``.

    The folder goes under ``trusteq/candidates/``, the table as the MLflow table
    ``trusteq_candidates.json``; the run's tags ``trusteq.report``/``trusteq.report_url`` point at
    ``candidates.html`` and ``trusteq.summary`` names the best passing candidate. Nothing is
    recorded on any model version: a comparison judges no version (``trusteq evaluate`` does).
    Returns the tags set.
    """
    from mlflow.entities import RunTag

    folder = f"{ARTIFACT_DIR}/candidates"
    client.log_artifacts(run_id, str(out_dir), folder)
    client.log_table(run_id, _table_safe(comparison.table()), f"{TABLE_PREFIX}candidates.json")
    links = report_links(client, run_id, path=f"{folder}/candidates.html")
    best = comparison.best()
    n_pass = sum(1 for c in comparison.candidates if c.verdict is not None and c.verdict.passed)
    summary = (f"{n_pass}/{len(comparison.candidates)} candidates pass; best: {best}" if best
               else f"no candidate of {len(comparison.candidates)} passes")
    tags = {**links, "trusteq.summary": summary[:250], "trusteq.parent": str(comparison.parent_name)[:500]}
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    return tags


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """MLflow's artifact-download progress bars off (they are noise on stderr) for the block's duration."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _standalone_page(section: str, body: str) -> str:
    """A section's HTML as a page of its own (it may already be a whole document)."""
    if body.lstrip().lower().startswith(("<!doctype", "<html")):
        return body
    import html

    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>trusteq {html.escape(section)}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px}</style></head>"
            f"<body>{body}</body></html>")


def _table_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """MLflow tables hold JSON scalars: lists and dicts become JSON strings."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, (list, dict, tuple))).any():
            frame[col] = frame[col].map(
                lambda v: json.dumps(v, default=str) if isinstance(v, (list, dict, tuple)) else v)
    return frame


def load_evaluation(run_id: str, client: MlflowClient | None = None) -> tuple[TrustReport, Verdict, dict[str, str]]:
    """Read back (TrustReport, Verdict, run tags) of a past trusteq evaluation run."""
    import mlflow
    from mlflow import MlflowClient

    from .._errors import InvalidInputError
    from ..compare import TrustReport
    from ..policy import Verdict

    client = client or MlflowClient()
    run = client.get_run(run_id)
    tags = run.data.tags
    if "trusteq.status" not in tags:
        raise InvalidInputError(f"run {run_id} is not a trusteq evaluation (it has no trusteq.status tag)")
    if tags["trusteq.status"] != "done":
        raise InvalidInputError(f"the trusteq evaluation in run {run_id} did not finish: status "
                                f"{tags['trusteq.status']!r}; {tags.get('trusteq.error', 'no error recorded')}")
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ARTIFACT_DIR, dst_path=tmp)
        report = TrustReport.from_json((Path(local) / "report.json").read_text())
        verdict = Verdict.from_dict(json.loads((Path(local) / "verdict.json").read_text()))
    return report, verdict, dict(tags)

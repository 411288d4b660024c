"""Log a TrustReport and its Verdict to an MLflow run: metrics, params, tags, artifacts, tables."""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .._keys import mlflow_name

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from ..compare import TrustReport
    from ..policy import Policy, Verdict

logger = logging.getLogger(__name__)

__all__ = ["ARTIFACT_DIR", "metric_payload", "log_evaluation", "load_evaluation"]

#: Run-relative folder of every trusteq artifact.
ARTIFACT_DIR = "trusteq"


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
    for section in ("alignment", "robustness"):
        result = getattr(report, section)()
        if result is not None:
            for k, v in (result.settings or {}).items():
                if isinstance(v, (int, float, str, bool)):
                    params[f"{section}.{k}"] = v
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
        for section in ("alignment", "robustness"):  # each section's view also as its own page
            result = getattr(report, section)()
            if result is not None:
                (out / f"{section}.html").write_text(_standalone_page(section, result.html()))
                names.append(f"{section}.html")
        client.log_artifacts(run_id, str(out), ARTIFACT_DIR)
        for name in names:
            artifacts[name] = f"{ARTIFACT_DIR}/{name}"
    return artifacts


def _log_tables(client: MlflowClient, run_id: str, report: TrustReport, max_disagreements: int) -> dict[str, str]:
    """The disagreement and per-example section tables, as MLflow tables (shown in the evaluation view)."""
    from ..report import disagreement_frame

    tables = {"disagreements": disagreement_frame(report, max_rows=max_disagreements)}
    for section in ("alignment", "robustness"):
        result = getattr(report, section)()
        if result is not None:
            tables[section] = result.table()
    artifacts: dict[str, str] = {}
    for name, frame in tables.items():
        if frame is not None and len(frame):
            client.log_table(run_id, _table_safe(frame), f"{ARTIFACT_DIR}/{name}.json")
            artifacts[f"{name}_table"] = f"{ARTIFACT_DIR}/{name}.json"
    return artifacts


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

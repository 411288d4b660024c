"""Per-alias promotion policies: which policy a version must pass for which alias or stage.

The tracking server's operator writes a TOML file and names it in ``TRUSTEQ_GATE_ALIAS_POLICIES``::

    # alias (shell pattern) -> the policy a version must pass to get it
    [aliases.canary]
    policy = "canary"                  # a label for messages
    digest = "3f0c...e1"               # `trusteq policy-digest canary.toml` prints it

    [aliases."champion*"]
    policy = "champion"
    digest = ["9a1d...", "77b0..."]    # several: any of them (while a policy is rolled over)
    models = "sentiment*, fraud"       # optional: only these registered models (default: all)

    [stages.production]                # legacy stage transitions: staging, production
    policy = "champion"
    digest = "9a1d..."

A policy is named by its digest (``Policy.digest`` of mlflow-trusteq: SHA-256 of the policy's
canonical JSON): the verdict a version carries records, signed, how each policy it was judged
against decided (``trusteq.policies``), and the gate requires a *passing* outcome whose digest
is the configured one.  Names are labels only; a client cannot choose the policy (nothing in a
promotion request names one) and cannot change the recorded outcomes (they are signed).  Every
entry that matches an alias applies (all must pass).  An alias no entry matches is judged as
before: by the verdict's overall pass.

The gate depends on mlflow only, so it does not parse policies itself: the digest is pinned
here.  A file that cannot be read, is not TOML or holds anything unexpected stops the server
from starting (:class:`AliasPolicyError`): a gate must not run with a policy silently missing.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trusteq_gate.signing import PolicyRequirement

__all__ = ["ENV_ALIAS_POLICIES", "AliasPolicyError", "AliasPolicies", "PolicyRule"]

ENV_ALIAS_POLICIES = "TRUSTEQ_GATE_ALIAS_POLICIES"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_ENTRY_KEYS = {"policy", "digest", "models"}
_STAGES = ("staging", "production")


class AliasPolicyError(ValueError):
    """The per-alias policy file is missing, unreadable or malformed (the server refuses to start)."""


@dataclass(frozen=True)
class PolicyRule:
    """One entry: for ``target`` (an alias pattern, or a stage) on ``models``, require ``requirement``."""

    target: str
    models: tuple[str, ...]
    requirement: PolicyRequirement

    def applies(self, model: str, target: str) -> bool:
        return (fnmatch.fnmatchcase(target, self.target)
                and any(fnmatch.fnmatchcase(model, p) for p in self.models))


@dataclass(frozen=True)
class AliasPolicies:
    """Every rule of the file (none: no alias has its own policy)."""

    aliases: tuple[PolicyRule, ...] = ()
    stages: tuple[PolicyRule, ...] = ()
    path: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AliasPolicies:
        """The rules of the file ``TRUSTEQ_GATE_ALIAS_POLICIES`` names; none when it is unset or empty."""
        path = environ.get(ENV_ALIAS_POLICIES, "").strip()
        return cls.from_file(path) if path else cls()

    @classmethod
    def from_file(cls, path: str | Path) -> AliasPolicies:
        where = f"{ENV_ALIAS_POLICIES}={str(path)!r}"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise AliasPolicyError(f"{where} cannot be read: {e}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise AliasPolicyError(f"{where} is not valid TOML: {e}") from None
        return cls.from_mapping(data, where=where, path=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "the alias policies",
                     path: str = "") -> AliasPolicies:
        """Validate the parsed file: ``[aliases.<pattern>]`` and ``[stages.<stage>]`` entries, nothing else."""
        unknown = sorted(set(data) - {"aliases", "stages"})
        if unknown:
            raise AliasPolicyError(f"{where}: unknown top-level key(s) {unknown}; expected [aliases.<alias>] and "
                                   "[stages.<staging|production>] tables")
        aliases = _rules(data.get("aliases", {}), f"{where} [aliases]", stage=False, path=path)
        stages = _rules(data.get("stages", {}), f"{where} [stages]", stage=True, path=path)
        if not aliases and not stages:
            raise AliasPolicyError(f"{where} names no alias or stage; remove the setting or add "
                                   "[aliases.<alias>] entries")
        return cls(aliases, stages, path)

    def for_alias(self, model: str, alias: str) -> tuple[PolicyRequirement, ...]:
        """What setting ``alias`` on a version of ``model`` requires (empty: the overall pass)."""
        return tuple(r.requirement for r in self.aliases if r.applies(model, alias))

    def for_stage(self, model: str, stage: str) -> tuple[PolicyRequirement, ...]:
        """What a transition of a version of ``model`` to ``stage`` requires (empty: the overall pass)."""
        return tuple(r.requirement for r in self.stages if r.applies(model, stage.strip().lower()))


def _rules(table: Any, where: str, *, stage: bool, path: str) -> tuple[PolicyRule, ...]:
    if not isinstance(table, Mapping):
        raise AliasPolicyError(f"{where} must be a table of entries, got {table!r:.80}")
    return tuple(_rule(target, entry, f"{where[:-1]}.{target}]", stage=stage, path=path)
                 for target, entry in table.items())


def _rule(target: str, entry: Any, where: str, *, stage: bool, path: str) -> PolicyRule:
    if stage and target.lower() not in _STAGES:
        raise AliasPolicyError(f"{where}: {target!r} is not a promotion stage; expected one of {list(_STAGES)}")
    if not target.strip():
        raise AliasPolicyError(f"{where}: an empty alias pattern")
    if not isinstance(entry, Mapping):
        raise AliasPolicyError(f"{where} must be a table with 'policy' and 'digest', got {entry!r:.80}")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise AliasPolicyError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_ENTRY_KEYS)}")
    name = entry.get("policy")
    if not isinstance(name, str) or not name.strip():
        raise AliasPolicyError(f"{where}: 'policy' (the policy's name, for messages) must be a non-empty string")
    models = entry.get("models", "*")
    if not isinstance(models, str) or not [p for p in models.split(",") if p.strip()]:
        raise AliasPolicyError(f"{where}: 'models' must be a string of comma-separated model name patterns")
    source = f"{ENV_ALIAS_POLICIES} {Path(path).name or 'file'}, {where.rsplit(' ', 1)[-1]}"
    requirement = PolicyRequirement(name.strip(), _digests(entry.get("digest"), where), source)
    return PolicyRule(target.lower() if stage else target, tuple(p.strip() for p in models.split(",") if p.strip()),
                      requirement)


def _digests(value: Any, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise AliasPolicyError(f"{where}: 'digest' must be a policy digest or a non-empty list of them "
                               "(`trusteq policy-digest POLICY.toml` prints it)")
    bad = [v for v in values if not _DIGEST.fullmatch(v)]
    if bad:
        raise AliasPolicyError(f"{where}: {bad[0]!r} is not a policy digest (64 lowercase hex characters, as "
                               "`trusteq policy-digest POLICY.toml` prints)")
    return tuple(values)

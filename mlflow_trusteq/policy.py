"""Gate policy: thresholds -> Verdict.  (Verdict types first; Policy is below.)"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["CheckResult", "Verdict"]

Status = Literal["pass", "fail", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of the policy on one report key."""

    metric: str
    status: Status
    reason: str
    value: float | None = None
    bound: float | None = None  # the number that was judged (a CI bound or the point estimate)
    threshold: float | None = None


@dataclass(frozen=True)
class Verdict:
    """Pass or fail, with one readable reason per failed or skipped check."""

    passed: bool
    checks: tuple[CheckResult, ...] = ()
    policy_digest: str = ""
    policy_name: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``"pass"`` or ``"fail"``."""
        return "pass" if self.passed else "fail"

    @property
    def reasons(self) -> list[str]:
        """One sentence per check that did not pass."""
        return [c.reason for c in self.checks if c.status != "pass"]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.label, "passed": self.passed, "policy_name": self.policy_name,
                "policy_digest": self.policy_digest, "reasons": self.reasons,
                "checks": [asdict(c) for c in self.checks], "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Verdict":
        return cls(passed=bool(d["passed"]), checks=tuple(CheckResult(**c) for c in d.get("checks", [])),
                   policy_digest=d.get("policy_digest", ""), policy_name=d.get("policy_name", "default"),
                   extra=dict(d.get("extra", {})))

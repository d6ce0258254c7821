"""Output contracts of the code bundle's agents, as pydantic models.

Ingest is lenient: extra keys are ignored, severities accept synonyms, optional fields get
defaults. Only hard rules fail (a missing verdict, findings that are not a list, an unknown
complexity): the ``ValidationError`` text becomes the rework request the agent receives.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loom_core.kernel.parse import normalise_severity

COMPLEXITIES = ("trivial", "simple", "medium", "complex", "question")
CHANGE_KINDS = ("type-only", "logic", "ui", "perf-sensitive", "security-sensitive", "config-only", "docs-only")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Finding(_Lenient):
    severity: Literal["blocking", "warn", "info"]
    category: str = "other"
    summary: str = Field(default="", max_length=2000)
    file: str | None = None
    line_start: int | None = Field(default=None, ge=1)
    line_end: int | None = Field(default=None, ge=1)
    evidence_excerpt: str | None = None
    suggested_fix: str | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, v: Any) -> Any:
        return normalise_severity(v) or v

    @field_validator("line_start", "line_end", mode="before")
    @classmethod
    def _line(cls, v: Any) -> Any:
        if isinstance(v, str) and not (v.strip().isascii() and v.strip().isdigit()):
            return None
        return v


class ReviewerHeader(_Lenient):
    verdict: Literal["APPROVE", "REQUEST_CHANGES", "WARN"]
    summary_line: str = ""
    findings: list[Finding]

    @field_validator("verdict", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v


class ValidatorHeader(_Lenient):
    verdict: str = Field(min_length=1)
    summary_line: str = ""
    findings: list[Finding] = Field(default_factory=list)

    @field_validator("verdict", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v


class Stack(_Lenient):
    language: str | None = None
    package_manager: str | None = None
    test_command: str | None = None
    lint_command: str | None = None
    build_command: str | None = None
    project_type: str | None = None


class ClassifierOutput(_Lenient):
    task_short: str | None = Field(default=None, max_length=60)
    complexity: Literal["trivial", "simple", "medium", "complex", "question"] = "medium"
    tests_mode: Literal["tdd", "regression-only"] | None = None
    security_needed: bool = False
    change_kind: Literal["type-only", "logic", "ui", "perf-sensitive", "security-sensitive", "config-only",
                         "docs-only"] | None = None
    stack: Stack | None = None
    refs_to_load: list[str] = Field(default_factory=list, max_length=5)

    @field_validator("complexity", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v


class ResponderOutput(_Lenient):
    answer: str = Field(min_length=1)


class CheckEntry(_Lenient):
    name: str
    status: Literal["ok", "fail", "preexisting", "unverified", "skipped"]
    exit_code: int | None = None
    command: str = ""
    output_head: str = ""
    output_tail: str = ""
    reason: str = ""
    locations: list[dict[str, Any]] = Field(default_factory=list)
    new_failures: list[str] = Field(default_factory=list)
    preexisting: list[str] = Field(default_factory=list)
    scope: str | None = None
    cached: bool = False
    expected: bool = False  # skipped, but the project has this check (its tool could not run here)


class ChecksEnvelope(_Lenient):
    """The checks executor's envelope. Merged into the decisions as ``checks`` plus the
    ``checks_env`` / ``checks_tree_changes`` / ``checks_disabled`` / ``checks_tree`` keys, which
    ``apply-checks`` folds into the bundle state."""

    checks: list[CheckEntry]
    checks_env: dict[str, Any] | None = Field(default=None, alias="environment")
    checks_tree_changes: list[str] = Field(default_factory=list, alias="tree_changes")
    checks_disabled: bool = Field(default=False, alias="disabled")
    checks_tree: str | None = Field(default=None, alias="tree")  # the sandbox tree the checks saw (driver)


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def validator_for(model: type[BaseModel], *, keep_extra: bool = False, exclude_none: bool = False):
    """A kernel contract: header dict -> normalised dict, or ValueError naming the fields."""

    def contract(header: dict[str, Any]) -> dict[str, Any]:
        try:
            obj = model.model_validate(header)
        except ValidationError as exc:
            raise ValueError(_explain(exc)) from None
        out = obj.model_dump(mode="json", exclude_none=exclude_none)
        if keep_extra:
            out = {**{k: v for k, v in header.items() if k not in out}, **out}
        return out

    contract.__name__ = f"contract_{model.__name__}"
    return contract


REVIEWER = validator_for(ReviewerHeader)
VALIDATOR = validator_for(ValidatorHeader)
CLASSIFIER = validator_for(ClassifierOutput, exclude_none=True)
RESPONDER = validator_for(ResponderOutput)
CHECKS = validator_for(ChecksEnvelope)

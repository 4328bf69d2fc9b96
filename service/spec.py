"""The job spec users submit (docs/api.md), validated completely before anything is stored.

Every limit here is a user-facing contract: a spec that passes is one the control loop can run.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetJsonSchemaHandler,
    Strict,
    StringConstraints,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from service.domain.lambda_limits import MAX_MEMORY_MB, MAX_TIMEOUT_S, MIN_MEMORY_MB
from service.workloads import params as builtin_params

MAX_DEADLINE_S = 30 * 24 * 3600

BUILTIN_FUNCTIONS = tuple(builtin_params.BUILTIN_PARAMS)
# The patterns below are also published in the OpenAPI schema, so they are written in the
# syntax Python's re and ECMA-262 (JSON Schema's) read alike.
_LAMBDA_NAME_PATTERN = (
    r"(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:)?[a-zA-Z0-9_-]{1,64}"
    r"(:[a-zA-Z0-9_$-]{1,128})?"
)
_LAMBDA_NAME = re.compile(f"^{_LAMBDA_NAME_PATTERN}$")
#: ``workload.function``: a built-in or a Lambda function's name, ARN or qualified name.
FUNCTION_PATTERN = (
    "^(" + "|".join(re.escape(name) for name in BUILTIN_FUNCTIONS) + f"|{_LAMBDA_NAME_PATTERN})$"
)
_DATASET = re.compile(
    r"^(builtin:digits|builtin:synthetic(\?[A-Za-z0-9_=&.]*)?"
    r"|s3://[^\s\x00-\x1f\x7f]+|file://[^\s\x00-\x1f\x7f]+)$"
)
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# What the text checks below accept, for the schema: no control character; a name not blank.
_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
_NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"

# JSON has numbers, strings and booleans: `"trials": true` or `"eta": "3"` is a mistake to report,
# not a value to coerce.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
# Postgres refuses NUL in text and in JSON documents, and no control character belongs in a name
# or a value; rejecting them here keeps a spec that passes storable on Postgres and SQLite alike.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# JSON's "\ud800" decodes to a lone UTF-16 surrogate: a Python str, but not Unicode text that
# UTF-8 (hence Postgres) can encode.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (NUL, newline, tab, …)")
    if _SURROGATE.search(value):
        raise ValueError(_SURROGATE_MESSAGE)
    return value


_SURROGATE_MESSAGE = (
    "must be valid Unicode text: a lone UTF-16 surrogate (\\ud800-\\udfff) cannot be stored"
)


def printable(text: str) -> str:
    """``text`` with lone surrogates spelled out (``\\ud800``), safe to encode as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _invalid(path: list[str | int], reason: str, kind: str = "value_error") -> PydanticCustomError:
    """An error naming the field at ``path`` in the spec (the API adds it to the error's loc)."""
    where = ".".join(str(part) for part in path)
    return PydanticCustomError(
        kind, "{where}: {reason}", {"where": where, "reason": reason, "path": path}
    )


def _unencodable_text(node: Any, path: list[str | int]) -> PydanticCustomError | None:
    """The first string (value or key) anywhere in ``node`` that UTF-8 cannot encode."""
    if isinstance(node, str):
        return (
            _invalid(path, _SURROGATE_MESSAGE, "invalid_text") if _SURROGATE.search(node) else None
        )
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and _SURROGATE.search(key):
                return _invalid(
                    [*path, printable(key)], "a name " + _SURROGATE_MESSAGE, "invalid_text"
                )
            if found := _unencodable_text(value, [*path, key]):
                return found
    if isinstance(node, list | tuple):
        for index, value in enumerate(node):
            if found := _unencodable_text(value, [*path, index]):
                return found
    return None


Text = Annotated[
    str, AfterValidator(_no_control_characters), Field(json_schema_extra={"pattern": _TEXT_PATTERN})
]
ParamName = Annotated[str, StringConstraints(pattern=_PARAM_NAME.pattern)]


def _scalar_type(value: Any) -> str | None:
    for kind, tag in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if isinstance(value, kind):
            return tag
    return None


# Validated as the type it already is, so an error names one problem, not one per alternative.
Scalar = Annotated[
    Annotated[Float, Tag("float")]
    | Annotated[Int, Tag("int")]
    | Annotated[Text, Tag("str")]
    | Annotated[Bool, Tag("bool")],
    Discriminator(
        _scalar_type,
        custom_error_type="scalar_type",
        custom_error_message="Input should be a number, a string or a boolean",
    ),
]
MemoryMB = Annotated[Int, Field(ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB)]


class _Spec(BaseModel):
    # allow_inf_nan: Python's JSON parser accepts NaN and Infinity, which no limit here can mean
    # and which Postgres cannot store.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _bounds_schema(title: str, item: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "title": title,
        "type": "array",
        "items": item,
        "minItems": 2,
        "maxItems": 2,
        "description": description,
    }


_SCALAR_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {"type": "string", "pattern": _TEXT_PATTERN},
        {"type": "boolean"},
    ]
}
_FORMS_SCHEMA: dict[str, dict[str, Any]] = {
    "uniform": _bounds_schema("Uniform", {"type": "number"}, "[low, high], low < high"),
    "log_uniform": _bounds_schema(
        "LogUniform", {"type": "number", "exclusiveMinimum": 0}, "[low, high], 0 < low < high"
    ),
    "int_uniform": _bounds_schema("IntUniform", {"type": "integer"}, "[low, high], low <= high"),
    "choice": {
        "title": "Choice",
        "type": "array",
        "items": _SCALAR_SCHEMA,
        "minItems": 1,
        "maxItems": 1000,
    },
}


class Distribution(_Spec):
    """One search-space dimension: exactly one of the four forms."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema: _one_of_forms(schema),
    )

    uniform: tuple[Float, Float] | None = None
    log_uniform: tuple[Float, Float] | None = None
    int_uniform: tuple[Int, Int] | None = None
    choice: list[Scalar] | None = Field(None, min_length=1, max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _one_known_form(cls, value: Any) -> Any:
        forms = ("uniform", "log_uniform", "int_uniform", "choice")
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in forms:
            raise ValueError(
                "a distribution is an object with exactly one of "
                f'{", ".join(forms)}, e.g. {{"log_uniform": [0.0001, 0.1]}}'
            )
        form, given = next(iter(value.items()))
        if given is None:
            raise ValueError(f"{form} must be given a value, not null")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Distribution:
        for form in ("uniform", "log_uniform", "int_uniform"):
            bounds = getattr(self, form)
            if bounds is None:
                continue
            low, high = bounds
            if form == "int_uniform" and low > high:
                raise ValueError(f"{form} needs low <= high, got [{low}, {high}]")
            if form != "int_uniform" and not low < high:
                raise ValueError(f"{form} needs low < high, got [{low}, {high}]")
            if form == "log_uniform" and low <= 0:
                raise ValueError(f"log_uniform needs low > 0, got {low}")
        return self


def _one_of_forms(schema: dict[str, Any]) -> None:
    """Publish a distribution as what it is: an object with exactly one of the four forms."""
    description = schema.get("description")
    schema.clear()
    schema["title"] = "Distribution"
    if description:
        schema["description"] = description
    schema["oneOf"] = [
        {
            "title": f"{bounds['title']}Distribution",
            "type": "object",
            "properties": {form: bounds},
            "required": [form],
            "additionalProperties": False,
        }
        for form, bounds in _FORMS_SCHEMA.items()
    ]


class Workload(_Spec):
    function: Text = Field(
        description="A built-in workload (builtin:logreg, builtin:mlp) or the name/ARN of your "
        "own Lambda function that follows the handler contract.",
        json_schema_extra={"pattern": FUNCTION_PATTERN},
        examples=["builtin:logreg", "my-trainer", "my-trainer:live"],
    )
    dataset: Text = Field(
        "builtin:digits",
        description="builtin:digits, builtin:synthetic?n=200000&d=100, s3://bucket/key.npz or "
        "file:///path.npz",
        json_schema_extra={"pattern": _DATASET.pattern},
    )
    architecture: Literal["x86_64", "arm64", "auto"] = Field(
        "x86_64",
        description="The Lambda architecture the tasks run on. `auto` (ce-scaling only): the "
        "first stage's pilots run on both, then each task shape runs on the one with the lower "
        "predicted cost among those that meet the deadline (docs/policies.md).",
    )
    timeout_s: Int = Field(300, ge=1, le=MAX_TIMEOUT_S, description="Per-invocation timeout.")

    @property
    def base_architecture(self) -> Literal["x86_64", "arm64"]:
        """The architecture the function is created with and priced at before a run says
        otherwise: the spec's, or x86_64 under ``auto``."""
        return "x86_64" if self.architecture == "auto" else self.architecture

    @field_validator("function")
    @classmethod
    def _known_function(cls, value: str) -> str:
        if value.startswith("builtin:"):
            if value not in BUILTIN_FUNCTIONS:
                raise ValueError(
                    f"unknown built-in workload {value!r}; built-ins are "
                    + ", ".join(BUILTIN_FUNCTIONS)
                )
            return value
        if not _LAMBDA_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is neither a built-in workload nor a Lambda name or ARN")
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if not _DATASET.fullmatch(value):
            raise ValueError(
                "dataset must be builtin:digits, builtin:synthetic[?n=..&d=..], s3://… or file://…"
            )
        return value


class HpoSpec(_Spec):
    search_space: dict[str, Distribution] = Field(
        min_length=1,
        max_length=32,
        description="Hyperparameter name → distribution. A built-in workload takes only its own "
        "parameters (docs/api.md lists them).",
        json_schema_extra={"propertyNames": {"pattern": _PARAM_NAME.pattern}},
    )
    trials: Int = Field(ge=1, le=10_000)
    eta: Int = Field(3, ge=2, le=16, description="Successive-halving reduction factor.")
    min_epochs: Int = Field(1, ge=1, le=100_000)
    max_epochs: Int = Field(ge=1, le=100_000)
    hyperband: Bool = Field(False, description="Run Hyperband brackets instead of one bracket.")
    seed: Int = Field(0, ge=0, le=2**31 - 1, description="Seed of trial sampling.")

    @field_validator("search_space")
    @classmethod
    def _param_names(cls, value: dict[str, Distribution]) -> dict[str, Distribution]:
        bad = [name for name in value if not _PARAM_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"invalid parameter names {bad}: use letters, digits and _")
        return value

    @model_validator(mode="after")
    def _epoch_range(self) -> HpoSpec:
        if self.max_epochs < self.min_epochs:
            raise ValueError(
                f"max_epochs ({self.max_epochs}) must be >= min_epochs ({self.min_epochs})"
            )
        return self


class TrainingSpec(_Spec):
    workers: Int = Field(ge=1, le=1_000, description="Parallel workers per round.")
    max_epochs: Int = Field(ge=1, le=100_000)
    epochs_per_round: Int = Field(1, ge=1, le=100_000)
    target_loss: Float | None = Field(None, gt=0, description="Stop when the loss reaches this.")
    params: dict[ParamName, Scalar] = Field(
        default_factory=dict,
        max_length=32,
        description="Passed to every invocation. A built-in workload takes only its own "
        "parameters (docs/api.md lists them).",
        json_schema_extra=lambda schema: _scalar_map(schema),
    )

    @model_validator(mode="after")
    def _round_fits(self) -> TrainingSpec:
        if self.epochs_per_round > self.max_epochs:
            raise ValueError("epochs_per_round must be <= max_epochs")
        return self


def _scalar_map(schema: dict[str, Any]) -> None:
    """Published as names → scalars (Pydantic's own form is a ``oneOf`` that an integer, being
    both a number and an integer, would fail)."""
    schema.pop("patternProperties", None)
    schema["propertyNames"] = {"pattern": _PARAM_NAME.pattern}
    schema["additionalProperties"] = _SCALAR_SCHEMA


class Qos(_Spec):
    deadline_s: Float = Field(gt=0, le=MAX_DEADLINE_S, description="Wall-clock deadline.")


class Budget(_Spec):
    max_cost_usd: Float = Field(ge=0, le=1_000_000, description="Stop launching past this.")


class StaticPolicy(_Spec):
    name: Literal["static"]
    memory_mb: MemoryMB


class CeScalingPolicy(_Spec):
    name: Literal["ce-scaling"]
    min_memory_mb: MemoryMB = MIN_MEMORY_MB
    max_memory_mb: MemoryMB = MAX_MEMORY_MB

    @model_validator(mode="after")
    def _range(self) -> CeScalingPolicy:
        if self.min_memory_mb > self.max_memory_mb:
            raise ValueError("min_memory_mb must be <= max_memory_mb")
        return self


class PowerTuningPolicy(_Spec):
    name: Literal["power-tuning"]
    strategy: Literal["cost", "speed", "balanced"] = "balanced"
    memory_mb_candidates: list[MemoryMB] = Field(
        default_factory=lambda: [128, 256, 512, 1024, 1769, 3008], min_length=2, max_length=20
    )
    invocations_per_size: Int = Field(3, ge=1, le=50)

    @field_validator("memory_mb_candidates")
    @classmethod
    def _sorted_unique(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("memory_mb_candidates must not repeat a size")
        return sorted(value)


Policy = Annotated[StaticPolicy | CeScalingPolicy | PowerTuningPolicy, Field(discriminator="name")]
JobName = Annotated[
    Text, Field(min_length=1, max_length=200, json_schema_extra={"pattern": _NAME_PATTERN})
]


def _default_policy() -> CeScalingPolicy:
    return CeScalingPolicy(name="ce-scaling")


class _PublishedJob(_Spec):
    name: JobName
    workload: Workload
    qos: Qos
    budget: Budget | None = None
    policy: Policy = Field(default_factory=_default_policy)


def _builtin_rules(section: str, field: str, with_values: bool) -> dict[str, Any]:
    """JSON Schema saying what a built-in workload's ``section.field`` may name: its own
    parameters (and, for ``training.params``, their values).

    Either the function is not a built-in, or it is one and the field names only its
    parameters. (The same as one ``if``/``then`` per built-in, written without negating a
    whole object, which schema-driven generators handle far faster.)"""

    def function(rule: dict[str, Any]) -> dict[str, Any]:
        return {"workload": {"properties": {"function": rule}}}

    others = {"properties": function({"not": {"enum": list(builtin_params.BUILTIN_PARAMS)}})}
    rules = [others]
    for name, schema in builtin_params.BUILTIN_PARAMS.items():
        names: dict[str, Any] = {"propertyNames": {"enum": sorted(schema["properties"])}}
        if with_values:
            names["properties"] = schema["properties"]
        rules.append(
            {
                "properties": {
                    **function({"const": name}),
                    section: {"properties": {field: names}},
                }
            }
        )
    return {
        "allOf": [
            {
                "description": "A built-in workload takes only its own parameters.",
                "anyOf": rules,
            },
            _AUTO_ARCHITECTURE_RULE,
        ]
    }


# Architecture ``auto`` is decided by ce-scaling only (JobSpec._auto_needs_ce_scaling).
_AUTO_ARCHITECTURE_RULE: dict[str, Any] = {
    "description": "Architecture 'auto' needs the ce-scaling policy (the default).",
    "anyOf": [
        {
            "properties": {
                "workload": {"properties": {"architecture": {"enum": ["x86_64", "arm64"]}}}
            }
        },
        {"properties": {"policy": {"properties": {"name": {"const": "ce-scaling"}}}}},
    ],
}


class HpoJobSpec(_PublishedJob):
    """A hyperparameter search (successive halving or Hyperband)."""

    model_config = ConfigDict(json_schema_extra=_builtin_rules("hpo", "search_space", False))

    kind: Literal["hpo"]
    hpo: HpoSpec


class TrainingJobSpec(_PublishedJob):
    """Data-parallel training in rounds."""

    model_config = ConfigDict(json_schema_extra=_builtin_rules("training", "params", True))

    kind: Literal["training"]
    training: TrainingSpec


# The job spec as the OpenAPI schema publishes it: a union discriminated by ``kind``, each kind
# with its own section. Submissions are validated by JobSpec (the same fields and rules, one
# model, so that error locations name the spec's own fields).
_PUBLISHED_SPEC = TypeAdapter(Annotated[HpoJobSpec | TrainingJobSpec, Field(discriminator="kind")])


class JobSpec(_Spec):
    name: JobName
    kind: Literal["hpo", "training"]
    workload: Workload
    hpo: HpoSpec | None = None
    training: TrainingSpec | None = None
    qos: Qos
    budget: Budget | None = None
    policy: Policy = Field(default_factory=_default_policy)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(_PUBLISHED_SPEC.core_schema)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        # Before any field is read: a surrogate in an unknown key or an error's echo of a value
        # must not reach the error report either.
        if found := _unencodable_text(value, []):
            raise found
        return value

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        return value

    @model_validator(mode="after")
    def _kind_matches_section(self) -> JobSpec:
        if self.kind == "hpo" and (self.hpo is None or self.training is not None):
            raise ValueError("kind 'hpo' needs an 'hpo' section and no 'training' section")
        if self.kind == "training" and (self.training is None or self.hpo is not None):
            raise ValueError("kind 'training' needs a 'training' section and no 'hpo' section")
        return self

    @model_validator(mode="after")
    def _auto_needs_ce_scaling(self) -> JobSpec:
        """Only ce-scaling decides an architecture: any other policy has no rule to choose
        one, so ``auto`` with it is refused rather than silently run on x86_64."""
        if self.workload.architecture == "auto" and self.policy.name != "ce-scaling":
            raise _invalid(
                ["workload", "architecture"],
                f"architecture 'auto' needs the ce-scaling policy, not {self.policy.name!r}: "
                "pick x86_64 or arm64 for it",
                "architecture_needs_ce_scaling",
            )
        return self

    @model_validator(mode="after")
    def _builtin_params(self) -> JobSpec:
        """A built-in workload's params are checked against its parameter schema (the one its
        handler uses); your own function's params are its own business."""
        function = self.workload.function
        if function not in builtin_params.BUILTIN_PARAMS:
            return self
        try:
            if self.training is not None:
                where = ["training", "params"]
                builtin_params.check_params(function, dict(self.training.params))
            if self.hpo is not None:
                for name, distribution in self.hpo.search_space.items():
                    where = ["hpo", "search_space"]
                    _check_dimension(function, name, distribution)
        except builtin_params.InvalidParams as error:
            path = [*where, error.name] if error.name else where
            raise _invalid(path, error.reason, "invalid_parameter") from None
        return self


def _check_dimension(function: str, name: str, distribution: Distribution) -> None:
    """Every value ``distribution`` can draw for ``name`` is one built-in ``function`` takes."""
    ranged = distribution.uniform or distribution.log_uniform
    if ranged is not None and not builtin_params.takes_fractions(function, name):
        form = "uniform" if distribution.uniform else "log_uniform"
        raise builtin_params.InvalidParams(
            name, f"{form} draws fractions but {name!r} takes integers: use int_uniform or choice"
        )
    # The parameters' bounds are intervals, so a range whose ends are in bounds draws only
    # values in bounds. A continuous range draws from [low, high): its ends are checked one
    # float inside, so uniform [0, 1] suits an lr > 0 (a draw of exactly 0.0 has odds 2**-53).
    if ranged is None:
        for value in distribution.int_uniform or distribution.choice or ():
            builtin_params.check_params(function, {name: value})
        return
    low, high = ranged
    for end in (low, high):
        try:
            builtin_params.check_params(function, {name: math.nextafter(end, low + high - end)})
        except builtin_params.InvalidParams:
            builtin_params.check_params(function, {name: end})  # says it with the user's number
            raise

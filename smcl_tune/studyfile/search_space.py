"""The search space's distributions, typed: `{uniform: [low, high]}`, `{loguniform: ...}`, `{int: ...}`,
`{logint: ...}` or `{choice: [values]}` for one dotted config path, parsed once into a model that
checks its own bounds, knows the values at its edges (to validate against the trial config) and
becomes Optuna's distribution.

The bounds are kept as written (an int stays an int), so a study's fingerprint, a hash of the file's
parsed values, does not change with this parsing.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Discriminator, Field, Tag, model_validator

from smcl_tune.config import StrictModel
from smcl_tune.errors import short_repr

DISTRIBUTIONS = ("uniform", "loguniform", "int", "logint", "choice")


class _Distribution(StrictModel):
    """One kind of distribution; `bounds` is the value under its kind's key."""

    model_config = ConfigDict(validate_by_alias=True, validate_by_name=False, serialize_by_alias=True)
    kind: ClassVar[str]
    whole: ClassVar[bool] = False  # whole numbers only
    log: ClassVar[bool] = False  # on a log scale

    @model_validator(mode="after")
    def _check_bounds(self):
        bounds = self.bounds
        numbers = isinstance(bounds, list) and len(bounds) == 2
        if not (numbers and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
            raise ValueError(f"needs [low, high], got {short_repr(bounds)}")
        low, high = bounds
        if not all(math.isfinite(b) for b in bounds):
            raise ValueError(f"bounds must be finite, got {short_repr(bounds)}")
        if self.whole and not all(float(b).is_integer() for b in bounds):
            raise ValueError(f"bounds must be whole numbers, got {short_repr(bounds)}")
        if low >= high:
            raise ValueError(f"low must be below high, got [{low}, {high}]")
        if self.log and low <= 0:
            raise ValueError(f"low must be > 0 on a log scale, got {low}")
        return self

    def edge_values(self) -> list[Any]:
        """The values at the distribution's edges, as a trial would get them."""
        convert = int if self.whole else float
        return [convert(bound) for bound in self.bounds]

    def to_optuna(self):
        import optuna  # the driver's searcher only: validate loads no Optuna

        low, high = self.edge_values()
        if self.whole:
            return optuna.distributions.IntDistribution(low, high, log=self.log)
        return optuna.distributions.FloatDistribution(low, high, log=self.log)


class Uniform(_Distribution):
    kind: ClassVar[str] = "uniform"
    bounds: Any = Field(alias="uniform")


class LogUniform(_Distribution):
    kind: ClassVar[str] = "loguniform"
    log: ClassVar[bool] = True
    bounds: Any = Field(alias="loguniform")


class IntRange(_Distribution):
    kind: ClassVar[str] = "int"
    whole: ClassVar[bool] = True
    bounds: Any = Field(alias="int")


class LogIntRange(_Distribution):
    kind: ClassVar[str] = "logint"
    whole: ClassVar[bool] = True
    log: ClassVar[bool] = True
    bounds: Any = Field(alias="logint")


class Choice(StrictModel):
    model_config = ConfigDict(validate_by_alias=True, validate_by_name=False, serialize_by_alias=True)
    kind: ClassVar[str] = "choice"
    values: Any = Field(alias="choice")

    @model_validator(mode="after")
    def _check_values(self):
        if not isinstance(self.values, list) or not self.values:
            raise ValueError(f"needs a non-empty list of values, got {short_repr(self.values)}")
        if len({json.dumps(value, sort_keys=True) for value in self.values}) != len(self.values):
            raise ValueError(f"each value once, got {short_repr(self.values)}")  # a repeat only weights the sampler
        return self

    def edge_values(self) -> list[Any]:
        return list(self.values)

    def to_optuna(self):
        import optuna

        return optuna.distributions.CategoricalDistribution(self.values)


def _kind(value: Any) -> str | None:
    """The distribution a mapping names: its one key."""
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 else None
    return getattr(value, "kind", None)


SearchDistribution = Annotated[
    Annotated[Uniform, Tag("uniform")]
    | Annotated[LogUniform, Tag("loguniform")]
    | Annotated[IntRange, Tag("int")]
    | Annotated[LogIntRange, Tag("logint")]
    | Annotated[Choice, Tag("choice")],
    Discriminator(
        _kind,
        custom_error_type="distribution",
        custom_error_message=f"give exactly one distribution of {', '.join(DISTRIBUTIONS)}",
    ),
]

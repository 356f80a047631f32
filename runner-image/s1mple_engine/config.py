"""Operation and strategy-blueprint models, and the one YAML loader of the project.

Every YAML file the project reads (operation, blueprint, operators, optimization, variant test) goes
through :func:`load_yaml_model`, so a typo anywhere gets the same kind of error: the file, the dotted
path of the key, and what would have been valid.  Models accept snake_case and camelCase spellings
(the camelCase ones become the CRD schema), and reject unknown keys.
"""

from __future__ import annotations

import difflib
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel


class ConfigError(ValueError):
    """A configuration problem; ``problems`` holds one line per problem, each naming where and the fix."""

    def __init__(self, problems: list[str] | str, source: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            text = head + self.problems[0]
        else:
            text = f"{head}{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)


class SpecModel(BaseModel):
    """Base of every config model: forbids unknown keys, accepts snake_case and camelCase."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
        use_enum_values=False,
    )


class ExecutionStrategy(StrEnum):
    SEQUENTIAL = "SEQUENTIAL"
    PARALLEL = "PARALLEL"
    EVENT_DRIVEN = "EVENT_DRIVEN"


class AggregationStrategy(StrEnum):
    CHAIN_THROUGH = "CHAIN_THROUGH"
    COLLECT_ALL = "COLLECT_ALL"
    NONE = "NONE"


#: The aggregation that goes with an execution strategy when only the latter is given.
DEFAULT_AGGREGATION: dict[ExecutionStrategy, AggregationStrategy] = {
    ExecutionStrategy.SEQUENTIAL: AggregationStrategy.CHAIN_THROUGH,
    ExecutionStrategy.PARALLEL: AggregationStrategy.COLLECT_ALL,
    ExecutionStrategy.EVENT_DRIVEN: AggregationStrategy.NONE,
}

OPERATOR_IDS = (
    "ContextOperator",
    "OpportunityOperator",
    "ThreatOperator",
    "PlanningOperator",
    "ExecutionOperator",
)
PLANNING_PHASES = ("entry_planning", "exit_planning", "size_planning", "order_routing")
EXECUTION_PHASES = ("position_management", "risk_safety", "operational")


class OperatorConfig(SpecModel):
    """How one operator drives its workers (see docs in s1mple_engine.operators)."""

    execution_strategy: ExecutionStrategy = Field(description="how the operator runs its workers")
    aggregation_strategy: AggregationStrategy | None = Field(
        default=None, description="how the operator combines its workers' outputs"
    )

    @property
    def aggregation(self) -> AggregationStrategy:
        """The aggregation in force: the given one, or the execution strategy's default."""
        return self.aggregation_strategy or DEFAULT_AGGREGATION[self.execution_strategy]

    @model_validator(mode="after")
    def _default_aggregation(self) -> OperatorConfig:
        if self.aggregation_strategy is None:
            self.aggregation_strategy = DEFAULT_AGGREGATION[self.execution_strategy]
        return self


class WorkerConfig(SpecModel):
    """One worker in a blueprint: which plugin, with which params."""

    plugin: str = Field(min_length=1, max_length=100, description="the registered plugin name")
    subtype: str | None = Field(default=None, description="the worker subtype, when the phase has several")
    params: dict[str, Any] = Field(default_factory=dict, description="the plugin's parameters")
    triggers: list[str] | None = Field(default=None, description="events that run this worker")


class PlanningWorkers(SpecModel):
    entry_planning: list[WorkerConfig] = Field(default_factory=list, description="when and how to enter")
    exit_planning: list[WorkerConfig] = Field(default_factory=list, description="when and how to exit")
    size_planning: list[WorkerConfig] = Field(default_factory=list, description="how much to trade")
    order_routing: list[WorkerConfig] = Field(default_factory=list, description="how orders are placed")


class ExecutionWorkers(SpecModel):
    position_management: list[WorkerConfig] = Field(
        default_factory=list, description="workers that manage open positions"
    )
    risk_safety: list[WorkerConfig] = Field(default_factory=list, description="risk and safety workers")
    operational: list[WorkerConfig] = Field(default_factory=list, description="operational workers")


class Blueprint(SpecModel):
    """A strategy: which workers of the five categories, with which params (strategy_blueprint.yaml)."""

    name: str = Field(default="strategy", max_length=200, description="the strategy's name")
    description: str | None = Field(default=None, description="free text for people")
    context_workers: list[WorkerConfig] = Field(
        default_factory=list, description="workers that describe the market (indicators, regimes)"
    )
    opportunity_workers: list[WorkerConfig] = Field(
        default_factory=list, description="workers that signal trading opportunities"
    )
    threat_workers: list[WorkerConfig] = Field(
        default_factory=list, description="workers that signal threats to open positions"
    )
    planning_workers: PlanningWorkers = Field(
        default_factory=PlanningWorkers, description="workers that turn signals into orders"
    )
    execution_workers: ExecutionWorkers = Field(
        default_factory=ExecutionWorkers, description="workers that act on open positions"
    )
    operator_overrides: dict[str, OperatorConfig] = Field(
        default_factory=dict, description="per-operator execution/aggregation strategy, by operator id"
    )

    @model_validator(mode="after")
    def _known_operators(self) -> Blueprint:
        for op in self.operator_overrides:
            if op not in OPERATOR_IDS:
                raise ValueError(f"operator_overrides: unknown operator {op!r}{suggest(op, OPERATOR_IDS)}")
        return self

    def workers(self) -> list[tuple[str, str | None, WorkerConfig]]:
        """Every worker as (category, phase, config), in pipeline order."""
        out: list[tuple[str, str | None, WorkerConfig]] = []
        out += [("context", None, w) for w in self.context_workers]
        out += [("opportunity", None, w) for w in self.opportunity_workers]
        out += [("threat", None, w) for w in self.threat_workers]
        for phase in PLANNING_PHASES:
            out += [("planning", phase, w) for w in getattr(self.planning_workers, phase)]
        for phase in EXECUTION_PHASES:
            out += [("execution", phase, w) for w in getattr(self.execution_workers, phase)]
        return out


class StrategyLink(SpecModel):
    """A link from an operation to a blueprint: a path (relative to the operation file) or inline."""

    blueprint: str | Blueprint = Field(description="a blueprint YAML path, or the blueprint itself")

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_string(cls, value: Any) -> Any:
        return {"blueprint": value} if isinstance(value, str) else value


class MarketDataConfig(SpecModel):
    """Where the bars come from: a CSV/Parquet path (relative to the operation file) or ``sample:NAME``."""

    path: str = Field(min_length=1, description="CSV path or URI (s3://..., sample:NAME)")
    symbol: str | None = Field(default=None, description="the instrument, for reports")
    timeframe: str | None = Field(default=None, description="bar length, e.g. 1d or 1h, for reports")


class Period(SpecModel):
    start: str | None = Field(default=None, description="first bar's date (inclusive), e.g. 2020-01-01")
    end: str | None = Field(default=None, description="last bar's date (inclusive)")


class Window(SpecModel):
    """The trading window of a run: bars ``start`` .. ``end`` (inclusive) of the operation's data, each a
    bar index (0-based, after ``period``) or an ISO timestamp (the first bar at or after it; for ``end``
    the last bar at or before it); None = the first / last bar.  Features warm up on every bar before
    ``end``, no bar after ``end`` is loaded, positions open only inside the window, one still open is
    closed at ``end``, and the metrics cover the window only (see :func:`s1mple_engine.backtest.windowed`).
    """

    name: str | None = Field(default=None, max_length=40, description="label, e.g. is, oos, wf0.train")
    start: int | str | None = Field(default=None, description="first bar: index or ISO timestamp")
    end: int | str | None = Field(default=None, description="last bar (inclusive): index or ISO timestamp")


class Segment(Window):
    """A part of a run measured on its own (a walk-forward train or test window): metrics of its bars."""

    per_bar: bool = Field(default=False, description="also record the segment's per-bar returns")


class Operation(SpecModel):
    """What to run (operation.yaml): blueprint link(s), market data, period, cash, fees, slippage."""

    name: str = Field(default="operation", max_length=200, description="the operation's name")
    description: str | None = Field(default=None, description="free text for people")
    strategy_links: list[StrategyLink] = Field(min_length=1, description="the strategies this operation runs")
    market_data: MarketDataConfig = Field(description="the bars the strategies trade on")
    period: Period = Field(default_factory=Period, description="the part of the data to trade on")
    cash: float = Field(default=10_000.0, gt=0, description="starting cash")
    commission: float = Field(default=0.0, ge=0, lt=0.1, description="fraction of notional per fill")
    slippage: float = Field(default=0.0, ge=0, lt=0.1, description="fraction of price, against the trader")
    fill_at: str = Field(
        default="next_open",
        pattern="^(next_open|close)$",
        description="next_open (default: no lookahead) or close of the signal bar",
    )
    window: Window | None = Field(default=None, description="trade and measure only inside this window")
    segments: list[Segment] | None = Field(
        default=None, max_length=1000, description="parts of the run to measure on their own (walk-forward)"
    )


ModelT = TypeVar("ModelT", bound=BaseModel)


def suggest(name: str, choices: Any) -> str:
    """A ' (did you mean ...?; valid: ...)' hint for an unknown name."""
    choices = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(choices[:40]) + (", ..." if len(choices) > 40 else "")
    return f"{hint} (valid: {shown})"


def format_validation_error(err: ValidationError, model: type[BaseModel], root: str | None) -> list[str]:
    """One readable line per pydantic error: dotted path, what is wrong, and the valid choices."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in ((root,) if root else ()) + tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            parent = _model_at(model, e["loc"][:-1])
            valid = sorted(parent.model_fields) if parent else []
            lines.append(f"{loc}: unknown key{suggest(str(e['loc'][-1]), valid) if valid else ''}")
        else:
            lines.append(f"{loc}: {e['msg']}")
    return lines


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class found by following ``loc`` through fields (best effort, for hints)."""
    import typing

    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return None
        current = field.annotation
        for _ in range(3):
            args = [a for a in typing.get_args(current) if isinstance(a, type) and issubclass(a, BaseModel)]
            if isinstance(current, type) and issubclass(current, BaseModel):
                break
            if args:
                current = args[0]
            else:
                break
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a syntax error names the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"invalid YAML{where}: {getattr(exc, 'problem', exc)}", source=str(path)) from None


def parse_model(data: Any, model: type[ModelT], root: str | None = None, source: str | None = None) -> ModelT:
    """Validate already-parsed data (e.g. from a Kubernetes resource) into ``model``."""
    if root is not None:
        if not isinstance(data, dict) or root not in data:
            keys = sorted(data) if isinstance(data, dict) else []
            raise ConfigError(f"expected a top-level key {root!r} (found: {keys or 'nothing'})", source)
        extra = [k for k in data if k != root]
        if extra:
            raise ConfigError(f"unknown top-level key(s) {extra}; only {root!r} is allowed", source)
        data = data[root]
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, model, root), source) from None


def load_yaml_model(path: str | Path, model: type[ModelT], root: str | None = None) -> ModelT:
    """Load a YAML file into ``model``; ``root`` is the required top-level key (e.g. 'operation')."""
    return parse_model(read_yaml(path), model, root, source=str(path))


def load_blueprint(path: str | Path) -> Blueprint:
    return load_yaml_model(path, Blueprint, root="strategy_blueprint")


def load_operation(path: str | Path) -> Operation:
    """Load an operation and resolve its blueprint links and market-data path against the file's folder.

    Links that are paths become inline blueprints, so the returned Operation is self-contained: it can be
    hashed, shipped to a pod, or written out as the "temporary operation.yaml" of a run.
    """
    path = Path(path)
    op = load_yaml_model(path, Operation, root="operation")
    return resolve_operation(op, base_dir=path.parent)


def resolve_operation(op: Operation, base_dir: Path) -> Operation:
    """Inline path blueprint links and make the market-data path absolute (``sample:`` stays as is)."""
    links = []
    for i, link in enumerate(op.strategy_links):
        if isinstance(link.blueprint, str):
            bp_path = resolve_path(link.blueprint, base_dir)
            try:
                links.append(StrategyLink(blueprint=load_blueprint(bp_path)))
            except ConfigError as exc:
                raise ConfigError(
                    [f"operation.strategy_links.{i}: {p}" for p in exc.problems], exc.source
                ) from None
        else:
            links.append(link)
    data_path = op.market_data.path
    if not data_path.startswith(("sample:", "s3://", "file://")):
        data_path = str(resolve_path(data_path, base_dir))
    market = op.market_data.model_copy(update={"path": data_path})
    return op.model_copy(update={"strategy_links": links, "market_data": market})


def resolve_path(value: str, base_dir: Path) -> Path:
    """A path from a config file: absolute as is; relative to the file's folder, else to the cwd.

    The design's examples write repo-relative paths (``config/operations/x.yaml``) inside files that live
    in ``config/``; trying the file's folder first and then the working directory accepts both styles.
    """
    p = Path(value)
    if p.is_absolute():
        return p
    for candidate in (base_dir / p, Path.cwd() / p):
        if candidate.exists():
            return candidate
    # walk up from the file's folder: lets 'config/operations/x.yaml' work from any sub folder
    for parent in base_dir.resolve().parents:
        if (parent / p).exists():
            return parent / p
    return base_dir / p


def dump_model(model: BaseModel) -> dict[str, Any]:
    """A model as plain JSON-able data with snake_case keys, without unset defaults' noise."""
    return model.model_dump(mode="json", exclude_none=True)

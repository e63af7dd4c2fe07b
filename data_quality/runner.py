"""Runs the Great Expectations suites of data_quality/suites/ against the DuckDB warehouse.

GX 1.x has no DuckDB data source, and through SQLAlchemy every expectation fails on DuckDB,
so each suite validates a pandas frame read by DuckDB: either the columns its expectations
name (with the suite's `where`), or the small frame of its `query` (aggregates computed
inside DuckDB, so that GX never sees the rows of a large table). Frames computed elsewhere
(data_quality/stability.py) go through `SuiteRunner.run_frame`.

Each expectation has a severity: `blocking` (the default: a failure refuses publication) or
`warning` (the value is flagged, the mart is published). Every validation is kept in the
context's store so that `build_data_docs` renders the run's Data Docs site.

GX reports an expectation it could not evaluate as success=False with exception_info set;
the runner keeps that apart ("error": the check could not run) from a real failure.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb

from boussole.yaml_files import read_yaml

SUITES_DIR = Path(__file__).resolve().parent / "suites"
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list", "column_set")

logger = logging.getLogger("boussole.data_quality")

BLOCKING, WARNING = "blocking", "warning"
# What quality_results and the alerts call an outcome (ExpectationOutcome.status is "error"
# for the last one).
RESULT_STATUS = {"passed": "passed", "failed": "failed", "error": "could_not_run"}
# The keyword arguments of an expectation that hold its threshold.
_THRESHOLD_KWARGS = (
    "min_value",
    "max_value",
    "value",
    "value_set",
    "regex",
    "mostly",
    "strict_min",
    "strict_max",
    "row_condition",
)


@dataclass(frozen=True)
class ExpectationSpec:
    name: str
    type: str
    kwargs: dict[str, Any]
    description: str = ""
    severity: str = BLOCKING

    def columns(self) -> list[str]:
        named = [self.kwargs[k] for k in _COLUMN_KWARGS if k in self.kwargs]
        for key in _COLUMN_LIST_KWARGS:
            named.extend(self.kwargs.get(key, []))
        return named


@dataclass(frozen=True)
class SuiteSpec:
    """One suite file: the table it guards and its named expectations."""

    name: str
    table: str
    description: str
    expectations: tuple[ExpectationSpec, ...]
    # SQL filter on the rows validated (the suite guards a subset of the table).
    where: str | None = None
    # SQL whose (small) result GX validates instead of the table's columns.
    query: str | None = None
    # A column of the frame that names a row in the samples of unexpected values.
    sample_column: str | None = None
    # {name: SQL returning one value}: computed inside DuckDB before the validation and
    # passed to the expectations as {"$PARAMETER": name}.
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def check_name(self) -> str:
        return f"gx_{self.name}"

    @property
    def asset_path(self) -> list[str]:
        """The Dagster asset key of the table: [schema, table], as dagster-dbt names models."""
        return self.table.split(".")

    def columns(self) -> list[str]:
        return sorted({c for e in self.expectations for c in e.columns()})


@dataclass(frozen=True)
class ExpectationOutcome:
    name: str
    type: str
    status: str  # passed | failed | error
    unexpected_count: int | None = None
    unexpected_sample: list[Any] = field(default_factory=list)
    observed_value: Any = None
    error: str | None = None
    severity: str = BLOCKING
    # The bounds or values it was judged against, parameters resolved.
    threshold: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    # The positions in the validated frame of the rows that failed it.
    unexpected_rows: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    table: str
    rows_validated: int
    outcomes: tuple[ExpectationOutcome, ...]

    @property
    def passed(self) -> bool:
        return all(o.status == "passed" for o in self.outcomes)

    @property
    def could_not_run(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.status == "error"]

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        """Failed or could not run, of blocking severity: publication is refused."""
        return [o for o in self.outcomes if o.status != "passed" and o.severity == BLOCKING]

    @property
    def severity(self) -> str | None:
        """blocking when a blocking expectation did not pass, warning when only warnings did
        not, None when everything passed."""
        if self.passed:
            return None
        return BLOCKING if self.blocking_failures else WARNING

    def summary(self) -> str:
        if self.passed:
            return f"{len(self.outcomes)} expectations passed on {self.rows_validated} rows"
        parts = [
            f"{o.name} failed ({_observed_text(o)})"
            + (" [warning]" if o.severity == WARNING else "")
            + (
                f" e.g. {'; '.join(str(v) for v in o.unexpected_sample[:3])}"
                if o.unexpected_sample
                else ""
            )
            for o in self.failed
        ]
        parts += [
            f"{o.name} could not run: {o.error}" + (" [warning]" if o.severity == WARNING else "")
            for o in self.could_not_run
        ]
        return "; ".join(parts)


def _observed_text(outcome: ExpectationOutcome) -> str:
    if outcome.unexpected_count is not None:
        return f"{outcome.unexpected_count} unexpected"
    return f"observed {outcome.observed_value}"


def load_suites(directory: Path = SUITES_DIR) -> list[SuiteSpec]:
    suites = []
    for path in sorted(directory.glob("*.yml")):
        document = read_yaml(path)
        try:
            expectations = tuple(
                ExpectationSpec(
                    name=item["name"],
                    type=item["type"],
                    kwargs=item.get("kwargs", {}),
                    description=item.get("description", ""),
                    severity=item.get("severity", BLOCKING),
                )
                for item in document["expectations"]
            )
            suites.append(
                SuiteSpec(
                    name=document["suite"],
                    table=document["table"],
                    description=document.get("description", ""),
                    expectations=expectations,
                    where=document.get("where"),
                    query=document.get("query"),
                    sample_column=document.get("sample_column"),
                    parameters=document.get("parameters") or {},
                )
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path}: suite file is missing the field {error}") from error
        for expectation in suites[-1].expectations:
            if expectation.severity not in (BLOCKING, WARNING):
                raise ValueError(f"{path}: {expectation.name}: severity is blocking or warning")
    return suites


def import_in_background() -> None:
    """Starts importing Great Expectations (5 to 10 s) in a daemon thread, for a process that
    runs the suites soon: SuiteRunner then finds it loaded, or waits for the import to end."""
    threading.Thread(
        target=importlib.import_module, args=("great_expectations",), daemon=True
    ).start()


class SuiteRunner:
    """Holds one ephemeral GX context for many suites; `docs_dir` is where build_data_docs
    writes the run's Data Docs site."""

    def __init__(self, docs_dir: Path | None = None) -> None:
        # Imported here: great_expectations takes seconds to import, and definitions
        # loading must not pay for it.
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._datasource = self._context.data_sources.add_pandas("boussole_warehouse")
        self.docs_dir = docs_dir
        if docs_dir is not None:
            self._context.add_data_docs_site(
                DOCS_SITE,
                {
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )

    def run(
        self,
        conn: duckdb.DuckDBPyConnection,
        suite: SuiteSpec,
        parameters: dict[str, Any] | None = None,
    ) -> SuiteOutcome:
        if suite.query:
            sql = suite.query
        else:
            columns = suite.columns()
            if suite.sample_column and columns and suite.sample_column not in columns:
                columns.append(suite.sample_column)
            select_list = ", ".join(f'"{c}"' for c in columns) if columns else "1 as _row"
            where = f" where {suite.where}" if suite.where else ""
            sql = f"select {select_list} from {suite.table}{where}"
        try:
            frame = conn.execute(sql).df()
            computed = {
                name: conn.execute(query).fetchone()[0] for name, query in suite.parameters.items()
            }
        except duckdb.Error as error:
            return _suite_could_not_run(suite, f"cannot read {suite.table}: {error}")
        return self.run_frame(frame, suite, {**(parameters or {}), **_json_safe(computed)})

    def run_frame(
        self, frame: Any, suite: SuiteSpec, parameters: dict[str, Any] | None = None
    ) -> SuiteOutcome:
        """Validates a pandas frame already computed (kept small by its maker)."""
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        parameters = parameters or {}
        gx_suite = self._gx.ExpectationSuite(name=suite.name)
        for spec in suite.expectations:
            gx_suite.add_expectation_configuration(
                ExpectationConfiguration(
                    type=spec.type, kwargs=spec.kwargs, meta={"name": spec.name}
                )
            )
        gx_suite = self._context.suites.add_or_update(gx_suite)
        number = len(self._datasource.assets)
        asset = self._datasource.add_dataframe_asset(f"{suite.name}_{number}")
        definition = self._context.validation_definitions.add(
            self._gx.ValidationDefinition(
                name=f"{suite.name}_{number}",
                data=asset.add_batch_definition_whole_dataframe("whole_table"),
                suite=gx_suite,
            )
        )
        try:
            result = definition.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=parameters,
                # The frames are small: every unexpected row is named.
                result_format="COMPLETE",
            )
        except self._gx.exceptions.GreatExpectationsError as error:
            return _suite_could_not_run(suite, str(error), rows=len(frame))

        specs = {s.name: s for s in suite.expectations}
        by_name = {}
        for item in result.results:
            name = item.expectation_config.meta.get("name", item.expectation_config.type)
            spec = specs.get(name)
            outcome = _outcome(name, item)
            rows = [int(i) for i in (item.result or {}).get("unexpected_index_list") or []]
            sample = outcome.unexpected_sample
            if rows and suite.sample_column and suite.sample_column in frame.columns:
                labels = frame[suite.sample_column].iloc[rows[:10]].tolist()
                values = _json_safe((item.result or {}).get("unexpected_list") or [])
                sample = [f"{label}: {value}" for label, value in zip(labels, values, strict=False)]
            by_name[name] = replace(
                outcome,
                severity=spec.severity if spec else BLOCKING,
                threshold=threshold_of(spec.kwargs, parameters) if spec else {},
                unexpected_rows=rows,
                unexpected_sample=_json_safe(sample)[:10],
            )
        # GX merges two expectations of the same type on the same column: name them apart.
        missing = [s.name for s in suite.expectations if s.name not in by_name]
        if missing:
            raise ValueError(
                f"suite {suite.name}: expectations {missing} were merged by GX with another of "
                "the same type and column; combine them into one"
            )
        return SuiteOutcome(
            suite=suite.name,
            table=suite.table,
            rows_validated=len(frame),
            outcomes=tuple(by_name[s.name] for s in suite.expectations),
        )

    def build_data_docs(self) -> Path | None:
        """Renders the suites and the validations of this context into docs_dir; returns the
        site's index page."""
        if self.docs_dir is None:
            return None
        self._context.build_data_docs(site_names=[DOCS_SITE])
        return self.docs_dir / "index.html"


DOCS_SITE = "boussole"


def threshold_of(kwargs: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The expectation's bounds or values, {"$PARAMETER": name} replaced by its value."""
    found = {}
    for key in _THRESHOLD_KWARGS:
        if key not in kwargs:
            continue
        value = kwargs[key]
        if isinstance(value, dict) and "$PARAMETER" in value:
            value = parameters.get(value["$PARAMETER"])
        if isinstance(value, list) and len(value) > 20:
            value = [*value[:20], f"... {len(value) - 20} more"]
        found[key] = value
    return found


def _suite_could_not_run(suite: SuiteSpec, reason: str, rows: int = 0) -> SuiteOutcome:
    first_line = reason.strip().splitlines()[0]
    return SuiteOutcome(
        suite=suite.name,
        table=suite.table,
        rows_validated=rows,
        outcomes=tuple(
            ExpectationOutcome(s.name, s.type, "error", error=first_line, severity=s.severity)
            for s in suite.expectations
        ),
    )


def _outcome(name: str, item: Any) -> ExpectationOutcome:
    error = _exception_message(item.exception_info)
    if error is not None:
        return ExpectationOutcome(name, item.expectation_config.type, "error", error=error)
    details = item.result or {}
    return ExpectationOutcome(
        name=name,
        type=item.expectation_config.type,
        status="passed" if item.success else "failed",
        unexpected_count=details.get("unexpected_count"),
        unexpected_sample=_json_safe(details.get("partial_unexpected_list") or [])[:10],
        observed_value=_json_safe(details.get("observed_value")),
    )


def _exception_message(exception_info: Any) -> str | None:
    """GX nests exception info per metric when a metric fails: find any raised one."""
    if not exception_info:
        return None
    if "raised_exception" in exception_info or "exception_message" in exception_info:
        infos = [exception_info]
    else:
        infos = list(exception_info.values())
    for info in infos:
        if info.get("raised_exception") or info.get("exception_traceback"):
            message = info.get("exception_message") or info.get("exception_traceback") or ""
            return str(message).strip().splitlines()[-1] if message else "unknown error"
    return None


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def write_outcome(outcome: SuiteOutcome, results_dir: Path, run_id: str) -> Path:
    """Keep every outcome as JSON: quality/<suite>/<run_id>.json."""
    path = results_dir / outcome.suite / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = asdict(outcome) | {"passed": outcome.passed}
    path.write_text(json.dumps(document, indent=2, default=str))
    return path

"""Runs the Great Expectations suites of data_quality/suites/ against the DuckDB warehouse.

GX 1.x has no DuckDB data source, and through SQLAlchemy every expectation fails on DuckDB,
so each suite validates a pandas frame read by DuckDB. Only the columns the suite's
expectations name are read, which keeps the cost proportional to what is checked.

GX reports an expectation it could not evaluate as success=False with exception_info set;
the runner keeps that apart ("error": the check could not run) from a real failure.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

SUITES_DIR = Path(__file__).resolve().parent / "suites"
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list", "column_set")

logger = logging.getLogger("boussole.data_quality")


@dataclass(frozen=True)
class ExpectationSpec:
    name: str
    type: str
    kwargs: dict[str, Any]
    description: str = ""

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

    def summary(self) -> str:
        if self.passed:
            return f"{len(self.outcomes)} expectations passed on {self.rows_validated} rows"
        parts = [f"{o.name} failed ({o.unexpected_count} unexpected)" for o in self.failed]
        parts += [f"{o.name} could not run: {o.error}" for o in self.could_not_run]
        return "; ".join(parts)


def load_suites(directory: Path = SUITES_DIR) -> list[SuiteSpec]:
    suites = []
    for path in sorted(directory.glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        try:
            expectations = tuple(
                ExpectationSpec(
                    name=item["name"],
                    type=item["type"],
                    kwargs=item.get("kwargs", {}),
                    description=item.get("description", ""),
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
                )
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path}: suite file is missing the field {error}") from error
    return suites


def import_in_background() -> None:
    """Starts importing Great Expectations (5 to 10 s) in a daemon thread, for a process that
    runs the suites soon: SuiteRunner then finds it loaded, or waits for the import to end."""
    threading.Thread(
        target=importlib.import_module, args=("great_expectations",), daemon=True
    ).start()


class SuiteRunner:
    """Holds one ephemeral GX context for many suites."""

    def __init__(self) -> None:
        # Imported here: great_expectations takes seconds to import, and definitions
        # loading must not pay for it.
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._datasource = self._context.data_sources.add_pandas("boussole_warehouse")

    def run(
        self,
        conn: duckdb.DuckDBPyConnection,
        suite: SuiteSpec,
        parameters: dict[str, Any] | None = None,
    ) -> SuiteOutcome:
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        columns = suite.columns()
        select_list = ", ".join(f'"{c}"' for c in columns) if columns else "1 as _row"
        try:
            where = f" where {suite.where}" if suite.where else ""
            frame = conn.execute(f"select {select_list} from {suite.table}{where}").df()
        except duckdb.Error as error:
            return _suite_could_not_run(suite, f"cannot read {suite.table}: {error}")

        gx_suite = self._gx.ExpectationSuite(name=suite.name)
        for spec in suite.expectations:
            gx_suite.add_expectation_configuration(
                ExpectationConfiguration(
                    type=spec.type, kwargs=spec.kwargs, meta={"name": spec.name}
                )
            )
        gx_suite = self._context.suites.add_or_update(gx_suite)
        asset = self._datasource.add_dataframe_asset(f"{suite.name}_{len(self._datasource.assets)}")
        batch = asset.add_batch_definition_whole_dataframe("whole_table").get_batch(
            batch_parameters={"dataframe": frame}
        )
        try:
            result = batch.validate(gx_suite, expectation_parameters=parameters or {})
        except self._gx.exceptions.GreatExpectationsError as error:
            return _suite_could_not_run(suite, str(error), rows=len(frame))

        by_name = {}
        for item in result.results:
            name = item.expectation_config.meta.get("name", item.expectation_config.type)
            by_name[name] = _outcome(name, item)
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


def _suite_could_not_run(suite: SuiteSpec, reason: str, rows: int = 0) -> SuiteOutcome:
    first_line = reason.strip().splitlines()[0]
    return SuiteOutcome(
        suite=suite.name,
        table=suite.table,
        rows_validated=rows,
        outcomes=tuple(
            ExpectationOutcome(s.name, s.type, "error", error=first_line)
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

"""`boussole kpi list` and `boussole kpi show <id>`: a KPI's definition from the catalogue,
its compiled SQL, the checks that guard it and its latest published values, in one place.

Everything is read where the pipeline keeps it, never copied: the catalogue from the dbt
manifest (the model whose meta carries `kpis`), the SQL from dbt's compilation of the KPI
models, the checks from the manifest's tests and data_quality/suites, the values from the
published mart.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from boussole.dbt_invocation import DbtInvocation
from boussole.kpi_catalogue import KpiCatalogue
from boussole.settings import DBT_PROJECT_DIR, PROJECT_ROOT, Settings

SUITES_DIR = PROJECT_ROOT / "data_quality" / "suites"
KPI_VALUES = "kpi_values"
# The compiled SQL of the KPI models, kept with the manifest it was compiled from.
COMPILED_LANE = "kpi_sql"
COMPILED_FILE = "kpi_models.json"
LATEST_PERIODS = 6
TARGETS_SEED = "kpi_targets"

HEADINGS = {
    "en": {
        "definition": "Definition",
        "description": "Description",
        "formula": "Formula",
        "unit": "Unit",
        "direction": "Direction",
        "category": "Category",
        "tier": "Tier",
        "grains": "Grains",
        "slices": "Slices",
        "sources": "Sources",
        "computation": "Computation",
        "defined_in": "Defined in",
        "targets": "Targets",
        "no_targets": "no target in kpi_targets",
        "sql": "Compiled SQL",
        "checks": "Checks that guard it",
        "values": "Latest values",
        "nothing_published": "Nothing published yet: {path} does not exist (run `boussole run`).",
        "no_values": "No value of this KPI at {grain} grain in the published mart.",
        "anomaly_judged": "judged at {grains} grain (tier key), boussole/anomalies.py",
        "anomaly_not_judged": "not judged: only the key KPIs are (this one is {tier})",
        "list_title": "KPIs by category",
        "list_columns": ["id", "label", "unit", "tier"],
    },
    "fr": {
        "definition": "Définition",
        "description": "Description",
        "formula": "Formule",
        "unit": "Unité",
        "direction": "Sens",
        "category": "Catégorie",
        "tier": "Niveau",
        "grains": "Grains",
        "slices": "Découpages",
        "sources": "Sources",
        "computation": "Calcul",
        "defined_in": "Défini dans",
        "targets": "Objectifs",
        "no_targets": "aucun objectif dans kpi_targets",
        "sql": "SQL compilé",
        "checks": "Contrôles qui le protègent",
        "values": "Dernières valeurs",
        "nothing_published": "Rien n'est publié : {path} n'existe pas (lancez `boussole run`).",
        "no_values": "Aucune valeur de ce KPI au grain {grain} dans le mart publié.",
        "anomaly_judged": "jugé au grain {grains} (niveau key), boussole/anomalies.py",
        "anomaly_not_judged": "non jugé : seuls les KPI key le sont (celui-ci est {tier})",
        "list_title": "KPI par catégorie",
        "list_columns": ["id", "libellé", "unité", "niveau"],
    },
}


def label(kpi: dict[str, Any], lang: str) -> str:
    return kpi[f"label_{lang}"]


# --- compiled SQL ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiSql:
    """The SQL that computes a KPI: the CTE `kpi_<id>` of a compiled model, or (when no model
    names one) the compiled model that computes it, whole."""

    model: str
    sql: str
    is_cte: bool


def kpi_models(catalogue: KpiCatalogue) -> list[str]:
    """The models of the KPI layer, upstream first: kpi_values and its ancestors in a folder
    named kpi, without the catalogue model (which lists every id)."""
    nodes = catalogue.manifest["nodes"]
    by_name = {n["name"]: uid for uid, n in nodes.items() if n["resource_type"] == "model"}
    order: list[str] = []

    def visit(unique_id: str) -> None:
        node = nodes.get(unique_id)
        if node is None or unique_id in order or "kpi" not in node["fqn"][1:-1]:
            return
        for parent in node["depends_on"]["nodes"]:
            visit(parent)
        order.append(unique_id)

    visit(by_name[KPI_VALUES])
    return [nodes[uid]["name"] for uid in order if uid not in catalogue.catalogue_nodes]


def compiled_kpi_models(settings: Settings, catalogue: KpiCatalogue) -> dict[str, str]:
    """{model: compiled SQL} of the KPI layer, compiled by dbt once per manifest (kept in
    <data>/dbt/kpi_sql/)."""
    manifest_time = Path(catalogue.manifest_path).stat().st_mtime
    lane = settings.data_dir / "dbt" / COMPILED_LANE
    kept = sorted(lane.glob(f"*/{COMPILED_FILE}")) if lane.is_dir() else []
    if kept and kept[-1].stat().st_mtime >= manifest_time:
        return json.loads(kept[-1].read_text())
    models = kpi_models(catalogue)
    target_path = DbtInvocation(settings).new_target_path(lane=COMPILED_LANE)
    with tempfile.TemporaryDirectory() as scratch:
        # An empty warehouse of the build's name: the SQL of a full build as the pipeline
        # names its relations, whatever the build warehouse holds, and no lock taken on it
        # while a run writes it.
        invocation = DbtInvocation(settings, warehouse=Path(scratch) / "warehouse.duckdb")
        completed = invocation.run(
            *("compile", "--quiet", "--select", *models),
            target_path=target_path,
            capture_output=True,
            text=True,
        )
    if completed.returncode != 0:
        raise RuntimeError(f"dbt compile failed:\n{completed.stdout}{completed.stderr}")
    nodes = json.loads((target_path / "manifest.json").read_text())["nodes"]
    compiled = {
        node["name"]: node["compiled_code"]
        for node in nodes.values()
        if node["resource_type"] == "model" and node["name"] in models
    }
    # In the models' order, upstream first.
    compiled = {model: compiled[model] for model in models if model in compiled}
    (target_path / COMPILED_FILE).write_text(json.dumps(compiled))
    return compiled


def _index_or_end(text: str, needle: str, start: int) -> int:
    found = text.find(needle, start)
    return len(text) if found < 0 else found


def _cte(sql: str, name: str) -> str | None:
    """The text of the CTE `name` in `sql` (`name as (...)`, with its comments just above)."""
    found = re.search(rf"(?m)^([ \t]*(--[^\n]*\n[ \t]*)*){name}\s+as\s*\(", sql)
    if not found:
        return None
    # The parenthesis that closes it, ignoring those in comments and string literals.
    depth, position = 0, found.end() - 1
    while position < len(sql):
        if sql.startswith("--", position):
            position = _index_or_end(sql, "\n", position)
        elif sql[position] == "'":
            position = _index_or_end(sql, "'", position + 1)
        else:
            depth += {"(": 1, ")": -1}.get(sql[position], 0)
            if depth == 0:
                break
        position += 1
    return textwrap.dedent(sql[found.start() : position + 1])


def kpi_sql(kpi_id: str, compiled: dict[str, str]) -> KpiSql | None:
    """The CTE `kpi_<id>` of the KPI models, else the first model (upstream first) that
    names the KPI."""
    for model, sql in compiled.items():
        cte = _cte(sql, f"kpi_{kpi_id}")
        if cte:
            # A combination reads its inputs from a CTE of its own, shown first.
            inputs = _cte(sql, f"kpi_{kpi_id}_inputs")
            return KpiSql(model, f"{inputs},\n\n{cte}" if inputs else cte, is_cte=True)
    for model, sql in compiled.items():
        if f"'{kpi_id}'" in sql:
            return KpiSql(model, sql, is_cte=False)
    return None


# --- checks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A dbt test or a Great Expectations suite (`kind`) on a relation, with its severity or
    its expectations (`detail`)."""

    kind: str
    relation: str
    name: str
    detail: str = ""


def models_read(catalogue: KpiCatalogue, kpi: dict[str, Any]) -> list[str]:
    """The models the KPI is computed from: its fact, or its inputs' facts."""
    computation = kpi["computation"]
    if computation.get("fact"):
        return [computation["fact"]]
    found: list[str] = []
    for source in (computation.get("inputs") or {}).values():
        for model in models_read(catalogue, catalogue.kpi(source.partition("@")[0])):
            if model not in found:
                found.append(model)
    return found


def guarding_checks(catalogue: KpiCatalogue, kpi: dict[str, Any]) -> list[Check]:
    """The dbt tests and Great Expectations suites on the models the KPI reads and on
    kpi_values, and the anomaly detection when the KPI is judged."""
    relations = [*models_read(catalogue, kpi), KPI_VALUES]
    nodes = catalogue.manifest["nodes"]
    unique_ids = {
        uid: node["name"]
        for uid, node in nodes.items()
        if node["resource_type"] == "model" and node["name"] in relations
    }
    checks = []
    for node in nodes.values():
        if node["resource_type"] != "test":
            continue
        attached = node.get("attached_node") or next(iter(node["depends_on"]["nodes"]), None)
        if attached in unique_ids:
            severity = node["config"].get("severity", "error").lower()
            checks.append(Check("dbt test", unique_ids[attached], node["name"], severity))
    for path in sorted(SUITES_DIR.glob("*.yml")):
        suite = yaml.safe_load(path.read_text())
        table = suite["table"].split(".")[-1]
        if table in relations:
            expectations = ", ".join(e["name"] for e in suite["expectations"])
            checks.append(Check("GX suite", table, f"gx_{suite['suite']}", expectations))
    checks.sort(key=lambda check: (relations.index(check.relation), check.kind, check.name))
    return checks


def anomaly_check(kpi: dict[str, Any], lang: str) -> str:
    from boussole.anomalies import GRAINS

    headings = HEADINGS[lang]
    if kpi.get("tier") == "key":
        return headings["anomaly_judged"].format(grains=", ".join(GRAINS))
    return headings["anomaly_not_judged"].format(tier=kpi.get("tier", "?"))


# --- values ---------------------------------------------------------------------------------

VALUE_COLUMNS = ("period_start", "value", "target", "status", "trust_status", "trust_reasons")
# The column of the reasons in each language (boussole/trust.py).
TRUST_REASONS = {"en": "trust_reasons", "fr": "trust_reasons_fr"}


def latest_values(
    published: Path, kpi_id: str, grain: str, periods: int = LATEST_PERIODS
) -> list[dict[str, Any]] | None:
    """The company's latest `periods` values of the KPI at `grain` in the published mart,
    oldest first; None when nothing is published."""
    if not published.exists():
        return None
    with duckdb.connect(str(published), read_only=True) as conn:
        present = {row[0] for row in conn.execute(f"describe {KPI_VALUES}").fetchall()}
        # A mart published without its checks' results (by hand, in a test) has no trust
        # columns: they read as null.
        columns = [
            name if name in present else f"null as {name}"
            for name in (*VALUE_COLUMNS, TRUST_REASONS["fr"])
        ]
        rows = conn.execute(
            f"select {', '.join(columns)} from {KPI_VALUES} "
            "where kpi_id = ? and grain = ? and dimension = 'all' "
            "order by period_start desc limit ?",
            [kpi_id, grain, periods],
        ).fetchall()
    return [
        dict(zip((*VALUE_COLUMNS, TRUST_REASONS["fr"]), row, strict=True)) for row in reversed(rows)
    ]


def targets(catalogue: KpiCatalogue, kpi_id: str) -> list[dict[str, str]]:
    """The KPI's rows of the targets seed (dbt_project/seeds, located through the manifest)."""
    seeds = [n for n in catalogue.manifest["nodes"].values() if n["name"] == TARGETS_SEED]
    if not seeds:
        return []
    with (DBT_PROJECT_DIR / seeds[0]["original_file_path"]).open(newline="") as file:
        return [row for row in csv.DictReader(file) if row["kpi_id"] == kpi_id]


def default_grains() -> list[str]:
    """The grains of a KPI whose entry names none: the dbt var kpi_grains."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    return project["vars"]["kpi_grains"]


# --- terminal output ------------------------------------------------------------------------


def _section(title: str) -> list[str]:
    return ["", title, "-" * len(title)]


def _number(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("count",):
        return f"{value:,.0f}"
    if unit == "ratio":
        return f"{value:.4f}"
    return f"{value:,.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{width}}}" for width in widths)
    return [line.format(*header).rstrip(), *(line.format(*row).rstrip() for row in rows)]


def render_definition(catalogue: KpiCatalogue, kpi: dict[str, Any], lang: str) -> list[str]:
    headings = HEADINGS[lang]
    computation = kpi["computation"]
    other = "en" if lang == "fr" else "fr"
    slices = computation.get("slices") or {}
    if computation["type"] == "combination":
        detail = ", ".join(f"{name} = {source}" for name, source in computation["inputs"].items())
    else:
        detail = f"{computation['fact']}" + (
            f" by {computation['date']}" if "date" in computation else ""
        )
    fields = [
        (headings["description"], kpi["description_fr" if lang == "fr" else "description"]),
        (headings["formula"], kpi["formula_fr" if lang == "fr" else "formula"]),
        (headings["unit"], kpi["unit"]),
        (headings["direction"], kpi["direction"]),
        (headings["category"], kpi["category"]),
        (
            headings["tier"],
            f"{kpi.get('tier', '')}, {kpi.get('kind', '')}, {kpi.get('indicator_type', '')}",
        ),
        (headings["grains"], ", ".join(kpi.get("grains") or default_grains())),
        (headings["slices"], ", ".join(slices) or "-"),
        (headings["sources"], ", ".join(kpi["source_systems"])),
        (headings["computation"], f"{computation['type']}: {detail}"),
        (headings["defined_in"], ", ".join(f"dbt_project/{p}" for p in catalogue.source_files())),
    ]
    lines = [f"{kpi['id']}: {label(kpi, lang)} ({label(kpi, other)})", ""]
    for name, value in fields:
        wrapped = textwrap.wrap(str(value), 80) or [""]
        lines.append(f"  {name + ':':<14}{wrapped[0]}")
        lines.extend(f"  {'':<14}{more}" for more in wrapped[1:])
    found = targets(catalogue, kpi["id"])
    lines += _section(headings["targets"])
    if found:
        columns = ["scope", "scope_value", "grain", "period_start", "target", "baseline"]
        lines += _table(columns, [[row.get(c) or "" for c in columns] for row in found])
    else:
        lines.append(headings["no_targets"])
    return lines


def render_sql(found: KpiSql | None, kpi_id: str, lang: str) -> list[str]:
    lines = _section(HEADINGS[lang]["sql"])
    if found is None:
        return [*lines, f"no compiled KPI model names {kpi_id!r}"]
    if found.is_cte:
        lines.append(f"-- CTE kpi_{kpi_id} of the compiled model {found.model}")
    else:
        lines.append(
            f"-- No CTE kpi_{kpi_id} in the compiled KPI models (yet): the whole compiled model "
            f"{found.model}, which computes it among others"
        )
    return [*lines, found.sql.strip()]


def render_checks(checks: list[Check], kpi: dict[str, Any], lang: str) -> list[str]:
    lines = _section(HEADINGS[lang]["checks"])
    for relation in dict.fromkeys(check.relation for check in checks):
        lines.append(f"  {relation}:")
        for check in (c for c in checks if c.relation == relation):
            lines += textwrap.wrap(
                f"[{check.kind}] {check.name} ({check.detail})",
                100,
                initial_indent="    ",
                subsequent_indent="        ",
            )
    lines.append(f"  kpi_anomalies: {anomaly_check(kpi, lang)}")
    return lines


def render_values(
    values: list[dict[str, Any]] | None, kpi: dict[str, Any], grain: str, published: Path, lang: str
) -> list[str]:
    headings = HEADINGS[lang]
    lines = _section(f"{headings['values']} (company, {grain}; {published})")
    if values is None:
        return [*lines, headings["nothing_published"].format(path=published)]
    if not values:
        return [*lines, headings["no_values"].format(grain=grain)]
    rows = [
        [
            str(row["period_start"]),
            _number(row["value"], kpi["unit"]),
            _number(row["target"], kpi["unit"]),
            row["status"] or "-",
            row["trust_status"] or "-",
            row[TRUST_REASONS[lang]] or "",
        ]
        for row in values
    ]
    return [*lines, *_table(list(VALUE_COLUMNS), rows)]


def render_list(catalogue: KpiCatalogue, lang: str) -> str:
    headings = HEADINGS[lang]
    lines = [headings["list_title"]]
    for category in dict.fromkeys(kpi["category"] for kpi in catalogue.kpis):
        kpis = [kpi for kpi in catalogue.kpis if kpi["category"] == category]
        lines += _section(f"{category} ({len(kpis)})")
        lines += _table(
            headings["list_columns"],
            [[k["id"], label(k, lang), k["unit"], k.get("tier", "")] for k in kpis],
        )
    return "\n".join(lines)


def render_show(settings: Settings, kpi_id: str, lang: str, grain: str) -> str:
    catalogue = KpiCatalogue.load(settings)
    kpi = catalogue.kpi(kpi_id)
    found = kpi_sql(kpi_id, compiled_kpi_models(settings, catalogue))
    values = latest_values(settings.published_mart_path, kpi_id, grain)
    return "\n".join(
        [
            *render_definition(catalogue, kpi, lang),
            *render_sql(found, kpi_id, lang),
            *render_checks(guarding_checks(catalogue, kpi), kpi, lang),
            *render_values(values, kpi, grain, settings.published_mart_path, lang),
        ]
    )

"""The KPI dashboard in a real browser: built once through its Dagster asset from the published
mart of small_pipeline, served on localhost, and opened in Debian's headless Chromium with every
other host unreachable (dashboard/tests/render-pages.mjs, playwright-core)."""

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from boussole.dashboard import (
    DASHBOARD_PROJECT,
    EVIDENCE_STORAGE_VERSION,
    export_for_evidence,
    missing_requirements,
    needs_build,
    serve,
    site_path,
)
from boussole.settings import PII_KEY_VARIABLE, Settings
from orchestration.assets.dashboard import kpi_dashboard
from orchestration.resources import SettingsResource
from tests.conftest import Workspace
from tests.debian_packages import install_debian_package

CHROMIUM = Path("/usr/bin/chromium")
RENDER_PAGES = DASHBOARD_PROJECT / "tests" / "render-pages.mjs"
# dashboard/components/format.js, as Chromium reports a computed colour.
STATUS_RGB = {
    "on_track": "rgb(21, 128, 61)",
    "at_risk": "rgb(217, 119, 6)",
    "off_track": "rgb(185, 28, 28)",
    "none": "rgb(156, 163, 175)",
}
OVERVIEW_MARKER = ".kpi-card"
# A KPI page is shown once its slice table has rows.
KPI_PAGE_MARKER = ".kpi-table tbody tr"
# dashboard/components/format.js: the other ratios show as percentages.
RATIOS_SHOWN_AS_MULTIPLES = {"ltv_to_cac", "pages_per_session"}


def ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt-get when missing (the tests run as root)."""
    if not CHROMIUM.exists():
        install_debian_package("chromium")
    return CHROMIUM


@dataclass
class RenderedPages:
    site: Path
    materialization: dg.AssetMaterialization
    pages: dict[str, dict]
    outside_requests: list[str]
    published: Path
    screenshots: dict[str, Path]


@pytest.fixture(scope="module")
def rendered(
    small_pipeline: tuple[Workspace, subprocess.CompletedProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> RenderedPages:
    """The site built once by the kpi_dashboard asset from a copy of small_pipeline's
    published mart, and the overview and one KPI page in French and English, each opened once."""
    problem = missing_requirements()
    assert problem is None, problem
    chromium = ensure_chromium()
    workspace, _ = small_pipeline
    root = tmp_path_factory.mktemp("dashboard")
    data = root / "data"
    (data / "published").mkdir(parents=True)
    published = shutil.copy(workspace.published, data / "published" / "boussole.duckdb")
    # The dashboard reads no personal data: the development key keeps the resource's config
    # free of an environment variable that dg.materialize would have to find.
    environment = {k: v for k, v in workspace.env.items() if k != PII_KEY_VARIABLE}
    settings = Settings.from_env({**environment, "BOUSSOLE_DATA_DIR": str(data)})
    result = dg.materialize(
        [kpi_dashboard], resources={"settings": SettingsResource.from_settings(settings)}
    )
    materialization = result.asset_materializations_for_node("kpi_dashboard")[0]
    site = site_path(data)

    server = serve(site, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://localhost:{server.server_address[1]}"
    screenshots = {
        f"{page}-{lang}": root / f"{page}-{lang}.png"
        for page in ("overview", "kpi-revenue")
        for lang in ("fr", "en")
    }
    targets = {
        "overview-fr": f"{base}/fr/",
        "overview-en": f"{base}/en/",
        "kpi-revenue-fr": f"{base}/fr/kpi/revenue/",
        "kpi-revenue-en": f"{base}/en/kpi/revenue/",
        "quality-fr": f"{base}/fr/quality/",
        "root": f"{base}/",
    }
    request = {
        "chromium": str(chromium),
        "profile": str(root / "chromium-profile"),
        "pages": [
            {
                "url": url,
                "screenshot": str(screenshots[name]) if name in screenshots else None,
                "waitFor": OVERVIEW_MARKER
                if name.startswith("overview")
                else KPI_PAGE_MARKER
                if name.startswith("kpi")
                else None,
            }
            for name, url in targets.items()
        ],
    }
    try:
        completed = subprocess.run(
            ["node", str(RENDER_PAGES), json.dumps(request)],
            cwd=DASHBOARD_PROJECT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    pages = dict(zip(targets, report["pages"], strict=True))
    return RenderedPages(
        site, materialization, pages, report["outside_requests"], Path(published), screenshots
    )


def _latest_month_values(published: Path) -> dict[str, tuple[float | None, str | None, str]]:
    """{kpi_id: (value, status, unit)} of the company's latest month, read from kpi_values."""
    with duckdb.connect(str(published), read_only=True) as conn:
        rows = conn.execute(
            "select v.kpi_id, v.value, v.status, c.unit from kpi_values v "
            "join kpi_catalogue c using (kpi_id) "
            "where v.grain = 'month' and v.dimension = 'all' and v.period_start = (select "
            "max(period_start) from kpi_values where grain = 'month' and dimension = 'all')"
        ).fetchall()
    return {kpi_id: (value, status, unit) for kpi_id, value, status, unit in rows}


def _displayed_number(text: str, lang: str) -> float:
    """The number a card shows ('1 234,5 %' in French, '1,234.5%' in English), unit dropped
    (Intl.NumberFormat groups French digits with narrow no-break spaces, signs with U+2212)."""
    digits = text.replace("\u2212", "-").replace(",", "." if lang == "fr" else "")
    return float("".join(c for c in digits if c.isdigit() or c in ".-"))


def mart_rows(rendered, sql: str) -> list[tuple]:
    """The rows of `sql` on the published mart the site was built from."""
    with duckdb.connect(str(rendered.published), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_the_asset_builds_every_page_of_the_site(rendered):
    ((kpis, categories),) = mart_rows(
        rendered, "select count(*), count(distinct category) from kpi_catalogue"
    )
    metadata = rendered.materialization.metadata
    # The root page, then in each language the overview, the quality page, each category's
    # and each KPI's.
    assert metadata["pages"].value == 1 + 2 * (2 + categories + kpis)
    assert metadata["path"].value == str(rendered.site)
    assert metadata["seconds"].value > 0
    assert (rendered.site / "fr" / "kpi" / "revenue" / "index.html").exists()


def test_the_pages_load_with_the_network_off_and_ask_no_other_host(rendered):
    assert rendered.outside_requests == []
    for name, page in rendered.pages.items():
        assert "Failed to fetch" not in page["text"], name
        # DuckDB-WASM would log its failed download of an extension here.
        assert not [e for e in page["errors"] if "extension" in e.lower()], (name, page["errors"])
    assert len(rendered.pages["overview-fr"]["cards"]) > 0


def test_the_overview_shows_the_values_of_kpi_values(rendered):
    expected = _latest_month_values(rendered.published)
    for lang in ("fr", "en"):
        cards = rendered.pages[f"overview-{lang}"]["cards"]
        shown = [card for card in cards if expected[card["kpi_id"]][0] is not None]
        assert len(shown) >= 3, cards
        for card in shown:
            value, _, unit = expected[card["kpi_id"]]
            multiple = card["kpi_id"] in RATIOS_SHOWN_AS_MULTIPLES
            scaled = value * 100 if unit == "ratio" and not multiple else value
            decimals = 2 if multiple else 0 if unit in ("currency", "count") else 1
            assert _displayed_number(card["value"], lang) == pytest.approx(
                round(scaled, decimals), abs=10**-decimals / 2
            ), (lang, card)
            assert ("€" in card["value"]) == (unit == "currency"), (lang, card)


def test_a_status_colour_matches_the_status_in_kpi_values(rendered):
    expected = _latest_month_values(rendered.published)
    for card in rendered.pages["overview-fr"]["cards"]:
        status = expected[card["kpi_id"]][1] or "none"
        assert card["status"] == status, card
        assert card["colour"] == STATUS_RGB[status], card
    statuses = {card["status"] for card in rendered.pages["overview-fr"]["cards"]}
    assert statuses - {"none"}, "no card with a target to colour"


def test_a_card_gives_its_trust_reasons_in_the_language_of_the_page(rendered):
    reasons = {
        kpi_id: {"en": english, "fr": french}
        for kpi_id, english, french in mart_rows(
            rendered,
            "select kpi_id, trust_reasons, trust_reasons_fr from kpi_values "
            "where grain = 'month' and dimension = 'all' and period_start = (select "
            "max(period_start) from kpi_values where grain = 'month' and dimension = 'all')",
        )
    }
    explained = 0
    for lang, other in (("fr", "en"), ("en", "fr")):
        for card in rendered.pages[f"overview-{lang}"]["cards"]:
            shown = reasons[card["kpi_id"]]
            if shown[lang] is None:
                assert ":" not in card["trust_text"], card
                continue
            explained += 1
            assert card["trust_text"].endswith(shown[lang]), (lang, card)
            assert shown[other] not in card["trust_text"], (lang, card)
    assert explained, "no card with trust reasons to show"


def test_a_category_without_values_for_the_period_says_so(rendered):
    # The key KPIs' categories with no company value in the overview's period (the latest
    # month): the landing fixture has no marketing data.
    ((empty,),) = mart_rows(
        rendered,
        "with latest as (select max(period_start) as month from kpi_values "
        "where grain = 'month' and dimension = 'all') "
        "select count(*) from (select category from kpi_catalogue where tier = 'key' except "
        "select c.category from kpi_catalogue c join kpi_values v using (kpi_id), latest "
        "where c.tier = 'key' and v.grain = 'month' and v.dimension = 'all' "
        "and v.period_start = latest.month)",
    )
    assert empty >= 1
    for lang, message in (
        ("fr", "Aucune valeur publiée pour cette période et ce périmètre."),
        ("en", "No value published for this period and scope."),
    ):
        assert rendered.pages[f"overview-{lang}"]["text"].count(message) == empty, lang


# dashboard/components/format.js: the words of a status and of a trust status in French.
STATUS_FR = {
    "on_track": "En bonne voie",
    "at_risk": "À risque",
    "off_track": "Hors trajectoire",
    None: "Sans objectif",
}
TRUST_FR = {
    "trusted": "Fiable",
    "warning": "Avertissement",
    "incomplete": "Incomplet",
    "untrusted": "Non fiable",
}


def test_a_kpi_page_shows_its_slices_in_the_language_of_the_page(rendered):
    """The revenue page's slice table (the first slice of the latest month, its default) shows
    the values of kpi_values in the page's number format, and statuses and trust in words."""
    with duckdb.connect(str(rendered.published), read_only=True) as conn:
        rows = conn.execute(
            "select dimension_value, value, target, status, trust_status from kpi_values "
            "where kpi_id = 'revenue' and grain = 'month' and dimension = ("
            "  select min(dimension) from kpi_values "
            "  where kpi_id = 'revenue' and grain = 'month' and dimension <> 'all') "
            "and period_start = (select max(period_start) from kpi_values "
            "  where kpi_id = 'revenue' and grain = 'month')"
        ).fetchall()
        (currency,) = conn.execute(
            "select currency from kpi_catalogue where kpi_id = 'revenue'"
        ).fetchone()
    expected = {slice_value: rest for slice_value, *rest in rows}
    assert expected
    # Money in its currency: the reporting currency of the tests' settings (the default).
    assert currency == "EUR"
    for lang in ("fr", "en"):
        shown = rendered.pages[f"kpi-revenue-{lang}"]["tables"][0]
        assert {row["slice"] for row in shown} == set(expected), lang
        for row in shown:
            value, target, status, trust = expected[row["slice"]]
            assert_shows_amount(row["value"], value, lang)
            assert "€" in row["value"], row
            if target is not None:
                assert _displayed_number(row["target"], lang) == pytest.approx(round(target))
            if lang == "fr":
                assert row["status"] == STATUS_FR[status], row
                assert row["trust_status"] == TRUST_FR[trust], row


def test_a_kpi_page_shows_its_as_of_history_in_the_language_of_the_page(rendered):
    versions = mart_rows(
        rendered,
        "select value from kpi_value_history where kpi_id = 'revenue' and grain = 'month' "
        "and dimension = 'all' order by period_start desc, valid_from desc limit 40",
    )
    assert any(value >= 1000 for (value,) in versions), "no value to group the digits of"
    for lang in ("fr", "en"):
        shown = rendered.pages[f"kpi-revenue-{lang}"]["tables"][1]
        assert len(shown) == len(versions), lang
        for row, (value,) in zip(shown, versions, strict=True):
            assert_shows_amount(row["value"], value, lang)


def assert_shows_amount(text: str, value: float, lang: str) -> None:
    """`text` shows the amount `value` to the unit, its thousands grouped as `lang` groups
    them (a narrow no-break space in French, a comma in English)."""
    assert _displayed_number(text, lang) == pytest.approx(round(value)), (text, value)
    if value >= 1000:
        assert ("\u202f" in text) == (lang == "fr"), text
        assert ("," in text) == (lang == "en"), text


def test_labels_come_from_the_catalogue_in_french_by_default_and_in_english(rendered):
    labels = {
        kpi_id: (fr, en)
        for kpi_id, fr, en in mart_rows(
            rendered, "select kpi_id, label_fr, label_en from kpi_catalogue"
        )
    }
    for lang, index in (("fr", 0), ("en", 1)):
        for card in rendered.pages[f"overview-{lang}"]["cards"]:
            assert card["label"] == labels[card["kpi_id"]][index]
    assert "Indicateurs clés" in rendered.pages["overview-fr"]["text"]
    assert "Key indicators" in rendered.pages["overview-en"]["text"]
    assert labels["revenue"][0] in rendered.pages["kpi-revenue-fr"]["text"]
    assert labels["revenue"][1] in rendered.pages["kpi-revenue-en"]["text"]
    assert "Tendance et objectif" in rendered.pages["kpi-revenue-fr"]["text"]
    assert "As-of history" in rendered.pages["kpi-revenue-en"]["text"]
    # The root page sends a reader to the French overview.
    assert "Indicateurs clés" in rendered.pages["root"]["text"]


def test_a_kpi_page_shows_its_definition_in_the_language_of_the_page(rendered):
    (definitions,) = mart_rows(
        rendered,
        "select description_fr, formula_fr, description, formula from kpi_catalogue "
        "where kpi_id = 'revenue'",
    )
    french, english = definitions[:2], definitions[2:]
    for lang, shown, other in (("fr", french, english), ("en", english, french)):
        text = rendered.pages[f"kpi-revenue-{lang}"]["text"]
        assert all(line in text for line in shown), (lang, shown)
        assert other[0] not in text, lang


def test_the_quality_page_lists_the_latest_checks(rendered):
    text = rendered.pages["quality-fr"]["text"]
    assert "Derniers contrôles" in text
    # The first row the page lists: the latest result of each expectation, those that did not
    # pass first.
    ((expectation,),) = mart_rows(
        rendered,
        "select expectation from quality_results qualify row_number() over ("
        "  partition by suite, expectation, table_name order by checked_at desc) = 1 "
        "order by status = 'passed', severity = 'warning', table_name, expectation limit 1",
    )
    assert expectation in text


def test_screenshots_of_the_overview_and_a_kpi_page_in_both_languages(rendered):
    for name, path in rendered.screenshots.items():
        # A page with its cards and charts, not a blank one.
        assert path.stat().st_size > 30_000, name


def test_the_export_is_in_a_storage_format_evidence_reads(rendered, tmp_path):
    target = tmp_path / "evidence.duckdb"
    export_for_evidence(rendered.published, target)
    with duckdb.connect(str(target), read_only=True) as conn:
        (storage,) = conn.execute(
            "select tags['storage_version'] from duckdb_databases() where database_name = ?",
            [target.stem],
        ).fetchone()
    assert storage.startswith(EVIDENCE_STORAGE_VERSION[:4])


def test_boussole_dashboard_rebuilds_only_after_a_new_publication(rendered, tmp_path):
    assert not needs_build(rendered.published, rendered.site)
    newer = shutil.copy(rendered.published, tmp_path / "boussole.duckdb")
    os.utime(newer, ((rendered.site / "index.html").stat().st_mtime + 60,) * 2)
    assert needs_build(Path(newer), rendered.site)

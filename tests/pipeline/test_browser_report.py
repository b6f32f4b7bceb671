"""The report in a real browser: Debian's headless Chromium, driven by playwright.

Playwright's own browser download is never used: ``executable_path`` points at
the Debian ``chromium`` package (``tools/install-system-deps.sh`` installs it).
The page is opened from a ``file://`` URL with every non-file request refused,
so it must be complete offline. A full-page screenshot is kept under
``outputs/test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from asi_slowdown.pipeline.configuration.compose import CONF_DIR
from asi_slowdown.pipeline.report.build import build

from .report_fixtures import SMALL_GRID, SMALL_SAMPLES, write_store

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in CI: Chromium's sandbox refuses to run as root
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "outputs" / "test-artifacts"

CUT_TABLES = """() => {
  const page = document.documentElement.clientWidth;
  const scroller = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const x = getComputedStyle(p).overflowX;
      if (x === "auto" || x === "scroll") return p;
    }
    return null;
  };
  return Array.from(document.querySelectorAll("table")).flatMap((t) => {
    if (!t.getClientRects().length) return [];  // folded away in a closed <details>
    const box = t.getBoundingClientRect();
    const s = scroller(t);
    const hidden = s ? s.scrollWidth - s.clientWidth : 0;
    if (box.left >= 0 && box.right <= page + 0.5 && hidden <= 0) return [];
    return [`${t.id || t.className}: ${Math.round(box.left)}..${Math.round(box.right)} of ${page} px, ${hidden} px scrolled out of view`];
  });
}"""
"""Tables cut at the page's width: past its right edge, or with columns hidden in a sideways
scroller (the stage table's crossings column was, at 1280 px)."""

FIRST_SCREEN = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def nightly_report(tmp_path_factory):
    """Two nights: the full small grid, then a recalibrated cost and a sweep that stopped early."""
    root = tmp_path_factory.mktemp("browser")
    recalibrated = (*SMALL_GRID, "cpu.costs.ephmap_pte.high=500")
    write_store(root / "night1")
    write_store(root / "night2", recalibrated, keep=lambda chunk: chunk % 5 != 4)
    index = None
    for night, store, grid in (
        ("2026-01-01", root / "night1", SMALL_GRID),
        ("2026-01-02", root / "night2", recalibrated),
    ):
        index, _ = build(
            [
                f"store.path={store}",
                f"report.dir={root / night}",
                f"report.history={root / 'history'}",
                f"samples={SMALL_SAMPLES}",
                "dask.progress=false",
                "report.mode=nightly",
                f"report.date={night}",
            ],
            grid_overrides=grid,
            err=lambda _: None,
        )
    return index


def test_the_report_opens_offline_with_every_image_and_no_console_error(nightly_report, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    if not CHROMIUM.is_file():
        pytest.skip("Debian chromium is not installed: run make sysdeps (apt-get install chromium)")
    problems: list[str] = []
    outside: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=FIRST_SCREEN)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))

            def offline(route):
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:  # the report must not need the network
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", offline)
            page.goto(nightly_report.as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => ({src: i.getAttribute('src'),"
                " complete: i.complete, width: i.naturalWidth}))"
            )
            rows = page.locator("#projection tbody tr")
            row_text = [rows.nth(i).inner_text() for i in range(rows.count())]
            headers = page.locator("#projection thead th").all_inner_texts()
            moved = page.locator("#moved tbody tr").count()
            budget_tables = page.locator("table.budget-table").count()
            versus = page.locator("#projection td small.versus").count()
            stored_cells = page.locator("#projection td.num:not(.missing)").count()
            figure_titles = page.locator("figcaption b").all_inner_texts()
            clipped = page.evaluate(CUT_TABLES)
            headline = page.evaluate(
                "(() => { const b = document.querySelector('#headline-table')"
                ".getBoundingClientRect(); return {top: b.top, bottom: b.bottom, right: b.right}; })()"
            )
            lead = page.locator("#headline p.lead").inner_text()
            crossings = page.evaluate(
                "Array.from(document.querySelectorAll('#projection small.crossings'))"
                ".map(e => e.getBoundingClientRect().right)"
            )
            page_overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            captions = page.locator("figcaption").all_inner_texts()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report.png")
    assert problems == [] and outside == []
    assert clipped == [] and page_overflow <= 0  # at 1280 px every table fits, none scrolls
    # the answer is on the first screen, whole
    assert 0 < headline["top"] and headline["bottom"] <= FIRST_SCREEN["height"]
    assert headline["right"] <= FIRST_SCREEN["width"]
    final = yaml.safe_load((CONF_DIR / "roadmap" / "default.yaml").read_text())["stages"][-1]
    assert lead.startswith(f"After the whole roadmap ({final}), ")
    assert crossings and max(crossings) <= FIRST_SCREEN["width"]
    assert len(images) == 8
    for image in images:
        assert image["complete"] and image["width"] > 0, image
    assert headers[2:9] == [
        "rfc_v2",
        "ephmap_prototype",
        "ctxsw_same_mm",
        "cr3_noflush",
        "ephmap_zeroing",
        "multi_slot",
        "metadata_mapped",
    ]
    assert headers[-1] == "long term"  # verdict, vs default and crossings in one column
    assert versus == stored_cells > 0  # both baselines in every stored cell
    # one per focus workload x CPU profile whose final stage is stored (night 2 lacks some)
    assert 1 <= budget_tables <= len(row_text)
    assert len(row_text) == 2 and row_text[0].startswith("fio_randread_tmpfs")
    assert moved >= 1  # the recalibrated ephmap_pte moved fio's long-term projection
    assert len(captions) == 8 and all("From " in c for c in captions)
    assert any("Probability of meeting 1 % and 5 %" in t for t in figure_titles)
    assert shot.stat().st_size > 50_000

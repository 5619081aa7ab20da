"""The one-click report: a real PDF printed by Chromium, read back with pypdf.

The figures the report must contain are taken from the engine results the pages show (the
Margin page's side-by-side rows, the stress grid's worst cell), formatted as the app formats them.
"""
import io
import sys

import pypdf
import pytest

from dashboard import report
from dashboard.format import usd
from dashboard.stores import account
from dashboard.stores import session as state

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # kaleido: "kopts ignored with a server"


@pytest.fixture(scope="module")
def current(app_context):
    book, market, settings = state.default_stores()
    acct = account.default_account()
    page = sys.modules["dashboard.pages.report"]
    return book, market, settings, acct, page.report_data(book, market, settings, acct, 0.0, report.SECTIONS)


@pytest.fixture(scope="module")
def full_pdf(current):
    return pypdf.PdfReader(io.BytesIO(report.build(current[-1], fmt="pdf")))


def page_texts(reader) -> list[str]:
    return [" ".join(p.extract_text().split()) for p in reader.pages]


def section_starts(texts: list[str]) -> list[int]:
    """Page index where each section's title first appears (a section may run over pages)."""
    return [next(k for k, t in enumerate(texts) if k > 0 and " ".join(title.split()) in t)
            for title in report.SECTIONS.values()]


def test_pdf_has_a_cover_and_each_section_in_order(full_pdf):
    texts = page_texts(full_pdf)
    assert texts[0].count("Portfolio-margin risk report") == 1
    starts = section_starts(texts)
    assert starts == sorted(starts) and starts[0] == 1 and len(set(starts)) == len(starts)


def test_every_page_is_stamped_with_book_market_time_and_version(full_pdf, current):
    ctx = current[-1].context
    for k, text in enumerate(page_texts(full_pdf), start=1):
        assert "Desk book" in text and "market 2026-11-24 08:00:00 UTC" in text
        assert f"pmdash {ctx.app_version}" in text
        assert f"page {k} of {len(full_pdf.pages)}" in text


def test_pdf_shows_the_numbers_the_pages_show(full_pdf, current):
    data = current[-1]
    texts = page_texts(full_pdf)
    starts = dict(zip(report.SECTIONS, section_starts(texts), strict=True))
    margin = texts[starts["margin"]]
    for row in data.margin_rows:  # every model's IM and MM as the Margin page formats them
        assert usd(row["initial"]) in margin and usd(row["maintenance"]) in margin
    health = texts[starts["health"]]
    assert usd(data.health.equity) in health and usd(data.health.maintenance) in health
    stress = texts[starts["stress"]]
    worst = data.analysis.stress_result.pnl[:, :, 0].min()  # the heatmap's worst cell at horizon 0
    assert f"worst cell {usd(worst)}" in stress
    assert usd(data.analysis.totals["value"]) in texts[0]


def test_risk_section_shows_var_and_the_crash_library(full_pdf, current):
    from engine.crashes import load_library
    from engine.var import var_summary

    texts = page_texts(full_pdf)
    starts = dict(zip(report.SECTIONS, section_starts(texts), strict=True))
    text = " ".join(texts[starts["risk"]:starts["methodology"]])
    table = var_summary(current[-1].analysis).table
    dn99 = table[(table.method == "delta_normal") & (table.confidence == 0.99)].iloc[0]
    assert usd(dn99["var"]) in text and usd(dn99["es"]) in text
    for episode in load_library().values():  # titles may wrap in their cells; start dates do not
        assert episode.start[:10] in text


def test_chosen_sections_only(current):
    pdf = pypdf.PdfReader(io.BytesIO(report.build(current[-1], ["health", "margin"], fmt="pdf")))
    texts = page_texts(pdf)
    assert len(texts) == 3  # cover, margin, health — in document order whatever the order chosen
    assert "Margin models side by side" in texts[1] and "Account health" in texts[2]


def test_html_is_self_contained(current):
    document = report.build(current[-1], ["stress", "methodology"], fmt="html").decode()
    assert "<svg" in document and "data:font/ttf;base64," in document
    assert "http://" not in document.replace("http://www.w3.org", "")  # SVG namespaces only
    assert "https://" not in document


def test_unknown_section_is_refused(current):
    with pytest.raises(report.ReportError, match="unknown report section"):
        report.render_html(current[-1], ["greeks", "gossip"])


def test_no_browser_is_a_message_not_a_crash(current, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "")
    monkeypatch.setattr(report.shutil, "which", lambda name: None)
    with pytest.raises(report.ReportError, match="no Chromium"):
        report.html_to_pdf("<p>x</p>")


def test_one_report_at_a_time(current, monkeypatch):
    monkeypatch.setattr(report._ONE_AT_A_TIME, "acquire", lambda timeout: False)
    with pytest.raises(report.ReportError, match="another report"):
        report.build(current[-1], ["margin"])


def test_report_page_callback_sends_a_pdf_or_a_message(current, monkeypatch):
    book, market, settings, acct, _ = current
    page = sys.modules["dashboard.pages.report"]
    monkeypatch.setattr(page, "build", lambda data, sections, fmt: b"%PDF-1.4 fake")
    sent, note = page.report_download("pdf", ["margin"], 0.0, book, market, settings, acct)
    assert sent["filename"] == "pmdash-report-desk-book-200-positions-2026-11-24.pdf"
    assert "PDF report built" in str(note)
    _, refused = page.report_download("pdf", [], 0.0, book, market, settings, acct)
    assert "choose at least one section" in str(refused)

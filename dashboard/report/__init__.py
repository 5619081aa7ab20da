"""One-click report of the current state: a self-contained HTML document, and the same document
printed to PDF by headless Chromium.

    data = ReportData(context, analysis, horizon_days, margin_rows, health, selected_model)
    html = render_html(data, sections=("greeks", "stress", "margin", "health", "methodology"))
    pdf = html_to_pdf(html)                      # bytes, A4, every page stamped

Charts are the app's own figures (``dashboard.figures``) exported to SVG by plotly's exporter
(kaleido, which drives the Chromium that ``.ci/run`` installs), so the report shows the same
numbers and the same pictures as the pages.  The PDF is printed by that Chromium too, with the
DejaVu fonts shipped in ``fonts/`` (their licence beside them) embedded, so a PDF made in CI and
one made on a desktop look the same.  Every printed page carries the book, the market's
valuation time and the app version (CSS ``@page`` margin boxes).

One report is built at a time per server process (:data:`_ONE_AT_A_TIME`): exporting charts and
printing start a browser, and a burst of report clicks must not starve the other users.
"""
from __future__ import annotations

import base64
import html as html_lib
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import jinja2
import pandas as pd
import plotly.graph_objects as go

from engine import Analysis
from engine.margin import MODELS
from engine.margin.account import AccountHealth

from ..figures import greeks as greeks_figures
from ..figures import stress as stress_figures
from ..figures.style import GREEKS
from ..format import money, usd
from ..stores import account as account_state

HERE = Path(__file__).resolve().parent
FONTS = HERE / "fonts"

#: Report sections a user can choose, in document order: key → title.
SECTIONS: dict[str, str] = {
    "greeks": "Greeks summary",
    "stress": "Stress: spot × vol P&L and P&L along spot",
    "margin": "Margin models side by side",
    "health": "Account health and liquidation prices",
    "risk": "VaR and crash replays",
    "methodology": "Methodology appendix",
}

#: Longest a chart export or a PDF print may take (seconds) before the report is refused.
PRINT_TIMEOUT_S = 90.0

_ONE_AT_A_TIME = threading.BoundedSemaphore(1)


class ReportError(RuntimeError):
    """The report could not be produced (browser missing, timeout, busy); the message is for the user."""


def app_version() -> str:
    try:
        return metadata.version("pmdash")
    except metadata.PackageNotFoundError:
        return "dev"


@dataclass(frozen=True)
class ReportContext:
    """What every page and every exported table says about where its numbers come from."""

    book_name: str
    positions: int
    valuation_time: str  # ISO 8601, UTC
    model_title: str
    collateral_usd: float
    denomination: str = "USD"
    app_version: str = field(default_factory=app_version)
    generated_utc: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def valuation_text(self) -> str:
        return self.valuation_time.replace("T", " ").replace("Z", " UTC")

    @property
    def stamp(self) -> str:
        """The line printed at the foot of every PDF page."""
        return f"{self.book_name} · market {self.valuation_text} · pmdash {self.app_version}"

    def csv_header(self) -> str:
        """Comment lines that head every CSV export (pandas reads the file back with ``comment='#'``)."""
        lines = [f"pmdash {self.app_version} export, generated {self.generated_utc}",
                 f"book: {self.book_name} ({self.positions} positions)",
                 f"market valuation time: {self.valuation_text}",
                 f"margin model: {self.model_title}; collateral {usd(self.collateral_usd)}"
                 + ("" if self.denomination == "USD" else f"; account denominated in {self.denomination}"),
                 "units: quantities in contracts, prices and P&L in USD, vols in decimals per annum, "
                 "shocks as fractions unless a column says %"]
        return "".join(f"# {line}\n" for line in lines)


def context_of(book: dict, market: dict, acct: dict) -> ReportContext:
    """The context of the current state, from the book, market and account store values."""
    return ReportContext(book_name=book.get("name") or "unnamed book", positions=len(book["positions"]),
                         valuation_time=market["valuation_time"], model_title=MODELS[acct["model"]].title,
                         collateral_usd=account_state.collateral_usd(market, acct),
                         denomination=acct.get("denomination", "USD"))


def csv_with_header(frame: pd.DataFrame, context: ReportContext, float_format: str = "%.10g") -> str:
    """``frame`` as CSV text under the context header."""
    return context.csv_header() + frame.to_csv(index=False, float_format=float_format)


@dataclass(frozen=True)
class ExtraSection:
    """A section computed elsewhere (VaR table, crash replays): a title, a table, figures."""

    key: str
    title: str
    table: pd.DataFrame | None = None
    figures: tuple[go.Figure, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ReportData:
    """The engine results a report is made of (the caller computes them, usually from the cache)."""

    context: ReportContext
    analysis: Analysis
    horizon_days: float
    margin_rows: list[dict]  # the Margin page's side-by-side rows
    health: AccountHealth
    selected_model: str
    extras: tuple[ExtraSection, ...] = ()


# ----------------------------------------------------------------------------- charts


def _browser() -> str:
    path = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")
    if not path:
        raise ReportError("no Chromium found to draw the charts and print the PDF "
                          "(install Debian's chromium, or set BROWSER_PATH)")
    return path


def figures_to_svg(figures: list[go.Figure], width: int = 1000) -> list[str]:
    """SVG text of each figure, through plotly's exporter (kaleido) in one browser session."""
    if not figures:
        return []
    import kaleido  # imported here: it starts nothing, but only the report needs it

    os.environ.setdefault("BROWSER_PATH", _browser())
    kaleido.start_sync_server(silence_warnings=True)
    try:
        return [fig.to_image(format="svg", width=width, height=fig.layout.height or 420).decode()
                for fig in figures]
    except Exception as exc:  # kaleido wraps browser failures in several types
        raise ReportError(f"chart export failed: {exc}") from exc
    finally:
        kaleido.stop_sync_server(silence_warnings=True)


def _printable(fig: go.Figure) -> go.Figure:
    """A copy fit for paper: white background, the report's own font (the same on every machine)."""
    return go.Figure(fig).update_layout(paper_bgcolor="white", plot_bgcolor="white",
                                        font_family="'Report Sans', 'DejaVu Sans', sans-serif")


# ----------------------------------------------------------------------------- tables


def _greeks_table(analysis: Analysis) -> pd.DataFrame:
    rows = []
    for row in analysis.by_underlying.to_dict("records"):
        rows.append({"Underlying": row["underlying"], "Delta (contracts)": f"{row['delta']:,.2f}",
                     **{f"{label} ({unit})": usd(row[key]) for key, label, unit in GREEKS}})
    t = analysis.totals
    rows.append({"Underlying": "Book", "Delta (contracts)": "",
                 **{f"{label} ({unit})": usd(t[key]) for key, label, unit in GREEKS}})
    return pd.DataFrame(rows)


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f} %"


def _in_account_currency(row: dict, key: str) -> str:
    """A side-by-side amount (in the account's currency) as money: coin with USD beside."""
    spot = row.get("spot", 1.0)
    return money(row[key] * spot, row.get("currency", "USD"), spot)


def _margin_table(rows: list[dict], selected: str) -> pd.DataFrame:
    return pd.DataFrame([{
        "Model": ("▶ " if r["model"] == selected else "") + r["label"],
        "Initial margin": _in_account_currency(r, "initial"),
        "Maintenance margin": _in_account_currency(r, "maintenance"),
        "Margin ratio (MM ÷ equity)": "equity ≤ 0" if r["margin_ratio"] is None else _pct(r["margin_ratio"]),
        "Capital efficiency (standard IM ÷ IM)": "" if r["capital_efficiency"] is None
        else f"{r['capital_efficiency']:.2f}×",
        "Binding scenario": r["binding"],
    } for r in rows])


def _health_table(h: AccountHealth) -> pd.DataFrame:
    def amount(x: float) -> str:
        return money(x, h.currency, h.currency_spot)

    rows = [("Equity (collateral + book value)", amount(h.equity)), ("Initial margin", amount(h.initial)),
            ("Maintenance margin", amount(h.maintenance)),
            ("Margin ratio (MM ÷ equity)", "∞ (equity ≤ 0)" if h.equity <= 0 else _pct(h.margin_ratio)),
            ("Available (equity − IM)", amount(h.available)),
            ("Liquidatable now", "yes" if h.liquidatable else "no")]
    for side, shock, prices in (("down", h.liquidation_shock_down, h.liquidation_price_down),
                                ("up", h.liquidation_shock_up, h.liquidation_price_up)):
        if shock is None:
            text = f"none within ±{100 * h.search_range:.0f} % of spot"
        else:
            text = f"spot {100 * shock:+.1f} %: " + ", ".join(f"{u} {usd(p)}" for u, p in (prices or {}).items())
        rows.append((f"Liquidation price ({side})", text))
    return pd.DataFrame(rows, columns=["", "Value"])


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0, classes="table", na_rep="")


# ----------------------------------------------------------------------------- document

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE), autoescape=jinja2.select_autoescape(["html"]),
                          trim_blocks=True, lstrip_blocks=True)


def _font_faces(embed: bool) -> str:
    """@font-face rules for the shipped DejaVu fonts: inlined (a self-contained HTML file) or by
    file URL (printing on the server)."""
    rules = []
    for weight, name in (("normal", "DejaVuSans.ttf"), ("bold", "DejaVuSans-Bold.ttf")):
        path = FONTS / name
        src = (f"data:font/ttf;base64,{base64.b64encode(path.read_bytes()).decode()}" if embed
               else path.as_uri())
        rules.append(f"@font-face {{ font-family: 'Report Sans'; font-weight: {weight}; "
                     f"src: url('{src}') format('truetype'); }}")
    return "\n".join(rules)


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_html(data: ReportData, sections=tuple(SECTIONS), *, embed_fonts: bool = True) -> str:
    """The report as one HTML document (charts inline as SVG; ``embed_fonts``: fonts inline too,
    so the file opens anywhere unchanged)."""
    chosen = [s for s in SECTIONS if s in set(sections)]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ReportError(f"unknown report section(s): {', '.join(unknown)}")
    a = data.analysis
    figs: dict[str, list[go.Figure]] = {}
    if "greeks" in chosen:
        figs["greeks"] = [greeks_figures.by_underlying(a)]
    if "stress" in chosen:
        figs["stress"] = [stress_figures.stress_heatmap(a, data.horizon_days), stress_figures.pnl_vs_spot(a)]
    extras = [e for e in data.extras if "risk" in chosen]
    for e in extras:
        figs[e.key] = list(e.figures)
    order = [key for key in figs for _ in figs[key]]
    svgs = figures_to_svg([_printable(f) for key in figs for f in figs[key]])
    charts: dict[str, list[str]] = {key: [] for key in figs}
    for key, svg in zip(order, svgs, strict=True):
        charts[key].append(svg)
    market = a.market
    spots = [(u, usd(und.spot)) for u, und in market.underlyings.items()]
    return _ENV.get_template("report.html.j2").render(
        ctx=data.context, sections=chosen, titles=SECTIONS, charts=charts,
        font_faces=_font_faces(embed_fonts), stamp=_css_string(data.context.stamp),
        spots=spots, totals=a.totals, usd=usd,
        greeks_table=_html_table(_greeks_table(a)) if "greeks" in chosen else "",
        margin_table=_html_table(_margin_table(data.margin_rows, data.selected_model)),
        health_table=_html_table(_health_table(data.health)),
        horizon=data.horizon_days, extras=[(e, _html_table(e.table) if e.table is not None else "")
                                           for e in extras],
        escape=html_lib.escape,
    )


def html_to_pdf(document: str, timeout: float = PRINT_TIMEOUT_S) -> bytes:
    """Print an HTML document to PDF (A4) with headless Chromium; :class:`ReportError` on failure."""
    with tempfile.TemporaryDirectory(prefix="pmdash-report-") as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(document, encoding="utf-8")
        cmd = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--no-pdf-header-footer",
               f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out}", src.as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"printing the PDF took longer than {timeout:.0f} s and was stopped") from None
        if not out.exists() or out.stat().st_size == 0:
            raise ReportError("the browser produced no PDF")
        return out.read_bytes()


def build(data: ReportData, sections=tuple(SECTIONS), fmt: str = "pdf") -> bytes:
    """The report as PDF or HTML bytes, one build at a time per process (:class:`ReportError`
    when another is running: the user is asked to retry rather than queue up CPU)."""
    if not _ONE_AT_A_TIME.acquire(timeout=5.0):
        raise ReportError("another report is being built on this server; try again in a few seconds")
    try:
        if fmt == "html":
            return render_html(data, sections, embed_fonts=True).encode()
        if fmt == "pdf":
            return html_to_pdf(render_html(data, sections, embed_fonts=False))
        raise ReportError(f"unknown report format {fmt!r}: pdf or html")
    finally:
        _ONE_AT_A_TIME.release()


__all__ = ["SECTIONS", "ExtraSection", "ReportContext", "ReportData", "ReportError", "app_version", "build",
           "context_of", "csv_with_header", "figures_to_svg", "html_to_pdf", "render_html"]

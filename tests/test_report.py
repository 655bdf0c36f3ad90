"""`profit report`: the numbers (worked by hand), the page (escaped, reproducible, rendered), exit codes."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import warnings
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import attrs
import pytest

from engine import cli, load_policy, report as report_module
from engine.report import Pool, ReferralLeader, build_report, render_html, render_text

ROOT = Path(__file__).resolve().parent.parent
STANDARD = str(ROOT / "policies" / "standard.policy")
STRICT = str(ROOT / "policies" / "strict.policy")
CUSTOMERS = str(ROOT / "examples" / "customers.csv")
BAD = str(ROOT / "examples" / "bad_customers.csv")

TINY = '''policy "Tiny <i>test</i>"
version "1"
currency EUR
rounding half-up to cents per line

record customer
  id         text   key
  revenue    money
  goods      money
  calls      count  default 0
  referrals  count  default 0

rates
  call   = 10.00 EUR per call
  bonus  = 100.00 EUR per referral

cost goods_cost = goods
cost service    = calls * call
credit word     = referrals * bonus

measure profit = revenue - costs + credits

classify class
  profitable    when profit > 0 EUR
  unprofitable  otherwise
'''

# profit = revenue - goods - 10 * calls + 100 * referrals
TINY_CSV = """id,revenue,goods,calls,referrals
A,1000.00,600.00,0,0
B,500.00,200.00,10,0
C,100.00,50.00,20,0
D,300.00,250.00,15,0
E,0.00,0.00,0,1
"""
# A +400 (largest cost goods 600), B +200 (goods 200 > service 100), C -150 (service 200 > goods 50),
# D -100 (goods 250), E +100 (a referral, no cost at all). Total 450.
# Ranked A, B, E, D, C: cumulative 0, 400, 600, 700, 600, 450. Peak 700 after 3 of 5 customers (60%),
# 700 / 450 = 155.6% of total profit; the tail gives back 250.


def records(text=TINY_CSV):
    lines = text.strip().splitlines()
    names = lines[0].split(",")
    return [dict(zip(names, line.split(","))) for line in lines[1:]]


@pytest.fixture(scope="module")
def tiny():
    return load_policy(TINY)


@pytest.fixture
def tiny_files(tmp_path):
    policy = tmp_path / "tiny.policy"
    policy.write_text(TINY)
    data = tmp_path / "tiny.csv"
    data.write_text(TINY_CSV)
    return str(policy), str(data)


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- the numbers --------------------------------------------------------------------------


def test_class_totals_worked_by_hand(tiny):
    report = build_report(tiny, tiny.evaluate_many(records()))
    assert (report.records, report.decisions, report.errors) == (5, 5, 0)
    assert (report.policy_name, report.policy_version, report.currency) == ("Tiny <i>test</i>", "1", "EUR")
    assert report.key_figure == "profit" and report.classification == "class"
    by_label = {c.label: c for c in report.classes}
    assert [c.label for c in report.classes] == ["profitable", "unprofitable"]
    profitable, unprofitable = by_label["profitable"], by_label["unprofitable"]
    assert (profitable.count, profitable.revenue, profitable.cost, profitable.profit) == (
        3, Decimal("1500.00"), Decimal("900.00"), Decimal("700.00"))
    assert (unprofitable.count, unprofitable.revenue, unprofitable.cost, unprofitable.profit) == (
        2, Decimal("400.00"), Decimal("650.00"), Decimal("-250.00"))
    total = report.total
    assert (total.count, total.revenue, total.cost, total.profit) == (
        5, Decimal("1900.00"), Decimal("1550.00"), Decimal("450.00"))
    for value in (total.revenue, total.cost, total.profit):
        assert isinstance(value, Decimal)


def test_whale_curve_worked_by_hand(tiny):
    report = build_report(tiny, iter(tiny.evaluate_many(records())))  # a one-pass iterator is enough
    assert report.ranked == 5
    assert [p.customers for p in report.curve] == [0, 1, 2, 3, 4, 5]
    assert [p.cumulative for p in report.curve] == [Decimal(v) for v in ("0", "400", "600", "700", "600", "450")]
    assert [p.share for p in report.curve] == [Decimal(k) / 5 for k in range(6)]
    assert report.curve[3].percent == Decimal("155.6")
    assert report.total_profit == Decimal("450.00")
    assert report.peak == Decimal("700.00")
    assert report.peak_customers == 3 and report.peak_share == Decimal("0.6")
    assert report.peak_percent == Decimal("155.6")
    assert report.tail_loss == Decimal("250.00")
    assert (report.loss_makers, report.losses) == (2, Decimal("-250.00"))
    assert [p.customers for p in report.deciles] == [1, 2, 3, 4, 5]  # under ten customers: no repeats, no "top 0%"
    assert report.deciles[-1].percent == Decimal("100.0")


def test_top_bottom_and_the_cost_that_sinks_them(tiny):
    report = build_report(tiny, tiny.evaluate_many(records()))
    assert [c.id for c in report.top] == ["A", "B", "E", "D", "C"]
    assert [c.id for c in report.bottom] == ["C", "D", "E", "B", "A"]
    worst = {c.id: (c.worst_cost, c.worst_cost_amount) for c in report.top}
    assert worst["A"] == ("goods_cost", Decimal("600.00"))
    assert worst["B"] == ("goods_cost", Decimal("200.00"))
    assert worst["C"] == ("service", Decimal("200.00"))
    assert worst["E"] == (None, None)  # no cost at all: nothing sinks it
    assert [(c.id, c.credits) for c in report.credit_leaders] == [("E", Decimal("100.00"))]


def test_errors_are_counted_and_left_out(tiny):
    rows = records() + [{"id": "X", "revenue": "lots", "goods": "1.00"}]
    report = build_report(tiny, tiny.evaluate_many(rows))
    assert (report.records, report.decisions, report.errors) == (6, 5, 1)
    assert report.total_profit == Decimal("450.00")
    assert report.error_kinds == (("revenue", 1),)
    assert report.error_samples[0].id == "X" and report.error_samples[0].row == 6


def test_negative_total_has_no_percentages_and_still_draws(tiny):
    rows = [{"id": "P", "revenue": "100.00", "goods": "0.00"}, {"id": "L", "revenue": "0.00", "goods": "300.00"}]
    report = build_report(tiny, tiny.evaluate_many(rows))
    assert report.total_profit == Decimal("-200.00") and report.peak == Decimal("100.00")
    assert report.peak_percent is None and report.tail_loss == Decimal("300.00")
    page = render_html(report)
    assert 'class="curve"' in page and "total profit = -200.00 EUR" in page
    assert "n/a" in render_text(report) or "total profit is -200.00 EUR" in render_text(report)


def test_nobody_profitable_and_no_records(tiny):
    report = build_report(tiny, tiny.evaluate_many([{"id": "L", "revenue": "0.00", "goods": "5.00"}]))
    assert report.peak == 0 and report.peak_customers == 0 and report.tail_loss == Decimal("5.00")
    assert "No customer earns a profit" in render_text(report)
    empty = build_report(tiny, [])
    assert empty.ranked == 0 and empty.classes == () and empty.curve[0].customers == 0
    assert "no whale curve" in render_html(empty)
    render_text(empty)


def test_long_runs_store_a_sampled_curve_that_keeps_the_peak(tiny, monkeypatch):
    monkeypatch.setattr(report_module, "CURVE_POINTS", 10)
    rows = [{"id": f"C{i:03}", "revenue": str(100 - 3 * i), "goods": "0.00"} for i in range(50)]
    report = build_report(tiny, tiny.evaluate_many(rows))
    assert report.ranked == 50
    counts = [p.customers for p in report.curve]
    assert counts[0] == 0 and counts[-1] == 50 and len(counts) <= 12
    assert report.peak_customers in counts  # 100 - 3i > 0 up to i = 33: the peak is after 34 customers
    assert report.peak_customers == 34
    assert "is drawn through" in render_html(report)


def test_strict_policy_has_no_credit_table():
    policy = load_policy(STRICT)
    report = build_report(policy, policy.evaluate_many(records_of(CUSTOMERS)[:20]))
    assert report.credit_leaders is None
    assert 'id="credits"' not in render_html(report)


def records_of(path):
    import csv

    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_example_data_figures_hang_together():
    policy = load_policy(STANDARD)
    report = build_report(policy, policy.evaluate_many(records_of(CUSTOMERS)))
    assert report.decisions == 600 and report.ranked == 600
    assert report.total_profit == sum((c.profit for c in report.classes), Decimal(0))
    assert report.total.count == sum(c.count for c in report.classes)
    assert report.peak >= report.total_profit and report.peak >= report.curve[-1].cumulative
    assert report.tail_loss == report.peak - report.total_profit
    assert report.tail_loss == -report.losses  # everyone after the peak loses money (or breaks exactly even)
    assert report.peak_percent > 100
    profits = [c.profit for c in report.top]
    assert profits == sorted(profits, reverse=True)


# ---- the pages ----------------------------------------------------------------------------


def test_placeholders_and_filled_sections(tiny):
    report = build_report(tiny, tiny.evaluate_many(records()))
    page = render_html(report)
    assert "no pooled costs in this policy" in page
    assert "no pooled costs in this policy" in render_text(report)
    # Tiny has a credit but no referral network: the one list of credited customers, without referral counts.
    assert 'id="credits"' in page and "Customers referred" not in page and 'id="referrals"' not in page
    filled = attrs.evolve(report,
                          pools=(Pool("call <centre>", Decimal("1000.00"), Decimal("800.00"), Decimal("200.00")),),
                          referral_leaders=(ReferralLeader("E", 1, Decimal("100.00"), "word"),))
    page = render_html(filled)
    assert "Call &lt;centre&gt;" in page and '<code class="ident">call &lt;centre&gt;</code>' in page
    assert "<td class=\"n\">800.00</td>" in page
    assert "no pooled costs" not in page
    # The referral leaders are not a second list: their counts join the credited customers' rows.
    credits = page[page.index('<section id="credits"'):]
    credits = credits[:credits.index("</section>")]
    assert "Customers referred" in credits and credits.count('<span class="id">E</span>') == 1
    assert 'id="referrals"' not in page and "Referral leaders" not in page
    assert "call <centre>: 1,000.00, 800.00, 200.00" in render_text(filled)
    assert "  E: 1, 100.00, 100.00, 0.00" in render_text(filled)


def test_html_escapes_everything_from_the_data(tiny):
    evil = '<script>alert("x")</script>'
    rows = records() + [{"id": evil, "revenue": "5000.00", "goods": "1.00"},
                        {"id": "<img src=x onerror=alert(1)>", "revenue": "bad", "goods": "1.00"}]
    report = build_report(tiny, tiny.evaluate_many(rows))
    page = render_html(report)
    assert "<script" not in page and "<img" not in page and "<i>test</i>" not in page
    assert html.escape(evil) in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the failed record's id, in the errors table
    assert "Tiny &lt;i&gt;test&lt;/i&gt;" in page


def test_page_is_self_contained_and_well_formed(tiny):
    page = render_html(build_report(tiny, tiny.evaluate_many(records())))

    class Checker(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.tags = [], set()

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            for name, value in attrs:
                assert name not in ("src", "href") and not name.startswith("on"), (tag, name, value)
            if tag not in ("meta", "line", "circle", "path", "br", "input"):
                self.stack.append(tag)

        def handle_startendtag(self, tag, attrs):
            self.tags.add(tag)

        def handle_endtag(self, tag):
            assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
            self.stack.pop()

    checker = Checker()
    checker.feed(page)
    assert checker.stack == []
    # with failed records too: the warning, the red card and the errors table are well formed
    failed = Checker()
    failed.feed(render_html(build_report(tiny, tiny.evaluate_many(records() + [{"id": "X", "revenue": "lots"}]))))
    assert failed.stack == [] and "div" in failed.tags
    assert {"svg", "path", "table", "style"} <= checker.tags
    assert "script" not in checker.tags and "link" not in checker.tags and "@import" not in page
    assert "size: A4" in page


def test_money_is_exact_and_grouped(tiny):
    rows = [{"id": "big", "revenue": "1234567.895", "goods": "0.005"}]
    report = build_report(tiny, tiny.evaluate_many(rows))
    assert report.total_profit == Decimal("1234567.89")  # the policy rounds each line half-up to cents
    assert "1,234,567.89" in render_html(report) and "1,234,567.89" in render_text(report)


def test_report_is_reproducible_byte_for_byte(tmp_path, capsys):
    first, second = tmp_path / "a.html", tmp_path / "b.html"
    assert run(capsys, "report", STANDARD, CUSTOMERS, "--output", str(first))[0] == 0
    assert run(capsys, "report", STANDARD, CUSTOMERS, "--output", str(second))[0] == 0
    assert first.read_bytes() == second.read_bytes()
    _, text1, _ = run(capsys, "report", STANDARD, CUSTOMERS)
    _, text2, _ = run(capsys, "report", STANDARD, CUSTOMERS)
    assert text1 == text2


# ---- the command --------------------------------------------------------------------------


def test_cli_default_formats(tiny_files, tmp_path, capsys):
    policy, data = tiny_files
    code, out, err = run(capsys, "report", policy, data)
    assert code == 0 and out.startswith("Tiny <i>test</i> (version 1)") and "<html" not in out
    assert "155.6% of total profit" in out
    code, out, err = run(capsys, "report", policy, data, "--format", "html")
    assert code == 0 and out.startswith("<!DOCTYPE html>")
    target = tmp_path / "out" / "r.html"
    target.parent.mkdir()
    code, out, err = run(capsys, "report", policy, data, "--output", str(target))
    assert code == 0 and out == "" and "5 records in = 5 decisions + 0 errors out" in err
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(os.listdir(target.parent)) == ["r.html"]  # no temporary file left behind
    summary = tmp_path / "r.txt"
    assert run(capsys, "report", policy, data, "--output", str(summary))[0] == 0
    assert summary.read_text(encoding="utf-8").startswith("Tiny")


def test_cli_exit_2_when_records_fail_and_report_still_written(tmp_path, capsys):
    target = tmp_path / "bad.html"
    code, out, err = run(capsys, "report", STANDARD, BAD, "--output", str(target))
    assert code == 2
    page = target.read_text(encoding="utf-8")
    assert "Records that failed" in page and "6 of 9 records could not be classified" in page
    assert "9 records in = 3 decisions + 6 errors out" in err
    code, out, _ = run(capsys, "report", STANDARD, BAD)
    assert code == 2 and "Errors: 6" in out


def test_cli_exit_1_for_an_invalid_policy_and_nothing_written(tmp_path, capsys):
    policy = tmp_path / "bad.policy"
    policy.write_text('policy "bad"\ncurrency EUR\nrecord c\n  id text key\ncost a = b\nclassify k\n  x otherwise\n')
    target = tmp_path / "r.html"
    code, out, err = run(capsys, "report", str(policy), CUSTOMERS, "--output", str(target))
    assert code == 1 and "unknown name 'b'" in err
    assert not target.exists() and os.listdir(tmp_path) == ["bad.policy"]
    assert run(capsys, "report", STANDARD, str(tmp_path / "missing.csv"))[0] == 1


def test_report_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        cli.main(["report", "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "exit status" in out



# ---- the page as a browser renders it -----------------------------------------------------
#
# Chromium renders the portfolio report at a desktop width (1280 px) and a phone's (390 px)
# and prints it on A4. Headless Chromium will not make a window narrower than 500 px, so
# each width is a frame of exactly that width in a small harness page, whose script (the
# report itself has none) measures the frame's page and writes what it found into the
# harness's DOM, which `--dump-dom` prints. The screenshots and the PDF are kept under
# out/report-screenshots/ for people to look at.

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PDFTOTEXT = shutil.which("pdftotext")
IN_CI = os.environ.get("CI", "").strip().lower() == "true"
PORTFOLIO = ROOT / "policies" / "portfolio.policy"
PORTFOLIO_CSV = ROOT / "examples" / "portfolio_customers.csv"
SHOTS = ROOT / "out" / "report-screenshots"
WIDTHS = {"desktop": 1280, "phone": 390}

NO_CHROMIUM = ("SKIPPED the headless rendering check of the HTML report: no chromium binary (chromium or "
               "chromium-browser) on PATH; install it (e.g. apt-get install chromium) to run it")
NO_PDFTOTEXT = ("SKIPPED the page-number check of the printed report: no pdftotext on PATH; install it "
                "(e.g. apt-get install poppler-utils) to run it")


def _require(tool, reason):
    """Skip, saying why, when a tool is missing; in CI (CI=true) a missing tool is a failure."""
    if tool is not None:
        return
    if IN_CI:
        pytest.fail(reason.replace("SKIPPED", "FAILED", 1) + " (CI=true: the check must run in CI)")
    # A warning too, so that a plain `pytest -q` (as `make test` runs it) says what was skipped and why.
    warnings.warn(reason, pytest.PytestWarning)
    pytest.skip(reason)


def _chromium(tmp_path, *args, url):
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


_MEASURE = """<script>
const frame = document.getElementById("page");
frame.addEventListener("load", () => {
  const doc = frame.contentDocument, view = frame.contentWindow.innerWidth, outside = [];
  const name = (el) => el.tagName.toLowerCase() + "." + (el.getAttribute("class") || "") + " '" +
                       (el.textContent || "").trim().slice(0, 40) + "'";
  for (const el of doc.body.querySelectorAll("*")) {
    const box = el.closest(".scroll");
    if (box && box !== el) continue;  // inside a table's own box, which scrolls sideways
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > view + 0.5 || r.left < -0.5)) outside.push(name(el) + " right " + Math.round(r.right));
  }
  for (const el of doc.querySelectorAll(".card, .card *, .headline, .warning"))
    if (el.scrollWidth > el.clientWidth + 1) outside.push(name(el) + " is cut off inside its box");
  const scrolling = [...doc.querySelectorAll(".scroll")].filter((box) => box.scrollWidth > box.clientWidth + 1)
                                                      .map((box) => box.firstElementChild.getAttribute("class"));
  const cards = [...doc.querySelectorAll(".card")].map((card) => {
    const r = card.getBoundingClientRect();
    return [Math.round(r.left), Math.round(r.top), Math.round(r.right)];
  });
  document.getElementById("result").textContent = JSON.stringify({
    view: view, scrollWidth: doc.documentElement.scrollWidth, height: doc.documentElement.scrollHeight,
    outside: outside, scrolling: scrolling, cards: cards});
});
</script>"""


def _harness(page, width, height):
    """A page showing `page` in a frame exactly `width` px wide, which measures it once loaded."""
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><style>html, body { margin: 0; background: #fff; } '
            'iframe { border: 0; display: block; }</style></head><body>'
            f'<iframe id="page" width="{width}" height="{height}" srcdoc="{html.escape(page, quote=True)}"></iframe>'
            f'<pre id="result"></pre>{_MEASURE}</body></html>')


def _png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@attrs.frozen
class Rendered:
    report: object
    page: str
    dom: str  # the page as Chromium parsed it at the desktop width
    measured: dict  # view name -> what the harness measured
    screenshots: dict  # view name -> PNG path
    pdf: Path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The portfolio report, rendered by Chromium at each width and printed on A4 (once for the module)."""
    _require(CHROMIUM, NO_CHROMIUM)
    tmp_path = tmp_path_factory.mktemp("chromium")
    policy = load_policy(PORTFOLIO)
    report = build_report(policy, policy.run(records_of(PORTFOLIO_CSV)))
    page = render_html(report)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.iterdir():
        if old.suffix in (".png", ".pdf", ".html"):
            old.unlink()
    (SHOTS / "report.html").write_text(page, encoding="utf-8")
    source = tmp_path / "report.html"
    source.write_text(page, encoding="utf-8")
    dumped = _chromium(tmp_path, "--window-size=1280,900", "--dump-dom", url=source.as_uri())
    assert dumped.returncode == 0 and "<body>" in dumped.stdout, dumped.stderr[-2000:]
    measured, screenshots = {}, {}
    for view, width in WIDTHS.items():
        harness = tmp_path / f"measure-{view}.html"
        harness.write_text(_harness(page, width, 900), encoding="utf-8")
        # the window may not be narrower than 500 px; the frame is the width that counts
        out = _chromium(tmp_path, f"--window-size={max(width, 500)},900", "--dump-dom", url=harness.as_uri())
        found = re.search(r'<pre id="result">(.+?)</pre>', out.stdout, re.S)
        assert out.returncode == 0 and found, (out.stdout[-500:], out.stderr[-2000:])
        measured[view] = json.loads(html.unescape(found.group(1)))
        height = measured[view]["height"]
        shot = SHOTS / f"report-{view}-{width}px.png"
        framed = tmp_path / f"shot-{view}.html"
        framed.write_text(_harness(page, width, height), encoding="utf-8")
        taken = _chromium(tmp_path, f"--window-size={width},{height}", f"--screenshot={shot}", url=framed.as_uri())
        assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
        screenshots[view] = shot
    pdf = SHOTS / "report-a4.pdf"
    printed = _chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", url=source.as_uri())
    assert printed.returncode == 0 and pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-", printed.stderr[-2000:]
    return Rendered(report, page, dumped.stdout, measured, screenshots, pdf)


def test_rendered_page_has_the_chart_and_the_tables(rendered):
    dom = rendered.dom
    assert '<svg class="whale"' in dom and '<path class="curve" d="M' in dom
    assert '<circle class="peak"' in dom and "100% of total profit = 9,137,205.71 EUR" in dom
    assert '<table class="classes">' in dom and '<table class="customers">' in dom and '<table class="pools">' in dom
    assert '<td title="profitable">Profitable</td>' in dom and '<td title="unprofitable">Unprofitable</td>' in dom
    assert "Continental Building Products AG" in dom and "C-1077" in dom  # the top customer, by name and id
    assert 'class="warning"' not in dom  # every record was decided


def test_rendered_page_fits_a_desktop_and_a_phone(rendered):
    for view, width in WIDTHS.items():
        measured = rendered.measured[view]
        assert measured["view"] == width, measured
        # no horizontal overflow of the page: wide tables scroll inside their own box
        assert measured["scrollWidth"] <= width, (view, measured["scrollWidth"], measured["outside"][:10])
        assert measured["outside"] == [], (view, measured["outside"][:10])
        if view == "desktop":
            assert measured["scrolling"] == [], measured["scrolling"]  # at a desktop's width every table fits
        cards = measured["cards"]
        assert len(cards) == 6 and all(0 <= left and right <= width for left, _, right in cards), (view, cards)
        rows = len({top for _, top, _ in cards})
        assert rows == (2 if view == "desktop" else 3), (view, cards)  # the cards wrap: 3 a row, 2 on a phone
        assert _png_size(rendered.screenshots[view]) == (width, measured["height"])
    assert rendered.measured["phone"]["height"] > rendered.measured["desktop"]["height"]


def test_printed_page_is_a4_with_page_numbers_and_no_broken_ids(rendered):
    data = rendered.pdf.read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert boxes and all(abs(float(w) - 595.28) < 1 and abs(float(h) - 841.89) < 1 for w, h in boxes), boxes[:3]
    _require(PDFTOTEXT, NO_PDFTOTEXT)
    text = subprocess.run([PDFTOTEXT, "-layout", str(rendered.pdf), "-"], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    pages = text.split("\f")
    pages = pages[:-1] if not pages[-1].strip() else pages
    assert len(pages) == len(boxes) >= 2
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page, (number, page[-300:])
        assert "Portfolio customer profitability · version 2026.1" in page  # the running title
    report = rendered.report
    for customer in (*report.top, *report.bottom, *report.credit_leaders):
        assert customer.id in text, customer.id  # ids do not wrap
    # a note stays on the page of its table
    for table, note in (("Top 100%", "customers lose money; together"), ("All customers", "Every row adds up"),
                        ("Support centre (capacity)", "Unused capacity is reported")):
        (where,) = [page for page in pages if table in page]
        assert note in where, (table, note)

"""The report as a finance reader reads it: columns that add up to the bottom line, failed
records up front, customers by name, readable labels, the whale peak in words, one list of
referrers, and a page that fits a phone and prints on A4 (tests/test_report.py renders it in
Chromium; here the page's text and CSS are read)."""
from __future__ import annotations

import csv
import html
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine import load_policy
from engine.report import build_report, equation, label, peak_meaning, pool_label, render_html, render_text

ROOT = Path(__file__).resolve().parent.parent
STANDARD = ROOT / "policies" / "standard.policy"
STRICT = ROOT / "policies" / "strict.policy"
PORTFOLIO = ROOT / "policies" / "portfolio.policy"
CUSTOMERS = ROOT / "examples" / "customers.csv"
BAD = ROOT / "examples" / "bad_customers.csv"
PORTFOLIO_CSV = ROOT / "examples" / "portfolio_customers.csv"

TINY = '''policy "Tiny"
version "1"
currency EUR

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
TINY_ROWS = [
    {"id": "A", "revenue": "1000.00", "goods": "600.00"},
    {"id": "B", "revenue": "500.00", "goods": "200.00", "calls": "10"},
    {"id": "C", "revenue": "100.00", "goods": "50.00", "calls": "20"},
    {"id": "D", "revenue": "300.00", "goods": "250.00", "calls": "15"},
    {"id": "E", "revenue": "0.00", "goods": "0.00", "referrals": "1"},
]

# A bottom line that is not a plain sum of named figures: a share of revenue and a fixed amount
# come on top, so the page needs an "other" column for each row to add up.
OTHER = '''policy "Other"
currency EUR

record customer
  id       text   key
  revenue  money
  goods    money

cost goods_cost = goods
measure net     = revenue - costs
measure profit  = net - 5% of revenue + 1.00 EUR

classify class
  profitable    when profit > 0 EUR
  unprofitable  otherwise
'''


def rows_of(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def report_of(policy_source, rows):
    policy = load_policy(policy_source)
    return build_report(policy, policy.run(rows))


@pytest.fixture(scope="module")
def portfolio():
    return report_of(PORTFOLIO, rows_of(PORTFOLIO_CSV))


@pytest.fixture(scope="module")
def standard():
    return report_of(STANDARD, rows_of(CUSTOMERS))


class Tables(HTMLParser):
    """Every table of a page: its class, the header cells' attributes and text, and each row's cell texts."""

    def __init__(self, page):
        super().__init__()
        self.tables, self._cell, self._row, self._part = [], None, None, None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"class": attrs.get("class"), "head": [], "body": [], "foot": []})
        elif tag in ("thead", "tbody", "tfoot"):
            self._part = {"thead": "head", "tbody": "body", "tfoot": "foot"}[tag]
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = [attrs, ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self._row.append((self._cell[0], self._cell[1].strip()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1][self._part].append(self._row)
            self._row = None

    def table(self, css):
        (found,) = [t for t in self.tables if t["class"] == css]
        return found


def amount(text):
    return Decimal(text.replace(",", "")) if text else Decimal(0)


def class_rows(page):
    """The class table's rows as (label, [(sign, amount) per column], bottom line shown)."""
    table = Tables(page).table("classes")
    (head,) = table["head"]
    signs = [attrs.get("data-sign") for attrs, _ in head]
    key = next(i for i, (attrs, _) in enumerate(head) if "data-key" in attrs)
    rows = []
    for row in table["body"] + table["foot"]:
        parts = [(signs[i], amount(text)) for i, (_, text) in enumerate(row) if signs[i] in ("+", "-")]
        rows.append((row[0][1], parts, amount(row[key][1])))
    return [attrs.get("title") for attrs, _ in head if attrs.get("data-sign")], rows


CASES = {
    "tiny": (TINY, TINY_ROWS),
    "standard": (STANDARD, None),
    "strict": (STRICT, None),
    "portfolio": (PORTFOLIO, None),
    "failed records": (STANDARD, BAD),
    "other": (OTHER, [{"id": "P", "revenue": "1000.00", "goods": "400.00"},
                      {"id": "Q", "revenue": "333.33", "goods": "500.00"}]),
}
COLUMNS = {
    "tiny": ["revenue", "costs", "credits"],
    "standard": ["revenue", "cost_of_goods", "costs", "credits"],
    "strict": ["revenue", "cost_of_goods", "costs"],  # no credits in the strict view: no credits column
    "portfolio": ["revenue", "cost_of_goods", "costs", "credits"],
    "failed records": ["revenue", "cost_of_goods", "costs", "credits"],
    "other": ["revenue", "costs", "other"],
}


def case_report(case):
    source, rows = CASES[case]
    if rows is None:
        rows = rows_of(PORTFOLIO_CSV if source == PORTFOLIO else CUSTOMERS)
    elif isinstance(rows, Path):
        rows = rows_of(rows)
    return report_of(source, rows)


# ---- 1. the columns add up to the bottom line --------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_every_class_row_and_the_total_add_up_to_the_bottom_line(case):
    report = case_report(case)
    assert [c.name or "other" for c in report.columns] == COLUMNS[case]
    # in the report's own numbers ...
    for totals in (*report.classes, report.total):
        assert sum((c.sign * v for c, v in zip(report.columns, totals.parts)), Decimal(0)) == totals.profit
    assert report.total.profit == report.total_profit
    # ... on the page, exactly as shown ...
    page = render_html(report)
    names, rows = class_rows(page)
    assert names == COLUMNS[case]
    assert len(rows) == len(report.classes) + 1
    for label_, parts, shown in rows:
        added = sum((value if sign == "+" else -value for sign, value in parts), Decimal(0))
        assert added == shown, (case, label_, parts, shown)
    assert rows[-1][2] == report.total_profit
    # ... and in the terminal summary, which shows the same columns
    text = render_text(report)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("class "))
    header = re.split(r"\s{2,}", lines[start].strip())
    assert header[2:] == [("" if i == 0 else f"{'+' if c.sign > 0 else '-'} ") + (c.name or "other")
                          for i, c in enumerate(report.columns)] + [f"= {report.key_figure}"]
    table = [line for line in lines[start + 1:start + len(rows) + 2] if not line.startswith("---")]
    assert len(table) == len(rows)
    for line, (_, parts, shown) in zip(table, rows):
        cells = re.split(r"\s{2,}", line.strip())
        assert [amount(cell) for cell in cells[2:]] == [value for _, value in parts] + [shown]
    assert f"Each row adds up: {equation(report, ascii_only=True)}." in text


def test_the_page_says_how_the_columns_add_up(standard, portfolio):
    page = render_html(standard)
    assert "Every row adds up: <span class=\"eq\">Revenue − Cost of goods − Costs + Credits = Profit</span>" in page
    assert '<code class="ident">revenue - cost_of_goods - costs + credits = profit</code>' in page
    assert "Costs are commission + acquisition + service + fulfilment + bad debt." in page
    assert "Credits are word of mouth." in page
    text = render_text(standard)
    assert "Each row adds up: revenue - cost_of_goods - costs + credits = profit." in text
    assert "  costs = commission + acquisition + service + fulfilment + bad_debt" in text
    assert "channel team + marketing + administration" in render_html(portfolio)
    # the cost of goods is no longer missing: revenue minus what is shown as cost is the profit plus credits
    total = standard.total
    revenue, goods, costs, credits = total.parts
    assert revenue - goods - costs + credits == standard.total_profit
    assert revenue - costs != standard.total_profit  # the old "cost" column alone was millions away


def test_strict_view_says_it_counts_no_credits():
    page = render_html(case_report("strict"))
    assert "This policy counts no credits (indirect benefits such as referrals)." in page
    assert 'id="credits"' not in page


def test_an_other_column_holds_what_is_not_a_sum_and_says_so():
    report = case_report("other")
    assert report.other_reason == "5% of revenue; 1.00 EUR"
    # P: 1000 - 400 - 50 + 1 = 551; Q: 333.33 - 500 - 16.6665 -> rounded per line, + 1
    p_row = report.classes[0]
    assert p_row.label == "profitable" and p_row.parts == (Decimal("1000.00"), Decimal("400.00"), Decimal("-49.00"))
    page = render_html(report)
    assert "<i>Other</i> is the part of profit that is not a plain sum of named figures" in page
    assert '<code class="ident">5% of revenue; 1.00 EUR</code>' in page
    assert "other = profit minus the named columns, per customer (5% of revenue; 1.00 EUR)" in render_text(report)


# ---- 2. failed records up front ----------------------------------------------------------


def cards(page):
    return dict(re.findall(r'<div class="card[^"]*"><div class="k">([^<]+)</div><div class="v">([^<]+)</div>', page))


def test_failed_records_are_counted_in_the_cards_and_warned_about():
    report = case_report("failed records")
    page = render_html(report)
    assert cards(page)["Records in"] == "9" and cards(page)["Decided"] == "3" and cards(page)["Failed"] == "6"
    assert '<div class="card bad"><div class="k">Failed</div>' in page
    warning = re.search(r'<div class="warning" role="alert">(.*?)</div>', page).group(1)
    assert "<b>6 of 9 records failed</b>" in warning
    assert "the whale curve cover only the 3 decided customers" in warning
    assert "the curve&#x27;s 100% is the profit of those 3, not of all 9" in warning
    assert page.index('class="warning"') < page.index('<div class="cards">') < page.index('id="whale"')
    assert "6 of 9 records could not be classified" in page  # and the failed records are still listed
    text = render_text(report)
    assert text.splitlines()[2].startswith("WARNING: 6 of 9 records failed and are left out of every figure")


def test_no_warning_when_every_record_is_decided(portfolio):
    page = render_html(portfolio)
    assert 'class="warning"' not in page and "WARNING" not in render_text(portfolio)
    assert cards(page)["Records in"] == "800" and cards(page)["Failed"] == "0"
    assert '<div class="card bad">' not in page


# ---- 3. customers by name ----------------------------------------------------------------


def test_customers_are_shown_by_name_beside_their_id(standard):
    names = {row["id"]: row["name"] for row in rows_of(CUSTOMERS)}
    assert standard.name_field == "name"
    top = standard.top[0]
    assert top.id == "C-1077" and top.name == names["C-1077"] == "Continental Building Products AG"
    page = render_html(standard)
    assert ('<td class="who"><span class="cname">Continental Building Products AG</span>'
            '<span class="id">C-1077</span></td>') in page
    assert "C-1077  Continental Building Products AG  " in render_text(standard)
    for customer in (*standard.top, *standard.bottom):
        assert customer.name == (names[customer.id] or None)


def test_an_empty_name_shows_the_id_alone_and_names_are_escaped():
    rows = [row for row in rows_of(CUSTOMERS) if row["id"] == "C-1066"]
    assert rows[0]["name"] == ""
    (customer,) = report_of(STANDARD, rows).top
    assert customer.name is None
    evil = dict(rows[0], id="C-1", name="<b>Evil</b> & Co")
    page = render_html(report_of(STANDARD, [evil]))
    assert "<b>Evil" not in page and "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in page
    page = render_html(report_of(STANDARD, rows))
    assert '<td class="who"><span class="id">C-1066</span></td>' in page


def test_the_name_rule_name_then_a_field_ending_in_name():
    named = TINY.replace("  revenue    money\n", "  customer_name text optional\n  revenue    money\n")
    report = report_of(named, [dict(TINY_ROWS[0], customer_name="Alpha AG")])
    assert report.name_field == "customer_name" and report.top[0].name == "Alpha AG"
    report = report_of(TINY, TINY_ROWS[:1])  # no name field at all
    assert report.name_field is None and report.top[0].name is None


# ---- 4. readable labels, identifiers kept ------------------------------------------------


def test_labels_are_readable_and_keep_the_identifier(portfolio):
    assert label("cost_of_goods") == "Cost of goods" and label("break-even") == "Break-even"
    assert pool_label("channel_team [direct]") == "Channel team, direct"
    assert pool_label("support_centre (capacity)") == "Support centre (capacity)"
    page = render_html(portfolio)
    assert '<td>Channel team, direct <code class="ident">channel_team [direct]</code></td>' in page
    assert '<td>Support centre (capacity) <code class="ident">support_centre (capacity)</code></td>' in page
    assert '<th class="n" data-sign="-" title="cost_of_goods">− Cost of goods (EUR)</th>' in page
    assert '<span title="fulfilment">Fulfilment</span>' in page or '<span title="commission">Commission</span>' in page
    assert '<td title="break-even">Break-even</td>' in page
    assert re.search(r"<t[dh][^>]*>\s*channel_team \[direct\]", page) is None  # never a raw identifier as a label
    assert "<th>By class</th>" not in page and "<h2>By class</h2>" in page


# ---- 5. the whale peak in words ----------------------------------------------------------


def test_the_whale_peak_is_explained_in_words():
    report = case_report("tiny")  # the top 3 of 5 earn 700.00, total 450.00: 155.6%
    meaning = ("A peak above 100% means that the most profitable 3 customers together earn more than the whole "
               "portfolio's profit (700.00 against 450.00 EUR); the other 2 customers give 250.00 EUR of it back, "
               "55.6% of the total.")
    assert peak_meaning(report) == meaning
    page = render_html(report)
    assert html.escape(meaning) in page
    assert "of total profit, earned by the top 60.0% of customers; the rest give part of it back" in page
    assert meaning in render_text(report)


def test_the_peak_in_words_when_nobody_loses_and_when_the_total_is_a_loss():
    everyone = report_of(TINY, TINY_ROWS[:2])
    assert peak_meaning(everyone) == ("No customer loses money, so nobody gives any of the profit back: the curve "
                                      "ends at its peak, 100% of the total.")
    loss = report_of(TINY, [{"id": "P", "revenue": "100.00", "goods": "0.00"},
                            {"id": "L", "revenue": "0.00", "goods": "300.00"}])
    assert peak_meaning(loss) == ("The most profitable 1 customer earn 100.00 EUR, and the other 1 customer lose "
                                  "300.00 EUR, more than that: the portfolio's profit is -200.00 EUR, so there is no "
                                  "percentage of it to give.")


# ---- 6. one list of referrers ------------------------------------------------------------


def test_referrers_are_listed_once_with_what_the_credits_change(portfolio):
    page = render_html(portfolio)
    assert "Referral leaders" not in page and "Most credited" not in page and 'id="referrals"' not in page
    section = page[page.index('<section id="credits"'):]
    section = section[:section.index("</section>")]
    shown = set(re.findall(r'<span class="id">([^<]+)</span>', section))
    assert shown == {c.id for c in portfolio.credit_leaders}
    listed_elsewhere = {c.id for c in (*portfolio.top, *portfolio.bottom)}
    for leader in portfolio.referral_leaders:
        expected = 1 + (leader.id in listed_elsewhere)
        assert page.count(f'<span class="id">{leader.id}</span>') == expected, leader.id
    referred = {c.id: c.referred for c in portfolio.credit_leaders}
    assert referred["C-1059"] == 9 and referred["C-1589"] == 18
    table = Tables(page).table("credits")
    assert [text for _, text in table["head"][0]] == [
        "Customer", "Credits (EUR)", "Profit (EUR)", "Profit without credits (EUR)", "Customers referred", "Class"]
    for row in table["body"]:
        credits, profit, without = (amount(text) for _, text in row[1:4])
        assert profit - credits == without
    assert "4 of these 10 would make a loss without their credits" in section
    text = render_text(portfolio)  # one list there too, the same figures
    assert text.count("Referral leaders") == 1 and "Credits, indirect benefits" not in text
    assert ("Referral leaders and credits (EUR): customers referred directly, credits, profit, "
            "profit without credits") in text
    assert "  C-1059: 9, 50,000.00, 52,158.65, 2,158.65  Silver Systems KG" in text


# ---- 7. and 8. the page on a phone and on paper (Chromium checks them in test_report.py) ---


def css_of(page):
    return re.search(r"<style>(.*?)</style>", page, re.S).group(1)


def test_every_table_scrolls_in_its_own_box_and_the_cards_wrap(portfolio):
    page = render_html(portfolio)
    assert page.count("<table") == page.count('<div class="scroll"><table')
    css = css_of(page)
    assert ".scroll { max-width: 100%; overflow-x: auto;" in css
    assert "@media (max-width: 600px)" in css and "grid-template-columns: repeat(2, minmax(0, 1fr))" in css


def test_print_css_keeps_ids_whole_notes_with_tables_and_numbers_pages(portfolio):
    page = render_html(portfolio)
    css = css_of(page)
    assert "break-all" not in css
    assert re.search(r"\.id \{[^}]*white-space: nowrap", css)
    assert re.search(r"\.note, figcaption \{ break-before: avoid;", css)
    assert re.search(r'@bottom-right \{ content: "Page " counter\(page\) " of " counter\(pages\);', css)
    assert "size: A4" in css
    # the note under the deciles table is kept with it
    assert re.search(r'<div class="keep"><div class="scroll"><table class="deciles">.*?</table></div>'
                     r'<p class="note">273 customers lose money', page, re.S)


def test_the_running_title_is_escaped_for_css():
    report = report_of(TINY.replace('policy "Tiny"', 'policy "A </style><b>x & y"'), TINY_ROWS[:1])
    page = render_html(report)
    assert page.count("</style>") == 1 and "<b>x" not in page
    assert ('@bottom-left { content: "A \\00003c \\00002f style\\00003e \\00003c b\\00003e x \\000026  y '
            '\\0000b7  version 1";') in page


# ---- the same input, the same page ---------------------------------------------------------


def test_the_page_and_the_summary_are_byte_for_byte_reproducible():
    first, second = case_report("portfolio"), case_report("portfolio")
    assert render_html(first) == render_html(second)
    assert render_text(first) == render_text(second)

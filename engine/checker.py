"""AST → checked policy: names resolved, units checked, evaluation order fixed.

The checker reports every problem in the file at once. What it returns is all the
compiler needs: fields with their parsed defaults, figures in dependency order
with their units, and the classifications.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set

import attrs

from . import ast
from .currencies import ISO_4217
from .diagnostics import WARNING, Diagnostic, PolicyError, did_you_mean
from .checked import (
    DEFAULT_ROUNDING, ROUNDING_MODES, ROUNDING_SCOPES, ROUNDING_UNITS, AllocationSpec, CheckedClassification,
    CheckedPolicy, CheckedWarning, FieldSpec, Figure, PoolSpec, PortfolioSpec, ReferralSpec, RoundingRule,
)
from .formatter import format_expr
from .functions import FUNCTIONS, ArgumentError
from .history import DEFAULTS as HISTORY_DEFAULTS, PHRASES as HISTORY_PHRASES, HistorySpec
from .parser import collector_paused
from .units import FIELD_TYPES, LITERAL, MONEY, NUMBER, PERCENT, PERIOD_TYPES, TEXT, YES_NO, Unit, UnitError, field_unit, rate_word
from . import units

TOTALS = {"costs": "cost", "credits": "credit"}
KINDS_IN_ORDER = ("rate", "cost", "credit", "measure", "threshold")
MAX_NAMES = 2000
# Names compared, in all, to find the did-you-mean hints of one check: enough for every typo
# of a real policy; a hostile one with 30,000 unknown names gets the plain help past that
# (difflib over 2,000 names for each took a minute).
HINT_BUDGET = 50_000


def check(policy: ast.Policy) -> CheckedPolicy:
    """Check a parsed policy; raise PolicyError with every error (and warning) found.

    The checked policy holds the policy's expressions numbered (by the parser, or by
    `ast.numbered` for a policy built in code), with the unit of every node."""
    with collector_paused():  # a large policy makes many objects and no garbage: see engine/parser.py
        numbered, count = (policy, policy.nodes) if policy.nodes else ast.numbered(policy)
        return _Checker(numbered, count).run()


class _Checker(ast.Visitor[Unit]):
    """Checks one policy; `visit_<Node>` gives an expression node's unit (or raises _Unknown)."""

    def __init__(self, policy: ast.Policy, nodes: int) -> None:
        self.policy = policy
        self.nodes = nodes  # numbered so far; a node the checker makes gets the next number
        self.node_units: Dict[int, Unit] = {}
        self.diagnostics: List[Diagnostic] = []
        self.units: Dict[str, Optional[Unit]] = {}
        self.kinds: Dict[str, str] = {}  # name → field/rate/cost/.../total/classification
        self.spans: Dict[str, ast.Span] = {}
        self.currency = "EUR"
        self.allocations: List[PortfolioSpec] = []
        self.tables: Dict[str, Dict[str, Decimal]] = {}
        self.pools: List[PoolSpec] = []
        self.reach: Dict[str, frozenset] = {}
        self.pool_units: Dict[str, Unit] = {}
        self.class_labels: Dict[str, Set[str]] = {}
        self.checking_rules = False  # figures report a classification use themselves
        self.hint_budget = HINT_BUDGET
        self.period_field: Optional[FieldSpec] = None  # the field that makes each record one period of a history

    def report(self, code: str, message: str, span: ast.Span, help_text: Optional[str] = None,
               severity: str = "error") -> None:
        self.diagnostics.append(Diagnostic(code, message, span, help_text, severity, self.policy.filename))

    def hint(self, word: str, candidates: Callable[[], Iterable[str]], otherwise: str) -> str:
        """`_hint` over `candidates()`, while the check's HINT_BUDGET lasts; else `otherwise`."""
        if self.hint_budget <= 0:
            return otherwise
        names = list(candidates())
        self.hint_budget -= len(names)
        return _hint(word, names, otherwise)

    def currency_hint(self, code: str, otherwise: str) -> str:
        """`_currency_hint`, while the check's HINT_BUDGET lasts; else `otherwise`."""
        if self.hint_budget <= 0:
            return otherwise
        self.hint_budget -= len(ISO_4217)
        return _currency_hint(code, otherwise)

    # ---- the whole policy ------------------------------------------------------

    def run(self) -> CheckedPolicy:
        statements = self.policy.statements
        headers = self.headers([s for s in statements if isinstance(s, (ast.Header, ast.Rounding))])
        records = [s for s in statements if isinstance(s, ast.Record)]
        fields, key, record_name = self.record(records)
        history = self.history([s for s in statements if isinstance(s, ast.History)])
        definitions = [d for s in statements if isinstance(s, ast.Constants) for d in s.items]
        definitions += [self.pool(s) for s in statements if isinstance(s, ast.Pool)]
        definitions += [s for s in statements if isinstance(s, ast.Definition)]
        for table in (s for s in statements if isinstance(s, ast.Table)):
            self.table(table)
        classifications = [s for s in statements if isinstance(s, ast.Classification)]
        self.declare(definitions, classifications)
        figures = self.figures(definitions, headers["rounding"])
        checked_classes = self.classifications(classifications)
        warning_rules = self.warning_rules([s for s in statements if isinstance(s, ast.WarningRule)],
                                           {c.name for c in classifications})
        if history is not None and self.allocations:
            self.report("history-portfolio", "a history policy cannot share out pooled costs (`allocate`) or credit "
                        "word of mouth (`referred`)",
                        self.allocations[0].span, "decide histories with a policy of per-customer figures; "
                        "share pools in a policy of single periods")
        bottom_line = self.bottom_line(figures)
        errors = [d for d in self.diagnostics if d.is_error]
        if errors:
            raise PolicyError(self.diagnostics, self.policy.source)
        return CheckedPolicy(
            name=headers["policy"], version=headers.get("version"), currency=self.currency,
            rounding=headers["rounding"], record_name=record_name, key=key, fields=tuple(fields),
            figures=tuple(figures), classifications=tuple(checked_classes),
            warnings=tuple(self.diagnostics), allocations=tuple(self.allocations), tables=self.tables,
            pools=tuple(self.pools), depends=self.reach,
            node_units=tuple(self.node_units.get(n) for n in range(self.nodes)),
            bottom_line=bottom_line, filename=self.policy.filename, source=self.policy.source,
            history=history, warning_rules=tuple(warning_rules))

    def headers(self, statements: Sequence) -> dict:
        found: Dict[str, object] = {}
        first = ast.Span(1, 1, 1, 2)
        for statement in statements:
            key = statement.key if isinstance(statement, ast.Header) else "rounding"
            if key in found:
                self.report("duplicate-header", f"'{key}' is given twice", statement.span,
                            "keep one")
                continue
            if isinstance(statement, ast.Rounding):
                found[key] = self.rounding(statement)
            else:
                found[key] = statement.value
                if key == "currency":
                    self.check_currency(statement.value, statement.span)
                    self.currency = statement.value
        for key, example in (("policy", 'policy "Standard customer profitability"'), ("currency", "currency EUR")):
            if key not in found:
                self.report("missing-header", f"the policy has no '{key}' line", first,
                            f"add `{example}` at the top")
                found[key] = ""
        found.setdefault("rounding", DEFAULT_ROUNDING)
        return found

    def check_currency(self, code: str, span: ast.Span) -> None:
        if code not in ISO_4217:
            self.report("unknown-currency", f"unknown currency '{code}'", span,
                        self.currency_hint(code, "use an ISO 4217 code such as EUR, USD or GBP"))

    def rounding(self, statement: ast.Rounding) -> RoundingRule:
        ok = True
        for value, allowed, what in (
            (statement.mode, ROUNDING_MODES, "rounding mode"),
            (statement.unit, ROUNDING_UNITS, "rounding unit"),
            (statement.scope, ROUNDING_SCOPES, "rounding scope"),
        ):
            if value not in allowed:
                ok = False
                self.report("bad-rounding", f"unknown {what} '{value}'", statement.span,
                            self.hint(value, lambda: allowed, "choose one of " + ", ".join(allowed)))
        if not ok:
            return DEFAULT_ROUNDING
        return RoundingRule(statement.mode, statement.unit, statement.scope)

    # ---- the record ----------------------------------------------------------------

    def record(self, records: Sequence[ast.Record]):
        if not records:
            self.report("missing-record", "the policy has no record section", ast.Span(1, 1, 1, 2),
                        "add `record customer` followed by one line per input field, e.g. `revenue money`")
            return [], "id", "customer"
        for extra in records[1:]:
            self.report("duplicate-record", "a policy has one record section", extra.span,
                        "merge the fields into the first record section")
        record = records[0]
        specs: List[FieldSpec] = []
        keys = []
        for field in record.fields:
            if not self.declare_name(field.name, "field", field.span):
                continue
            kind = field.type
            if kind not in FIELD_TYPES:
                self.report("unknown-type", f"unknown field type '{kind}'", field.span,
                            self.hint(kind, lambda: FIELD_TYPES, "use one of " + ", ".join(FIELD_TYPES)))
                kind = "number"
            self.units[field.name] = field_unit(kind)
            if field.key:
                keys.append(field)
                if field.optional or field.default is not None:
                    self.report("optional-key", f"the key field '{field.name}' cannot be optional or have a default",
                                field.span, "every record must carry its own key")
            if field.optional and field.default is not None:
                self.report("optional-default", f"field '{field.name}' is both optional and has a default",
                            field.span, "a field with a default is never missing; drop `optional`")
            default = self.default_value(field, kind) if kind not in PERIOD_TYPES else None  # see `period`
            specs.append(FieldSpec(field.name, kind, field.optional, default, field.column or field.name,
                                   field.description, field.span))
            if kind in PERIOD_TYPES:
                self.period(specs[-1], field)
        if not keys:
            named_id = [f for f in record.fields if f.name == "id"]
            if named_id:
                keys = named_id
            else:
                self.report("missing-key", "the record has no key field", record.span,
                            "mark the field that identifies a customer with `key`, e.g. `id text key`")
        elif len(keys) > 1:
            self.report("duplicate-key", "only one field can be the key", keys[1].span,
                        f"'{keys[0].name}' is already the key")
        key = keys[0].name if keys else "id"
        return specs, key, record.name

    def period(self, spec: FieldSpec, field: ast.Field) -> None:
        """A field of type month, quarter or year: each record is one period of a history."""
        if self.period_field is not None:
            self.report("duplicate-period", f"'{self.period_field.name}' is already the period of each record",
                        field.span, "a history has one period field; make this one text")
            return
        if field.optional or field.default is not None:
            self.report("optional-period", f"the period field '{field.name}' cannot be optional or have a default",
                        field.span, "every record of a history names its own period")
        self.period_field = spec

    def history(self, blocks: Sequence[ast.History]) -> Optional[HistorySpec]:
        """The `history` block's settings over the defaults; a policy has a history when its
        record has a period field."""
        for extra in blocks[1:]:
            self.report("duplicate-history", "a policy has one `history` block", extra.span,
                        "merge its lines into the first one")
        settings = dict(HISTORY_DEFAULTS)
        given: Dict[str, ast.HistoryOption] = {}
        for option in blocks[0].options if blocks else ():
            found = HISTORY_PHRASES.get(option.words)
            if found is None:
                said = " ".join(option.words)
                phrases = [" ".join(words) for words in HISTORY_PHRASES]
                alike = [p for words, p in zip(HISTORY_PHRASES, phrases) if option.words[:1] == words[:1]]
                self.report("history-option", f"a history line '{said}' is not one the engine knows", option.span,
                            "write " + " or ".join(f"`{p}`" for p in alike) if alike else
                            self.hint(said, lambda: phrases, "write one of: " + "; ".join(phrases)))
                continue
            setting, value = found
            if setting in given:
                first = given[setting]
                self.report("duplicate-option", f"'{' '.join(option.words)}' repeats the setting of "
                            f"'{' '.join(first.words)}' on line {first.span.line}", option.span, "keep one")
            given[setting] = option
            settings[setting] = value
        if self.period_field is None:
            if blocks:
                self.report("history-without-period", "the policy has a `history` block, but no record field is a period",
                            blocks[0].span, "declare the period of each record, e.g. `period quarter`")
            return None
        return HistorySpec(self.period_field.name, self.period_field.kind, str(settings["missing"]),
                           bool(settings["sorted"]), bool(settings["every"]))

    def default_value(self, field: ast.Field, kind: str):
        literal = field.default
        if literal is None:
            return None
        expected = {
            "money": ast.Money, "percent": ast.Percent, "text": ast.Text, "yes/no": ast.YesNo,
        }.get(kind, ast.Number)
        if isinstance(literal, ast.Number) and kind == "money" and literal.value == 0:
            return Decimal(0)  # `default 0` for money needs no currency
        if not isinstance(literal, expected) or kind == "date":
            self.report("bad-default", f"the default of '{field.name}' does not fit its type {kind}",
                        literal.span, {
                            "money": f"write an amount such as `0 {self.currency}` or `0`",
                            "percent": "write a percentage such as `5%`",
                            "text": 'write text in double quotes',
                            "yes/no": "write `yes` or `no`",
                            "date": "dates have no default; make the field `optional`",
                        }.get(kind, "write a number"))
            return None
        if isinstance(literal, ast.Money):
            self.check_money_currency(literal)
            return literal.amount
        if isinstance(literal, ast.Percent):
            return literal.value / 100
        assert isinstance(literal, (ast.Number, ast.Text, ast.YesNo))  # the literal fits the type, as checked above
        if kind == "count" and isinstance(literal, ast.Number) and (literal.value != literal.value.to_integral_value() or literal.value < 0):
            self.report("bad-default", f"the default of count field '{field.name}' must be a whole number, 0 or more",
                        literal.span, "write e.g. `default 0`")
        return literal.value

    # ---- names ---------------------------------------------------------------------

    def declare_name(self, name: str, kind: str, span: ast.Span) -> bool:
        if name in self.kinds or name in TOTALS:
            first = self.spans.get(name)
            if first is not None and (first.line, first.column) > (span.line, span.column):
                first, span = span, first  # blame whichever comes second in the file
            where = f" (first defined on line {first.line})" if first else " (it is the total of all " + name + ")"
            self.report("duplicate-name", f"'{name}' is already defined{where}", span,
                        "give each field, rate and figure its own name")
            return False
        if len(self.kinds) >= MAX_NAMES:
            self.report("too-many-names", f"a policy may define at most {MAX_NAMES} names", span,
                        "split the policy")
            return False
        self.kinds[name] = kind
        self.spans[name] = span
        return True

    def declare(self, definitions: Sequence[ast.Definition], classifications: Sequence[ast.Classification]) -> None:
        for definition in definitions:
            self.declare_name(definition.name, definition.kind, definition.span)
        for classification in classifications:
            self.declare_name(classification.name, "classification", classification.span)

    # ---- pools and tables ----------------------------------------------------------------

    def pool(self, pool: ast.Pool) -> ast.Definition:
        """A capacity pool becomes a rate (amount / volume); the pool itself is kept for the report."""
        amount = pool.amount.amount if isinstance(pool.amount, ast.Money) else None
        volume = pool.volume.value if isinstance(pool.volume, ast.Number) else None
        if isinstance(pool.amount, ast.Money):
            self.check_money_currency(pool.amount)
        else:
            self.report("pool-amount", "a pool's amount must be written as money, e.g. `560,000 EUR`",
                        pool.amount.span, "write the amount with its currency")
        if volume is None or volume <= 0:
            self.report("pool-volume", "a pool's practical volume must be a number above zero", pool.volume.span,
                        "write e.g. `over 700,000 minutes`")
        if amount is not None and volume is not None and volume > 0:
            self.pools.append(PoolSpec(pool.name, amount, volume, pool.unit, pool.span))
        self.pool_units[pool.name] = Unit("money", per=rate_word(pool.unit))
        rate = ast.Binary("/", pool.amount, pool.volume, span=pool.span, nid=self.nodes)
        self.nodes += 1
        self.node_units[rate.nid] = self.pool_units[pool.name]
        for part, unit in ((pool.amount, MONEY), (pool.volume, LITERAL)):
            self.node_units[part.nid] = unit
        return ast.Definition("pool", pool.name, rate, span=pool.span)

    def table(self, table: ast.Table) -> None:
        if not self.declare_name(table.name, "table", table.span):
            return
        rows: Dict[str, Decimal] = {}
        for group, amount in table.rows:
            if group in rows:
                self.report("duplicate-group", f"the group \"{group}\" appears twice in table '{table.name}'",
                            amount.span, "keep one line per group")
            if isinstance(amount, ast.Money):
                self.check_money_currency(amount)
                rows[group] = amount.amount
            else:
                self.report("table-amount", "each line of a table is an amount of money, e.g. `\"north\" = 120,000 EUR`",
                            amount.span, "write the amount with its currency")
        self.tables[table.name] = rows

    # ---- figures ---------------------------------------------------------------------

    def figures(self, definitions: Sequence[ast.Definition], rounding: RoundingRule) -> List[Figure]:
        by_name = {d.name: d for d in definitions if self.spans.get(d.name) is d.span}
        for total in TOTALS:
            self.units[total] = MONEY
        depends: Dict[str, List[str]] = {}
        for name, definition in by_name.items():
            refs = []
            for ref in names_in(definition.expr):
                if ref.name in TOTALS:
                    refs.append(ref.name)
                    if definition.kind in ("rate", "pool"):
                        self.report("rate-uses-record", f"the rate '{definition.name}' uses '{ref.name}', "
                                    "which differs for each record", ref.span,
                                    "rates are fixed for the whole policy; make this a measure instead")
                elif ref.name in by_name or self.kinds.get(ref.name) == "field":
                    refs.append(ref.name)
                    if definition.kind in ("rate", "pool") and self.kinds.get(ref.name) not in ("rate", "pool"):
                        self.report("rate-uses-record", f"the rate '{definition.name}' uses '{ref.name}', "
                                    f"which is {'a record field' if self.kinds[ref.name] == 'field' else 'a ' + self.kinds[ref.name]}",
                                    ref.span, "rates are fixed for the whole policy; make this a measure instead")
                elif self.kinds.get(ref.name) == "classification":
                    self.report("class-in-figure", f"'{ref.name}' is a classification, which is decided after all figures",
                                ref.span, "figures cannot depend on a classification; test it in a later `classify` rule")
            depends[name] = [r for r in refs if self.kinds.get(r) != "field"]
        for total, kind in TOTALS.items():
            depends[total] = [n for n, d in by_name.items() if d.kind == kind]
        order = self.evaluation_order(depends, by_name)

        figures = []
        for name in order:
            if name in TOTALS:
                self.reach[name] = frozenset(depends[name]).union(*(self.reach.get(d, ()) for d in depends[name]))
                figures.append(Figure("total", name, None, MONEY, True, ast.NOWHERE, tuple(depends[name])))
                continue
            definition = by_name[name]
            self.reach[name] = frozenset(depends[name]).union(*(self.reach.get(d, ()) for d in depends[name]))
            unit = self.pool_units.get(name) or self.infer(definition.expr)
            if isinstance(definition.expr, (ast.Allocate, ast.Referral)):
                self.allocation(definition)
            if unit is not None and unit.literal and definition.kind != "rate":
                unit = attrs.evolve(unit, literal=False)  # a named limit (`max_days = 90`) adapts like a written 90
            self.units[name] = unit
            if unit is not None and definition.kind in ("cost", "credit") and unit != MONEY:
                self.report("not-money", f"the {definition.kind} '{name}' is {unit.describe()}, not money",
                            definition.expr.span,
                            "multiply a count by a rate (`visits * visit_rate`) or take a share of money (`5% of revenue`)")
            rounded = unit == MONEY and definition.kind not in ("rate", "pool") and (
                rounding.per_line or definition.kind in ("measure", "threshold"))
            figures.append(Figure(definition.kind, name, definition.expr, unit or NUMBER, rounded, definition.span))
        return figures

    def allocation(self, definition: ast.Definition) -> None:
        allocate = definition.expr
        assert isinstance(allocate, (ast.Allocate, ast.Referral))
        uses = {ref.name for ref in names_in(definition.expr)}
        used = uses.union(*(self.reach.get(n, ()) for n in uses))
        earlier = [a.stage for a in self.allocations if a.name in used]
        if isinstance(allocate, ast.Referral):
            cap = allocate.cap.amount if isinstance(allocate.cap, ast.Money) else None
            self.allocations.append(ReferralSpec(
                definition.name, 1 + max(earlier, default=0), allocate.value, allocate.via, allocate.levels,
                allocate.decay, cap, allocate.anyway_flag, allocate.anyway, allocate.strict, definition.span))
            return
        table = allocate.pool.name if isinstance(allocate.pool, ast.Name) and allocate.pool.name in self.tables else None
        pool = allocate.pool.amount if isinstance(allocate.pool, ast.Money) else None
        if table is None and pool is None and isinstance(allocate.pool, ast.Name) and \
                self.kinds.get(allocate.pool.name) == "rate":
            pool = _constant_money(self.policy, allocate.pool.name)
        self.allocations.append(AllocationSpec(
            definition.name, 1 + max(earlier, default=0), pool, table, allocate.driver, allocate.within,
            allocate.fallback_equal, definition.span))

    def evaluation_order(self, depends: Dict[str, List[str]], by_name: Dict[str, ast.Definition]) -> List[str]:
        """Declaration order, except that a figure comes after everything it uses."""
        order: List[str] = []
        placed: Set[str] = set()
        visiting: Set[str] = set()
        reported: Set[str] = set()
        names = list(by_name)
        for start in names + list(TOTALS):
            if start in placed:
                continue
            stack = [(start, iter(depends.get(start, ())))]
            visiting.add(start)
            while stack:
                name, pending = stack[-1]
                for dep in pending:
                    if dep in placed or dep not in depends:
                        continue
                    if dep in visiting:
                        cycle = [n for n, _ in stack][[n for n, _ in stack].index(dep):] + [dep]
                        self.report_cycle(cycle, by_name, reported)
                        continue
                    visiting.add(dep)
                    stack.append((dep, iter(depends.get(dep, ()))))
                    break
                else:
                    stack.pop()
                    visiting.discard(name)
                    placed.add(name)
                    order.append(name)
        return order

    def report_cycle(self, cycle: List[str], by_name: Dict[str, ast.Definition], reported: Set[str]) -> None:
        if reported & set(cycle):
            return
        reported.update(cycle)
        start = next((n for n in cycle if n in by_name), cycle[0])
        path = " → ".join(cycle)
        span = by_name[start].span if start in by_name else ast.NOWHERE
        self.report("cycle", f"'{start}' depends on itself: {path}", span,
                    "a figure cannot use itself, directly or through other figures"
                    + (" (`costs` is the total of all costs, so no cost may use it)" if "costs" in cycle else "")
                    + (" (`credits` is the total of all credits, so no credit may use it)" if "credits" in cycle else "")
                    + "".join(f" (the driver of the allocation '{n}' cannot depend on '{n}' itself)"
                              for n in dict.fromkeys(cycle) if n in by_name and isinstance(by_name[n].expr, ast.Allocate))
                    + "".join(f" (what a referred customer brings to '{n}' cannot depend on '{n}'; "
                              f"use a figure before credits, such as direct profit)"
                              for n in dict.fromkeys(cycle) if n in by_name and isinstance(by_name[n].expr, ast.Referral)))
        for name in cycle:
            self.units.setdefault(name, None)

    def unknown_name(self, ref: ast.Name) -> None:
        self.report("unknown-name", f"unknown name '{ref.name}'", ref.span,
                    self.hint(ref.name, lambda: [*self.kinds, *TOTALS], "define it as a record field, a rate or a figure"))

    # ---- expressions -----------------------------------------------------------------

    def infer(self, expr: ast.Expr, classes: Optional[Set[str]] = None) -> Optional[Unit]:
        """The unit of an expression, or None when an error (already reported) hides it."""
        try:
            return self._infer(expr, classes or set())
        except _Unknown:
            return None

    def _unit_error(self, error: UnitError, span: ast.Span) -> "_Unknown":
        self.report("unit", error.message, span, error.help)
        return _Unknown()

    def _all(self, nodes, classes: Set[str]) -> List[Unit]:
        """Units of several sub-expressions, reporting the problems of each before giving up."""
        found, unknown = [], False
        for node in nodes:
            try:
                found.append(self._infer(node, classes))
            except _Unknown:
                unknown = True
        if unknown:
            raise _Unknown()
        return found

    def _infer(self, expr, classes: Set[str]) -> Unit:
        unit = self.visit(expr, classes)
        self.node_units[expr.nid] = unit
        return unit

    def visit_Number(self, expr, classes):
        return LITERAL

    def visit_Percent(self, expr, classes):
        return PERCENT

    def check_money_currency(self, money: ast.Money) -> None:
        if money.currency != self.currency:
            if money.currency not in ISO_4217:
                self.report("unknown-currency", f"unknown currency '{money.currency}'", money.span,
                            self.currency_hint(money.currency, f"this policy is in {self.currency}"))
            else:
                self.report("currency", f"this amount is in {money.currency}, but the policy is in {self.currency}",
                            money.span, f"write amounts in {self.currency}; the engine does not convert currencies")

    def visit_Money(self, expr, classes):
        self.check_money_currency(expr)
        return MONEY

    def visit_Rate(self, expr, classes):
        base = self._infer(expr.quantity, classes)
        return Unit("number" if base.literal else base.kind, per=rate_word(expr.per))

    def visit_Text(self, expr, classes):
        return TEXT

    def visit_YesNo(self, expr, classes):
        return YES_NO

    def visit_Name(self, expr, classes):
        if expr.name in classes:
            return TEXT
        if self.kinds.get(expr.name) == "table":
            self.report("table-use", f"'{expr.name}' is a table of pools; it can only be shared out with `allocate`",
                        expr.span, f"write `allocate {expr.name} by DRIVER within FIELD`")
            raise _Unknown()
        if expr.name not in self.units:
            kind = self.kinds.get(expr.name)
            if kind == "classification" and self.checking_rules:
                self.report("class-order", f"the classification '{expr.name}' is not decided yet here",
                            expr.span, "a rule can only test classifications that come before it in the file")
            elif kind is None and expr.name not in TOTALS:
                self.unknown_name(expr)
            raise _Unknown()
        unit = self.units[expr.name]
        if unit is None:
            raise _Unknown()
        return unit

    def visit_Allocate(self, expr, classes):
        pool = expr.pool
        self.node_units[pool.nid] = MONEY  # an amount, a rate holding one, or a table of them
        if isinstance(pool, ast.Name) and self.kinds.get(pool.name) == "table":
            if expr.within is None:
                self.report("table-needs-within", f"the table '{pool.name}' holds a pool per group, but no groups are given",
                            expr.span, f"add `within FIELD`, e.g. `allocate {pool.name} by revenue within region`")
        elif isinstance(pool, ast.Money):
            self.check_money_currency(pool)
        elif not (isinstance(pool, ast.Name) and self.kinds.get(pool.name) == "rate"
                  and _constant_money(self.policy, pool.name) is not None):
            self.report("pool-amount", "the pool of an allocation is an amount, a rate holding one, or a table",
                        pool.span, "write e.g. `allocate 180,000 EUR by support_calls`")
        if expr.within is not None and (self.kinds.get(expr.within) != "field" or self.units.get(expr.within) != TEXT):
            self.report("bad-group", f"'{expr.within}' is not a text field of the record", expr.span,
                        self.hint(expr.within, lambda: [n for n, k in self.kinds.items() if k == "field"
                                                        and n != expr.within and self.units.get(n) == TEXT],
                                  "groups come from a text field such as `region`"))
        if expr.driver is not None:
            driver = self.infer(expr.driver, classes)
            if driver is not None and not driver.is_numeric:
                self.report("bad-driver", f"a driver must be a number, but this is {driver.describe()}",
                            expr.driver.span, "share by a count, hours, money or another figure")
        return MONEY

    def visit_Referral(self, expr, classes):
        for node in (expr.value, expr.anyway):
            if node is not None:
                unit = self.infer(node, classes)
                if unit is not None and unit != MONEY:
                    self.report("not-money", f"what a referred customer brings must be money, not {unit.describe()}",
                                node.span, "write e.g. `referred 10% of revenue via referred_by`")
        for name, kind, example in ((expr.via, "text", "referred_by text optional"),
                                    (expr.anyway_flag, "yes/no", "came_anyway yes/no default no")):
            if name is not None and (self.kinds.get(name) != "field" or self.units.get(name) != Unit(kind)):
                self.report("bad-referral-field", f"'{name}' is not a {kind} field of the record", expr.span,
                            self.hint(name, lambda: [n for n, k in self.kinds.items() if k == "field"],
                                      f"declare it, e.g. `{example}`"))
        if not 1 <= expr.levels <= 5:
            self.report("referral-levels", "a referral credit counts 1 to 5 levels", expr.span,
                        "write e.g. `levels 2`")
        if not 0 <= expr.decay <= 100:
            self.report("referral-decay", "the decay per level is a percentage from 0% to 100%", expr.span,
                        "write e.g. `decay 50%`: each level counts half the one before")
        if expr.cap is not None and not isinstance(expr.cap, ast.Money):
            self.report("referral-cap", "the cap is an amount of money", expr.cap.span, "write e.g. `cap 20,000 EUR`")
        elif expr.cap is not None:
            self.check_money_currency(expr.cap)
            self.node_units[expr.cap.nid] = MONEY
        return MONEY

    def visit_Call(self, expr, classes):
        function = FUNCTIONS.get(expr.function)
        if function is None:
            self.report("unknown-function", f"unknown function '{expr.function}'", expr.span,
                        self.hint(expr.function, lambda: FUNCTIONS, "the functions are " + ", ".join(FUNCTIONS)))
            raise _Unknown()
        if not function.low <= len(expr.args) <= function.high:
            expected = function.arity()
            help_text = f"{expr.function} takes {expected} value{'s' * (expected != '1')}"
            if len(expr.args) == 1 and isinstance(expr.args[0], ast.Number) and "," in _text_at(self.policy.source, expr.args[0].span):
                help_text += "; a comma between digits is a thousands separator, so write `, ` with a space between values"
            self.report("arity", f"{expr.function}() got {len(expr.args)} value{'s' * (len(expr.args) != 1)}",
                        expr.span, help_text)
            raise _Unknown()
        if function.history and self.period_field is None:
            self.report("no-history", f"{expr.function}() reads earlier periods, but a record of this policy is "
                        "a single period", expr.span,
                        "give the record a period field, e.g. `period quarter`, and one row per customer and period")
            raise _Unknown()
        arg_units = self._all(expr.args, classes)
        try:
            return function.unit(expr.args, arg_units)
        except ArgumentError as error:
            self.report(error.code, error.message, expr.args[error.index].span, error.help or None)
            raise _Unknown() from None

    def visit_Negate(self, expr, classes):
        return _require(self._infer(expr.operand, classes), self, expr.span)

    def visit_Binary(self, expr, classes):
        left, right = self._all((expr.left, expr.right), classes)
        if expr.op in "+-":
            self.check_percent_literal(expr, left, right)
        if expr.op == "of" and isinstance(expr.left, ast.Number):
            value = expr.left.value
            self.report("of-needs-percent", f"`of` takes a percentage, not the number {value}",
                        expr.left.span, f"write `{value}%`" + (f", or `{format((value * 100).normalize(), 'f')}%` if {value} is a fraction"
                                                                 if value < 1 else ""))
            raise _Unknown()
        try:
            if expr.op in "+-":
                return units.add(left, right, expr.op)
            operation = {"*": units.multiply, "/": units.divide, "of": units.share_of}[expr.op]
            return operation(left, right)
        except UnitError as error:
            raise self._unit_error(error, expr.span)

    def visit_Compare(self, expr, classes):
        if expr.op == "==":
            self.report("double-equals", "`==` is not a comparison in this language", expr.span,
                        "write `=` to test equality")
        left, right = self._all((expr.left, expr.right), classes)
        self.check_label(expr)
        self.check_percent_literal(expr, left, right)
        try:
            return units.compare(left, right, expr.op)
        except UnitError as error:
            raise self._unit_error(error, expr.span)

    def visit_Between(self, expr, classes):
        value, *bounds = self._all((expr.value, expr.low, expr.high), classes)
        for bound, bound_unit in zip((expr.low, expr.high), bounds):
            try:
                units.compare(value, bound_unit, "<=")
            except UnitError as error:
                raise self._unit_error(error, bound.span)
        return YES_NO

    def visit_IsMissing(self, expr, classes):
        if not isinstance(expr.value, ast.Name) or self.kinds.get(expr.value.name) != "field":
            self.report("missing-test", "only a record field can be tested with `is missing`", expr.span,
                        "write e.g. `referred_by is missing`")
            raise _Unknown()
        self._infer(expr.value, classes)
        return YES_NO

    def visit_Logical(self, expr, classes):
        for side in (expr.left, expr.right):
            self.condition(side, classes, f"`{expr.op}`")
        return YES_NO

    def visit_Not(self, expr, classes):
        self.condition(expr.operand, classes, "`not`")
        return YES_NO

    def visit_Conditional(self, expr, classes):
        self.condition(expr.condition, classes, "`when`")
        then, otherwise = self._all((expr.then, expr.otherwise), classes)
        try:
            return units.unify_branches(then, otherwise)
        except UnitError as error:
            raise self._unit_error(error, expr.span)

    def check_percent_literal(self, expr, left_unit: Unit, right_unit: Unit) -> None:
        """`pct > 5` would mean 500%: a bare number next to a percentage must say which it means.
        The help leads with the reading that makes sense: 1 or 0.5 read as a whole is 100% or
        50% (`100% + markup`); a larger number is most likely meant as a percentage already."""
        for node, other in ((expr.left, right_unit), (expr.right, left_unit)):
            if isinstance(node, ast.Number) and node.value != 0 and other.kind == "percent" and not other.per:
                value = node.value
                readings = [(format((value * 100).normalize(), "f") + "%", f"{value} as a whole"),
                            (format(value.normalize(), "f") + "%", f"{value} percent")]
                if abs(value) > 1:
                    readings.reverse()
                shown = [(format_expr(expr, _replacing(node, text)), means) for text, means in readings]
                self.report("percent-literal", f"{value} next to a percentage is ambiguous", node.span,
                            f"write `{shown[0][0]}` ({shown[0][1]}), or `{shown[1][0]}` ({shown[1][1]})")

    def check_label(self, expr: ast.Compare) -> None:
        """`class = "profitible"` would silently never hold: check the text against the labels."""
        for name, text in ((expr.left, expr.right), (expr.right, expr.left)):
            if isinstance(name, ast.Name) and isinstance(text, ast.Text) and name.name in self.class_labels:
                labels = self.class_labels[name.name]
                if text.value not in labels:
                    self.report("unknown-label", f"'{name.name}' never gives the label \"{text.value}\"", text.span,
                                self.hint(text.value, lambda: labels, "its labels are " + ", ".join(sorted(labels))))

    def condition(self, expr: ast.Expr, classes: Set[str], where: str) -> None:
        unit = self.infer(expr, classes)
        if unit is not None and unit != YES_NO:
            self.report("not-a-condition", f"{where} needs a condition, but this is {unit.describe()}", expr.span,
                        "compare it with something, e.g. `profit > 0 EUR`")

    def bottom_line(self, figures: Sequence[Figure]) -> Optional[str]:
        """The money figure that ranks customers in reports: the one `rank by` names; without
        it the measure `profit` if it is money, else the last money measure; else none."""
        stated = [s for s in self.policy.statements if isinstance(s, ast.Header) and s.key == "rank"]
        # any figure or field a decision has, with its unit (a rate is the same for every customer)
        rankable = {f.name: f.unit for f in figures if f.kind not in ("rate", "pool")}
        rankable.update({name: unit for name, unit in self.units.items()
                         if self.kinds.get(name) == "field" and unit is not None})
        if stated:
            name, span = stated[0].value, stated[0].span
            unit = rankable.get(name)
            if unit is None:
                self.report("rank-unknown", f"'{name}' is not a figure or field of this policy", span,
                            self.hint(name, lambda: [n for n, u in rankable.items() if u == MONEY],
                                      "name a money measure, e.g. `rank by profit`"))
            elif unit != MONEY:
                self.report("rank-not-money", f"customers are ranked by money, but '{name}' is {unit.describe()}",
                            span, "name a money figure such as profit; a ratio cannot be added up over customers")
            return name
        money = [f.name for f in figures if f.kind == "measure" and f.unit == MONEY]
        return "profit" if "profit" in money else (money[-1] if money else None)

    # ---- classifications ---------------------------------------------------------------

    def classifications(self, classifications: Sequence[ast.Classification]) -> List[CheckedClassification]:
        decided: Set[str] = set()
        checked = []
        self.checking_rules = True
        for classification in classifications:
            rules = classification.rules
            otherwise = [i for i, r in enumerate(rules) if r.condition is None]
            if not otherwise:
                self.report("missing-otherwise", f"the classification '{classification.name}' has no `otherwise` rule",
                            rules[-1].span if rules else classification.span,
                            "end it with a catch-all rule, e.g. `unprofitable otherwise`")
            for index, rule in enumerate(rules):
                if rule.condition is not None:
                    self.condition(rule.condition, decided, "a rule")
                if otherwise and index > otherwise[0]:
                    self.report("unreachable", f"rule '{rule.label}' comes after `otherwise` and is never reached",
                                rule.span, "move it above the `otherwise` rule, or delete it")
            for index, rule in enumerate(rules[:-1]):
                if rule.condition is not None and _always_true(rule.condition):
                    self.report("unreachable", f"rule '{rule.label}' always holds, so the rules after it are never reached",
                                rule.span, "make its condition depend on the record, or write it as `otherwise`",
                                severity=WARNING)
                    break
            decided.add(classification.name)
            self.class_labels[classification.name] = {rule.label for rule in rules}
            checked.append(CheckedClassification(classification.name, rules, classification.span))
        if not classifications:
            self.report("missing-classify", "the policy has no classification", ast.Span(1, 1, 1, 2),
                        "add a `classify class` section with rules, ending with `otherwise`")
        return checked


    # ---- warnings --------------------------------------------------------------------

    def warning_rules(self, rules: Sequence[ast.WarningRule], classes: Set[str]) -> List[CheckedWarning]:
        """Checked as rules are: after every classification, so a warning may test any of them."""
        checked: List[CheckedWarning] = []
        first: Dict[str, ast.Span] = {}
        for rule in rules:
            if rule.name in first:
                self.report("duplicate-warning", f"the warning '{rule.name}' is already defined on line "
                            f"{first[rule.name].line}", rule.span, "give each warning its own name")
            first.setdefault(rule.name, rule.span)
            self.condition(rule.condition, classes, "a warning")
            if _never_true(rule.condition):
                self.report("never-fires", f"the warning '{rule.name}' can never fire: its condition never holds",
                            rule.condition.span, "make its condition depend on the record", severity=WARNING)
            elif _always_true(rule.condition):
                self.report("always-fires", f"the warning '{rule.name}' fires on every decision", rule.condition.span,
                            "make its condition depend on the record", severity=WARNING)
            if rule.message is None:
                self.report("missing-message", f"the warning '{rule.name}' has no message", rule.span,
                            'add what the analyst should read, e.g. `message "Profitable but declining"`')
            checked.append(CheckedWarning(rule.name, rule.condition, rule.message or "", rule.span))
        return checked


class _Unknown(Exception):
    """An error already reported makes this unit unknown; stop checking the expression."""


def _require(unit: Unit, checker: _Checker, span: ast.Span) -> Unit:
    if not unit.is_numeric:
        checker.report("unit", f"this needs a number, but it is {unit.describe()}", span, None)
        raise _Unknown()
    return unit


def _constant_money(policy: ast.Policy, name: str) -> Optional[Decimal]:
    """The amount of a rate written as plain money (`call_centre_pool = 180,000 EUR`)."""
    for statement in policy.statements:
        if isinstance(statement, ast.Constants):
            for item in statement.items:
                if item.name == name and isinstance(item.expr, ast.Money):
                    return item.expr.amount
    return None


_COMMON_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY", "CNY", "SEK", "NOK", "DKK", "PLN", "CAD", "AUD")


def _currency_hint(code: str, otherwise: str) -> str:
    """A likely currency: one letter off or two letters swapped, common currencies first."""
    def close(candidate: str) -> bool:
        same = sum(a == b for a, b in zip(code, candidate))
        swapped = any(code[:i] + code[i + 1] + code[i] + code[i + 2:] == candidate for i in range(len(code) - 1))
        return same == len(code) - 1 or swapped
    found = [c for c in _COMMON_CURRENCIES if close(c)] or sorted(c for c in ISO_4217 if close(c))
    return f"did you mean '{found[0]}'?" if found else otherwise


def _hint(word: str, candidates, otherwise: str) -> str:
    # Three-letter codes differ by a third when one letter is wrong: accept that.
    guess = did_you_mean(word, candidates, cutoff=0.6 if len(word) <= 3 else 0.75)
    return f"did you mean '{guess}'?" if guess else otherwise


def _replacing(node: ast.Expr, text: str) -> Callable[[ast.Expr], Optional[str]]:
    """A formatter leaf that writes `text` for one node."""
    return lambda other: text if other is node else None


def _text_at(source: str, span: ast.Span) -> str:
    lines = source.split("\n")
    if not 1 <= span.line <= len(lines):
        return ""
    return lines[span.line - 1][span.column - 1: span.end_column - 1]


def names_in(expr: ast.Expr) -> List[ast.Name]:
    """Every name an expression uses, in source order."""
    return [node for node in ast.walk(expr) if isinstance(node, ast.Name)]


def _never_true(expr) -> bool:
    """A condition that holds for no record: `no`, `x < x`, two numbers that compare false, and
    `and`/`or` of such (the twin of `_always_true`, which the negation maps onto)."""
    if isinstance(expr, ast.YesNo):
        return not expr.value
    if isinstance(expr, ast.Compare) and expr.op in ("!=", ">", "<") and expr.left == expr.right:
        return True
    if isinstance(expr, ast.Compare) and isinstance(expr.left, ast.Number) and isinstance(expr.right, ast.Number):
        return not _always_true(expr)
    if isinstance(expr, ast.Not):
        return _always_true(expr.operand)
    if isinstance(expr, ast.Logical):
        if expr.op == "and":
            return _never_true(expr.left) or _never_true(expr.right)
        return _never_true(expr.left) and _never_true(expr.right)
    return False


def _always_true(expr) -> bool:
    if isinstance(expr, ast.YesNo):
        return expr.value
    if isinstance(expr, ast.Not):
        return _never_true(expr.operand)
    if isinstance(expr, ast.Compare) and expr.op in ("=", ">=", "<=") and expr.left == expr.right:
        return True
    if isinstance(expr, ast.Compare) and isinstance(expr.left, ast.Number) and isinstance(expr.right, ast.Number):
        a, b = expr.left.value, expr.right.value
        return {"=": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}.get(expr.op, False)
    if isinstance(expr, ast.Logical):
        if expr.op == "or":
            return _always_true(expr.left) or _always_true(expr.right)
        return _always_true(expr.left) and _always_true(expr.right)
    return False

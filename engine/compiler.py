"""Checked policy → plan: one generated Python function that evaluates a record.

As Jinja2 does, the function's source is generated from the checked AST alone.
No policy text is ever pasted into it: every value lives in a slot named `v<n>`,
every constant is handed in through the function's globals as `K<n>`, and
operators come from a fixed table. The function returns every slot, so the
explanation of a decision is read from the very values that produced it.
"""
from __future__ import annotations

import decimal
import re
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

import attrs

from . import ast
from .checked import CheckedPolicy, FieldSpec, Figure
from .formatter import format_expr
from .functions import FUNCTIONS
from .money import HUNDRED
from .units import Unit

_OPERATORS = {"+": "+", "-": "-", "*": "*", "/": "/", "of": "*",
              ">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "==", "!=": "!="}


@attrs.frozen
class Owner:
    """What a line of generated code computes, for per-record error messages."""

    what: str  # "cost 'service'", "rule 2 of 'class'"
    span: ast.Span


@attrs.frozen
class Outcome:
    """What a rule of one classification gives when it matches; made once per rule, at compile time."""

    classification: str
    label: str
    rule: int  # 1-based position in the classification
    line: int
    action: Optional[str]
    reason: Optional[str]


@attrs.frozen
class WarningOutcome:
    """A warning rule as a decision carries it when it fires; made once per rule, at compile time."""

    name: str
    message: str
    line: int


@attrs.frozen(eq=False)
class Segment:
    """One piece of the generated code. It continues the slots of the pieces before it, so a
    portfolio pass can stop where its drivers are known and the next pass resume there."""

    number: int  # 1-based
    # (slots so far, amounts of `reads`[, earlier periods of a history]) -> slots so far + this segment's
    function: Callable[..., tuple]
    source: str
    owners: Tuple[Optional[Owner], ...]  # line number of the generated code → what it computes
    allocations: Tuple[int, ...]  # indexes into policy.allocations whose drivers it ends with; () for the last
    reads: Tuple[int, ...]  # indexes into policy.allocations whose amounts it takes, in this order
    start: int  # the slots it is given: 0..start-1; it adds start..end-1
    end: int
    uses: Tuple[int, ...]  # the given slots its code reads


@attrs.frozen(eq=False)
class Plan:
    """Everything needed to evaluate records: shared, immutable, safe across threads."""

    policy: CheckedPolicy
    fields: Tuple[FieldSpec, ...]
    segments: Tuple[Segment, ...]  # run in order: values -> every slot; more than one for a portfolio
    slot_of: Dict[int, int]  # node nid → slot of its value
    constant_of: Dict[int, object]  # nid of a literal → its value
    figure_slot: Dict[str, int]  # figure or field name → slot of its final value
    raw_slot: Dict[str, int]  # figure name → slot before rounding
    class_slot: Dict[str, int]  # classification name → slot holding the index of the matched rule
    reported: Tuple[Tuple[str, int], ...]  # (name, slot) of every figure a decision reports
    rules: Tuple[Tuple[str, tuple], ...]  # (classification name, its rules)
    units: Dict[str, Unit]  # field or figure name → unit
    formulas: Dict[str, str]  # figure name → its formula as written, for explanations
    key_column: str  # the input column holding the record's id
    driver_slot: Dict[str, int]  # allocation name → slot of its driver value
    pool_uses: Tuple["PoolUseSlots", ...]  # where each capacity pool is charged
    outcome_tables: Tuple[Tuple[int, Tuple[Outcome, ...]], ...]  # (slot of rule index, outcome per rule)
    portfolio_figures: Dict[str, int]  # each portfolio figure's name → its index in a decision's shares
    warning_tables: Tuple[Tuple[int, WarningOutcome], ...] = ()  # (slot of its condition, the warning)

    @property
    def stages(self) -> Tuple[Segment, ...]:
        """A portfolio's passes: each ends with the drivers of some allocations, shared out before the next."""
        return self.segments[:-1]

    @property
    def source(self) -> str:
        """The generated code, for the curious and for tests."""
        return "\n".join(segment.source for segment in self.segments)

    # ---- what a decision's slots hold, for explanations and reports ----------------

    def evaluated(self, node: ast.Expr) -> bool:
        """Whether the plan computes or holds this node's value (a literal, or a slot)."""
        return node.nid in self.slot_of or node.nid in self.constant_of

    def is_literal(self, node: ast.Expr) -> bool:
        return node.nid in self.constant_of

    def value(self, node: ast.Expr, slots: tuple) -> Any:
        """The value a node had in the evaluation that filled `slots`; None if it was not reached."""
        nid = node.nid
        if nid in self.constant_of:
            return self.constant_of[nid]
        slot = self.slot_of.get(nid)
        return slots[slot] if slot is not None and slot < len(slots) else None

    def figure_value(self, name: str, slots: tuple) -> Any:
        """The final (rounded) value of a field, figure or classification label."""
        return slots[self.figure_slot[name]]

    def unrounded(self, name: str, slots: tuple) -> Any:
        return slots[self.raw_slot[name]]

    def warnings_of(self, slots: tuple) -> Tuple[WarningOutcome, ...]:
        """The warning rules that fired in the evaluation that filled `slots`, in the policy's order."""
        return tuple([warning for slot, warning in self.warning_tables if slots[slot]])

    def driver_value(self, name: str, slots: tuple) -> Any:
        """The driver an allocation shared its pool by, for this record."""
        return slots[self.driver_slot[name]]


def compile_policy(policy: CheckedPolicy) -> Plan:
    """Compile once; the plan evaluates any number of records."""
    return _Compiler(policy).build()


@attrs.frozen
class PoolUseSlots:
    """A capacity pool charged in a cost: the slot of the volume charged at its rate, and the
    slot of what the customer pays for it (the cost line as rounded, when the charge is the
    whole line; else the charge itself)."""

    pool: str
    figure: str
    volume: int
    charged: int


class _Compiler(ast.Visitor[str]):
    def __init__(self, policy: CheckedPolicy) -> None:
        self.policy = policy
        self.driver_slot: Dict[str, int] = {}
        self.pool_uses: List[Tuple[str, str, int, int, bool]] = []  # pool, figure, volume, charge slots, whole line
        self.kinds = {f.name: f.kind for f in policy.figures}
        self.allocation_index = {a.name: i for i, a in enumerate(policy.allocations)}
        self.lines: List[str] = []
        self.owners: List[Optional[Owner]] = []
        self.owner: Optional[Owner] = None
        self.indent = 1
        self.slots = 0
        self.conditional_slots: List[int] = []
        self.constants: Dict[str, object] = {}
        self.constant_names: Dict[Tuple[type, object, str], str] = {}
        self.slot_of: Dict[int, int] = {}
        self.constant_of: Dict[int, object] = {}
        self.names: Dict[str, str] = {}  # policy name → code reference
        self.figure_slot: Dict[str, int] = {}
        self.raw_slot: Dict[str, int] = {}
        self.class_slot: Dict[str, int] = {}
        self.in_branch = 0
        self.figure_now: Optional[Figure] = None  # the figure whose code is being emitted
        self.done: set = set()  # figures computed by an earlier segment
        self.reads: List[int] = []  # allocations whose amounts the segment being built takes
        self.warning_tables: List[Tuple[int, WarningOutcome]] = []

    # ---- output helpers ------------------------------------------------------

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)
        self.owners.append(self.owner)

    def new_slot(self) -> int:
        slot = self.slots
        self.slots += 1
        if self.in_branch:
            self.conditional_slots.append(slot)
        return slot

    def constant(self, value) -> str:
        key = (type(value), value, str(value))
        if key not in self.constant_names:
            name = f"K{len(self.constant_names)}"
            self.constant_names[key] = name
            self.constants[name] = value
        return self.constant_names[key]

    # ---- the functions -------------------------------------------------------

    def build(self) -> Plan:
        policy = self.policy
        rounding = policy.rounding
        self.constants.update({"QUANTUM": rounding.quantum, "ROUNDING": rounding.rounding})
        for field in policy.fields:
            slot = self.new_slot()
            self.names[field.name] = f"v{slot}"
            self.figure_slot[field.name] = slot
        segments: List[Segment] = []
        passes = policy.passes
        index_of = {spec.name: index for index, spec in enumerate(policy.allocations)}
        for shared in passes:
            targets = tuple(index_of[name] for name in shared)
            needed = set()
            for index in targets:
                spec = policy.allocations[index]
                names = {n.name for _, e in spec.row_values() for n in ast.walk(e) if isinstance(n, ast.Name)}
                needed |= names.union(*(policy.depends.get(n, ()) for n in names))
            segments.append(self.segment(len(segments) + 1, targets, needed, len(passes) + 1))
        segments.append(self.segment(len(segments) + 1, (), None, len(passes) + 1))
        return Plan(
            policy=policy, fields=policy.fields, segments=tuple(segments),
            slot_of=self.slot_of, constant_of=self.constant_of, figure_slot=self.figure_slot,
            raw_slot=self.raw_slot, class_slot=self.class_slot,
            reported=tuple((f.name, self.figure_slot[f.name]) for f in policy.figures
                           if f.kind not in ("rate", "pool") and f.name in self.figure_slot),
            rules=tuple((c.name, c.rules) for c in policy.classifications),
            driver_slot=self.driver_slot, pool_uses=self.capacity_uses(),
            portfolio_figures={spec.name: index for index, spec in enumerate(policy.allocations)},
            key_column=next((f.column for f in policy.fields if f.name == policy.key), policy.key),
            outcome_tables=tuple(
                (self.class_slot[c.name], tuple(Outcome(c.name, r.label, n, r.span.line, r.action, r.reason)
                                                 for n, r in enumerate(c.rules, start=1)))
                for c in policy.classifications if c.name in self.class_slot),
            formulas={f.name: format_expr(f.expr) for f in policy.figures if f.expr is not None},
            warning_tables=tuple(self.warning_tables),
            units=policy.names,
        )

    def segment(self, number: int, targets: Tuple[int, ...], needed: Optional[set], count: int) -> Segment:
        """The figures in `needed` not computed yet, ending with the drivers of `targets`;
        with `needed` None, everything left and the classifications."""
        start = self.slots
        self.lines, self.owners, self.conditional_slots, self.reads = [], [], [], []
        drivers_of = {self.policy.allocations[i].name for i in targets}
        for figure in self.policy.figures:
            if figure.name in drivers_of:
                self.drivers(figure)
            elif figure.name not in self.done and (needed is None or figure.name in needed):
                self.figure(figure)
                self.done.add(figure.name)
        if needed is None:
            for index, classification in enumerate(self.policy.classifications):
                self.classification(index, classification)
            for rule in self.policy.warning_rules:
                self.warning(rule)
        head = [f"    {', '.join(f'v{i}' for i in range(start))}, = slots"] if start else []
        if self.conditional_slots:
            head.append("    " + " = ".join(f"v{i}" for i in self.conditional_slots) + " = None")
        new = ", ".join(f"v{i}" for i in range(start, self.slots))
        tail = f"    return slots + ({new},)" if new else "    return slots"
        source = "\n".join(["def evaluate(slots, shares, earlier=()):"] + head + self.lines + [tail]) + "\n"
        owners = [None, None] + [None] * len(head) + self.owners  # line numbers are 1-based
        namespace: Dict[str, object] = {"__builtins__": {}}  # functions come from the registry, as F_<name>
        namespace.update(self.constants)
        filename = "<policy plan>" if count == 1 else f"<policy plan, part {number} of {count}>"
        exec(compile(source, filename, "exec"), namespace)  # our generated code only: see the module docstring
        used = sorted({int(n) for n in re.findall(r"\bv(\d+)\b", "\n".join(self.lines)) if int(n) < start})
        return Segment(number, cast(Callable[..., tuple], namespace["evaluate"]), source, tuple(owners), targets, tuple(self.reads),
                       start, self.slots, tuple(used))

    def drivers(self, figure: Figure) -> None:
        """A portfolio figure's values on each record (a driver, the value a referral brings),
        which the stage pass shares out by."""
        self.owner = Owner(f"the driver of {figure.kind} '{figure.name}'", figure.span)
        spec = self.policy.allocations[self.allocation_index[figure.name]]

        def compute() -> None:
            for key, node in spec.row_values():
                self.driver_slot[key] = self.slot(self.expr(node))

        if spec.only_where is not None:
            self.emit(f"if {self.names[spec.only_where]} is not None:")
            self.branch(compute)
            if self.lines[-1].lstrip().startswith("if "):  # the values are figures computed already
                del self.lines[-1], self.owners[-1]
        else:
            compute()
        self.owner = None

    def capacity_uses(self) -> Tuple[PoolUseSlots, ...]:
        """Each capacity pool's charges, once per cost line and volume."""
        found: Dict[Tuple[str, str, int], PoolUseSlots] = {}
        for pool, figure, volume, charge, whole_line in self.pool_uses:
            charged = self.figure_slot[figure] if whole_line else charge
            found.setdefault((pool, figure, volume), PoolUseSlots(pool, figure, volume, charged))
        return tuple(found.values())

    def figure(self, figure: Figure) -> None:
        self.figure_now = figure
        self.owner = Owner(f"{figure.kind} '{figure.name}'" if figure.kind != "total" else f"the total '{figure.name}'",
                           figure.span)
        if figure.name in self.allocation_index:  # a portfolio figure: its share comes from the pass
            raw = self.new_slot()
            self.emit(f"v{raw} = shares[{len(self.reads)}]")
            self.reads.append(self.allocation_index[figure.name])
        elif figure.kind == "total":
            parts = [self.names[p] for p in figure.parts]
            raw = self.new_slot()
            self.emit(f"v{raw} = " + (" + ".join(parts) if parts else self.constant(Decimal("0.00"))))
        else:
            raw_ref = self.expr(figure.expr)
            if raw_ref.startswith("v"):
                raw = int(raw_ref[1:])
            else:
                raw = self.new_slot()
                self.emit(f"v{raw} = {raw_ref}")
        self.raw_slot[figure.name] = raw
        final = raw
        if figure.rounded and not (figure.kind == "total" and self.policy.rounding.per_line):
            final = self.new_slot()
            self.emit(f"v{final} = v{raw}.quantize(QUANTUM, ROUNDING)")
        self.figure_slot[figure.name] = final
        self.names[figure.name] = f"v{final}"
        self.owner = self.figure_now = None

    def classification(self, index: int, classification) -> None:
        result = self.new_slot()
        self.class_slot[classification.name] = result
        self.emit(f"v{result} = -1")
        for number, rule in enumerate(classification.rules):
            self.owner = Owner(f"rule {number + 1} ('{rule.label}') of '{classification.name}'", rule.span)
            if rule.condition is None:
                self.emit(f"if v{result} < 0:")
                self.emit(f"    v{result} = {number}")
                break
            self.emit(f"if v{result} < 0:")
            self.indent += 1
            self.in_branch += 1
            test = self.expr(rule.condition)
            self.emit(f"if {test}:")
            self.emit(f"    v{result} = {number}")
            self.in_branch -= 1
            self.indent -= 1
        labels = tuple(rule.label for rule in classification.rules)
        label_slot = self.new_slot()
        self.emit(f"v{label_slot} = {self.constant(labels)}[v{result}]")
        self.names[classification.name] = f"v{label_slot}"
        self.figure_slot[classification.name] = label_slot
        self.owner = None

    def warning(self, rule) -> None:
        self.owner = Owner(f"warning '{rule.name}'", rule.span)
        test = self.expr(rule.condition)
        slot = self.slot(test)
        self.warning_tables.append((slot, WarningOutcome(rule.name, rule.message, rule.span.line)))
        self.owner = None

    # ---- expressions ---------------------------------------------------------

    def expr(self, node) -> str:
        """Emit code computing `node`; return a reference to its value (a slot or constant)."""
        ref = self.visit(node)
        if ref.startswith("v"):
            self.slot_of.setdefault(node.nid, int(ref[1:]))
        return ref

    def literal(self, node, value) -> str:
        self.constant_of[node.nid] = value
        return self.constant(value)

    def visit_Number(self, node):
        return self.literal(node, node.value)

    def visit_Percent(self, node):
        return self.literal(node, node.value / HUNDRED)

    def visit_Money(self, node):
        return self.literal(node, node.amount)

    def visit_Rate(self, node):
        inner = node.quantity
        value = inner.value / HUNDRED if isinstance(inner, ast.Percent) else getattr(inner, "value", None)
        return self.literal(node, inner.amount if isinstance(inner, ast.Money) else value)

    def visit_Text(self, node):
        return self.literal(node, node.value)

    def visit_YesNo(self, node):
        return self.literal(node, node.value)

    def visit_Name(self, node):
        return self.names[node.name]

    def slot(self, ref: str) -> int:
        """The slot holding a value: a constant is copied into one."""
        if ref.startswith("v"):
            return int(ref[1:])
        slot = self.new_slot()
        self.emit(f"v{slot} = {ref}")
        return slot

    def assign(self, code: str) -> str:
        slot = self.new_slot()
        self.emit(f"v{slot} = {code}")
        return f"v{slot}"

    def visit_Binary(self, node):
        left = self.expr(node.left)
        right = self.expr(node.right)
        ref = self.assign(f"{left} {_OPERATORS[node.op]} {right}")
        if node.op == "*" and self.figure_now is not None and self.figure_now.kind == "cost":
            for pool, volume in ((node.left, right), (node.right, left)):
                if isinstance(pool, ast.Name) and self.kinds.get(pool.name) == "pool" and volume.startswith("v"):
                    self.pool_uses.append((pool.name, self.figure_now.name, int(volume[1:]), int(ref[1:]),
                                           node is self.figure_now.expr))
        return ref

    def visit_Negate(self, node):
        return self.assign(f"-{self.expr(node.operand)}")

    def visit_Call(self, node):
        function = FUNCTIONS[node.function]
        values = node.args if function.values is None else node.args[:function.values]
        args = [self.expr(a) for a in values]
        if function.history:  # (earlier, slot of the figure, its value now, period, zero, periods)
            history = self.policy.history
            assert history is not None  # the checker made sure
            slot = self.slot(args[0])
            periods = self.constant(int(node.args[1].value)) if len(node.args) > 1 else "None"
            args = ["earlier", self.constant(slot), f"v{slot}", self.names[history.field],
                    self.constant(history.zero), periods]
        units = tuple(self.policy.unit_of(a) for a in node.args)
        args += [self.constant(c) for c in function.constants(node.args, units, self.policy.rounding)]
        name = "F_" + function.name
        self.constants[name] = function.implementation
        return self.assign(f"{name}({', '.join(args)})")

    def visit_Compare(self, node):
        left = self.expr(node.left)
        right = self.expr(node.right)
        return self.assign(f"{left} {_OPERATORS[node.op]} {right}")

    def visit_Between(self, node):
        value = self.expr(node.value)
        low = self.expr(node.low)
        high = self.expr(node.high)
        test = f"{low} <= {value} <= {high}"
        return self.assign(f"not ({test})" if node.negated else test)

    def visit_IsMissing(self, node):
        value = self.expr(node.value)
        return self.assign(f"{value} is {'not ' if node.negated else ''}None")

    def visit_Not(self, node):
        return self.assign(f"not {self.expr(node.operand)}")

    def visit_Logical(self, node):
        """Left to right, stopping as soon as the answer is known."""
        left = self.expr(node.left)
        result = self.new_slot()
        self.emit(f"v{result} = {left}")
        self.emit(f"if {'' if node.op == 'and' else 'not '}v{result}:")
        self.branch(lambda: self.emit(f"v{result} = {self.expr(node.right)}"))
        return f"v{result}"

    def visit_Conditional(self, node):
        test = self.expr(node.condition)
        result = self.new_slot()
        self.emit(f"if {test}:")
        self.branch(lambda: self.emit(f"v{result} = {self.expr(node.then)}"))
        self.emit("else:")
        self.branch(lambda: self.emit(f"v{result} = {self.expr(node.otherwise)}"))
        return f"v{result}"

    def branch(self, body) -> None:
        self.indent += 1
        self.in_branch += 1
        body()
        self.in_branch -= 1
        self.indent -= 1


def record_error_owner(plan: Plan, traceback) -> Tuple[Optional[Owner], Optional[Tuple[int, ...]]]:
    """Which figure or rule was being computed when a record's evaluation failed, and the
    slots holding an empty value (None) that the failing line of generated code read
    (None when the failure was not in generated code)."""
    codes = {segment.function.__code__: segment for segment in plan.segments}
    while traceback is not None:
        segment = codes.get(traceback.tb_frame.f_code)
        if segment is not None:
            line = traceback.tb_lineno
            owner = segment.owners[line] if 0 <= line < len(segment.owners) else None
            lines = segment.source.split("\n")
            text = lines[line - 1] if 0 < line <= len(lines) else ""
            frame = traceback.tb_frame.f_locals
            read = re.sub(r"^\s*v\d+ = ", "", text)  # what the line reads, not the slot it assigns
            empty = tuple(int(name[1:]) for name in re.findall(r"\bv\d+\b", read) if frame.get(name, 0) is None)
            return owner, empty
        traceback = traceback.tb_next
    return None, None


ARITHMETIC_ERRORS = (decimal.DivisionByZero, decimal.InvalidOperation, decimal.Overflow, TypeError, AttributeError)

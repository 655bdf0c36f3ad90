"""The `profit` command: check policies, run them over customer records, explain decisions."""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import tempfile
import time
from decimal import Decimal
from typing import IO, Iterator, List, Optional

from .diagnostics import PolicyError, render_all
from .display import json_value
from .money import grouped
from .policy import Policy, load_policy
from .portfolio import PortfolioContext
from .report import build_report, render_html, render_text
from .records import FORMATS, RecordError, RecordSource
from .run import Run, RunSummary

EXIT_OK, EXIT_POLICY, EXIT_RECORDS = 0, 1, 2

_EPILOG_CHECK = """example:
  profit check policies/standard.policy policies/strict.policy
exit status: 0 when every policy is valid (warnings allowed), 1 otherwise"""
_EPILOG_RUN = """example:
  profit run policies/standard.policy examples/customers.csv --format json --output decisions.jsonl
  cat customers.csv | profit run policies/standard.policy - --format csv > decisions.csv
exit status: 0 every record classified, 2 some records failed (all others written), 1 policy invalid"""
_EPILOG_EXPLAIN = """example:
  profit explain policies/standard.policy examples/customers.csv --id C-1034
  profit explain policies/standard.policy examples/customers.csv --format json"""
_EPILOG_REPORT = """example:
  profit report policies/standard.policy examples/customers.csv --output report.html
  profit report policies/standard.policy examples/customers.csv
exit status: 0 every record classified, 2 some records failed (report still written, errors counted in it),
1 policy invalid"""


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_POLICY
    try:
        return args.handler(args)
    except BrokenPipeError:  # `profit run ... | head`
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except (OSError, ValueError) as error:
        print(f"profit: {error}", file=sys.stderr)
        return EXIT_POLICY


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="profit", description="Customer profitability decisions from declarative policies.",
        epilog="run `profit COMMAND --help` for the options and an example of each command",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser("check", help="check policies and report every problem",
                                description="Check policy files; print ok or every diagnostic.",
                                epilog=_EPILOG_CHECK, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("policies", nargs="+", metavar="POLICY")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(handler=_check)

    run = commands.add_parser("run", help="classify every record",
                              description="Evaluate a policy over customer records: one decision per record, in input order.",
                              epilog=_EPILOG_RUN, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_arguments(run)
    run.add_argument("--format", choices=("table", "json", "csv"), default="table",
                     help="table for people, json (JSON Lines) or csv for machines (default: table)")
    run.add_argument("--output", metavar="FILE", help="write here instead of standard output (whole or not at all)")
    run.add_argument("--context", metavar="FILE",
                     help="decide each record against the portfolio totals stored by --save-context")
    run.add_argument("--save-context", metavar="FILE",
                     help="store this run's portfolio totals (pools, driver totals) for later single decisions")
    run.set_defaults(handler=_run)

    explain = commands.add_parser("explain", help="explain decisions step by step",
                                  description="Explain one decision (--id) or all of them, figure by figure and rule by rule.",
                                  epilog=_EPILOG_EXPLAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_arguments(explain)
    explain.add_argument("--id", dest="record_id", metavar="ID", help="only the record with this id")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    explain.add_argument("--context", metavar="FILE",
                         help="explain against the portfolio totals stored by `profit run --save-context`")
    explain.set_defaults(handler=_explain)

    report = commands.add_parser("report", help="a portfolio report: classes, whale curve, top and bottom customers",
                                 description="Summarise a run: totals per class, the whale curve, the most and least "
                                             "profitable customers, pooled costs and failed records.",
                                 epilog=_EPILOG_REPORT, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_arguments(report)
    report.add_argument("--format", choices=("html", "text"),
                        help="html (one self-contained page) or text (default: html when --output ends in .html, "
                             "else text)")
    report.add_argument("--output", metavar="FILE", help="write here instead of standard output (whole or not at all)")
    report.set_defaults(handler=_report)
    return parser


def _data_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("policy", metavar="POLICY")
    command.add_argument("data", metavar="DATA", help="CSV, JSON (an array) or JSON Lines file; - for standard input")
    command.add_argument("--input-format", choices=FORMATS,
                         help="format of DATA (default: from its extension; CSV for standard input)")


# ---- check ----------------------------------------------------------------------------


def _check(args) -> int:
    status = EXIT_OK
    reports = []
    for path in args.policies:
        try:
            policy = load_policy(path)
            diagnostics, source, ok = policy.warnings, policy.checked.source, True
        except PolicyError as error:
            diagnostics, source, ok = error.diagnostics, error.source, False
            status = EXIT_POLICY
        except OSError as error:
            print(f"{path}: cannot read: {error.strerror}", file=sys.stderr)
            status = EXIT_POLICY
            continue
        if args.format == "json":
            reports.append({"policy": path, "ok": ok, "diagnostics": [d.as_dict() for d in diagnostics]})
        elif ok and not diagnostics:
            print(f"{path}: ok" + _stages(policy))
        else:
            print(render_all(diagnostics, source))
            print(f"{path}: {'ok' if ok else 'invalid'}")
    if args.format == "json":
        print(json.dumps(reports, indent=2))
    return status


def _stages(policy: Policy) -> str:
    """For a portfolio policy: the passes a run makes, and what each one shares out."""
    if not policy.is_portfolio:
        return ""
    passes = [f"pass {number}: " + ", ".join(names) for number, names in enumerate(policy.passes, start=1)]
    return f" (portfolio: {'; '.join(passes)}; then every decision)"


# ---- run ------------------------------------------------------------------------------


def _load(path: str) -> Optional[Policy]:
    try:
        return load_policy(path)
    except PolicyError as error:
        print(str(error), file=sys.stderr)
        return None


@contextlib.contextmanager
def _input(path: str, input_format: Optional[str]) -> Iterator[RecordSource]:
    if path == "-":
        yield RecordSource(sys.stdin, input_format or "csv")
        return
    with RecordSource.open(path, input_format) as source:
        yield source


@contextlib.contextmanager
def _output(path: Optional[str]):
    """Standard output, or a file that appears whole (renamed into place) or not at all."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".profit-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            yield stream
        umask = os.umask(0)  # mkstemp makes the file private; give it the usual permissions
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class _Progress:
    """Records done, rate and errors on a terminal's stderr, once a batch takes over 2 seconds."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.start = self.last = time.monotonic()
        self.shown = False

    def update(self, done: int, errors: int) -> None:
        if not self.enabled or done % 256:
            return
        now = time.monotonic()
        if now - self.start < 2 or now - self.last < 0.5:
            return
        self.last = now
        rate = done / (now - self.start)
        sys.stderr.write(f"\r{done:,} records, {rate:,.0f}/s, {errors:,} errors ")
        sys.stderr.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _results(policy: Policy, source: RecordSource, context: Optional[PortfolioContext] = None) -> Run:
    progress = _Progress()
    return policy.run(source, context=context, progress=progress.update)


def _print_summary(summary: RunSummary) -> None:
    print(summary.line(), file=sys.stderr)
    for line in summary.pool_lines():
        print(line, file=sys.stderr)
    for error in summary.errors[:10]:
        print(f"  {error}", file=sys.stderr)
    if len(summary.errors) > 10:
        print(f"  ... and {len(summary.errors) - 10} more", file=sys.stderr)


def _run(args) -> int:
    policy = _load(args.policy)
    if policy is None:
        return EXIT_POLICY
    writer = {"json": _write_json, "csv": _write_csv, "table": _write_table}[args.format]
    context = _read_context(args.context)
    with _input(args.data, args.input_format) as source, _output(args.output) as out:
        run = _results(policy, source, context)
        writer(policy, run, out)
        summary = run.summary
    if args.save_context:
        if summary.context is None:
            print("profit: --save-context needs a policy that shares pooled costs", file=sys.stderr)
            return EXIT_POLICY
        with _output(args.save_context) as out:
            json.dump(summary.context.as_dict(), out, indent=2)
    if args.format != "table" or args.output:
        _print_summary(summary)
    return EXIT_RECORDS if summary.errors else EXIT_OK


def _read_context(path: Optional[str]) -> Optional[PortfolioContext]:
    if path is None:
        return None
    with open(path, encoding="utf-8") as stream:
        return PortfolioContext.from_dict(json.load(stream))


def _write_json(policy: Policy, run: Run, out: IO[str]) -> None:
    for result in run:
        out.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")


def _write_csv(policy: Policy, run: Run, out: IO[str]) -> None:
    others = list(policy.classification_names[1:])
    figures = list(policy.figure_names)
    writer = csv.writer(out)
    writer.writerow(["row", "id", "class", "action", "rule", *others, *figures, "error"])
    for result in run:
        if isinstance(result, RecordError):
            writer.writerow([result.row, result.id or "", "", "", "", *[""] * (len(others) + len(figures)),
                             result.message])
            continue
        classes = result.classes
        values = result.figures
        writer.writerow([result.row, result.id, result.classification, result.action or "", result.rule.rule,
                         *[classes[o] for o in others], *[_cell(values[f]) for f in figures], ""])


def _cell(value) -> str:
    value = json_value(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _write_table(policy: Policy, run: Run, out: IO[str]) -> None:
    checked = policy.checked
    rules = [(c.name, c.rules) for c in checked.classifications]
    widths = [max(len(name), *(len(r.label) for r in rs)) for name, rs in rules]
    key = policy.bottom_line
    header = f"{'id':<12} " + " ".join(f"{name:<{w}}" for (name, _), w in zip(rules, widths))
    header += f" {key or '':>16}  action"
    out.write(header + "\n" + "-" * len(header) + "\n")
    for result in run:
        if isinstance(result, RecordError):
            continue
        labels = " ".join(f"{o.label:<{w}}" for o, w in zip(result.outcomes, widths))
        value = result.value(key) if key else ""
        shown = grouped(value) if isinstance(value, Decimal) else str(value)
        out.write(f"{result.id or '':<12} {labels} {shown:>16}  {result.action or ''}\n")
    summary = run.summary
    out.write("\n" + summary.line() + "\n\n")
    for line in summary.pool_lines():
        out.write(line + "\n")
    counts, totals = dict(summary.counts), dict(summary.totals)
    out.write(f"{rules[0][0]:<16} {'count':>8} {'total ' + (key or ''):>20}\n")
    for label in [r.label for r in rules[0][1]]:
        if label in counts:
            total = totals.get(label)
            out.write(f"{label:<16} {counts[label]:>8,} {grouped(total) if total is not None else '':>20}\n")
    if summary.errors:
        out.write(f"\nerrors ({len(summary.errors)}):\n")
        for error in summary.errors:
            out.write(f"  {error}\n")


# ---- explain ----------------------------------------------------------------------------


def _explain(args) -> int:
    policy = _load(args.policy)
    if policy is None:
        return EXIT_POLICY
    found = failed = 0
    with _input(args.data, args.input_format) as source, _output(args.output) as out:
        for result in _results(policy, source, _read_context(args.context)):
            if args.record_id is not None and getattr(result, "id", None) != args.record_id:
                continue
            found += 1
            if isinstance(result, RecordError):
                failed += 1
                out.write(json.dumps(result.as_dict()) + "\n" if args.format == "json" else f"{result}\n\n")
                continue
            explanation = result.explain()
            if args.format == "json":
                out.write(json.dumps(explanation.as_dict(), ensure_ascii=False) + "\n")
            else:
                out.write(explanation.text() + "\n\n")
    if args.record_id is not None and not found:
        print(f"profit: no record with id '{args.record_id}' in {args.data}", file=sys.stderr)
        return EXIT_POLICY
    return EXIT_RECORDS if failed else EXIT_OK


# ---- report -----------------------------------------------------------------------------


def _report(args) -> int:
    policy = _load(args.policy)
    if policy is None:
        return EXIT_POLICY
    fmt = args.format or ("html" if args.output and args.output.lower().endswith((".html", ".htm")) else "text")
    with _input(args.data, args.input_format) as source:
        run = _results(policy, source)
        report = build_report(policy, run)
    with _output(args.output) as out:
        out.write(render_html(report) if fmt == "html" else render_text(report))
    if args.output or fmt != "text":
        print(run.summary.line(), file=sys.stderr)
    return EXIT_RECORDS if run.summary.errors else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

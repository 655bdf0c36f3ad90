"""The `profit` command: check policies, run them over customer records, explain decisions."""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import signal
import socket
import stat
import sys
import tempfile
import time
from decimal import Decimal
from typing import IO, Any, Iterator, List, Optional, Tuple

from . import __version__
from .checked import CheckedPolicy
from .diagnostics import PolicyError, render_all
from .display import json_value
from .money import grouped
from .policy import Policy, check_policy, load_policy
from .portfolio import PortfolioContext
from .report import build_report, render_html, render_text
from .records import FORMATS, RecordError, RecordSource
from .run import Run, RunSummary

EXIT_OK, EXIT_POLICY, EXIT_RECORDS = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM gives 143 and SIGHUP 129, as a shell reports them

_STOPPED = "  130  interrupted (Ctrl-C); 143 on SIGTERM, 129 on SIGHUP"
_INTERRUPTED = _STOPPED + ": --output is left as it was"
_EPILOG_CHECK = f"""example:
  profit check policies/standard.policy policies/strict.policy
exit status:
  0    every policy is valid (warnings allowed)
  1    a policy is invalid or cannot be read
  2    the command line is wrong
{_STOPPED}"""
_EPILOG_RUN = f"""example:
  profit run policies/standard.policy examples/customers.csv --format json --output decisions.jsonl
  cat customers.csv | profit run policies/standard.policy - --format csv > decisions.csv
csv output: a cell that a spreadsheet would run as a formula (text from the data, such as an id
  or a quoted value in an error, starting with = + - @, a tab or a carriage return) is written
  with a single quote before it ('=HYPERLINK(...)), as OWASP recommends; numbers the engine
  works out (-12.40) are written as they are. Table output shows control characters from the
  data escaped (\\x1b).
duplicate ids: each record is decided and a warning names the ids on more than one record;
  with --unique-ids every record after the first with an id is a record error instead.
exit status:
  0    every record classified
  1    the policy is invalid, a file cannot be read or written, or --output names an input
  2    some records failed (all others written); or the command line is wrong
{_INTERRUPTED}"""
_EPILOG_EXPLAIN = f"""example:
  profit explain policies/standard.policy examples/customers.csv --id C-1034
  profit explain policies/standard.policy examples/customers.csv --format json
text output shows control characters from the data escaped (\\x1b); --id explains every record
  with that id (see --unique-ids).
exit status:
  0    every record explained
  1    the policy is invalid, a file cannot be read or written, --output names an input, or no
       record has the --id
  2    some records failed (each explained as its error); or the command line is wrong
{_INTERRUPTED}"""
_EPILOG_REPORT = f"""example:
  profit report policies/standard.policy examples/customers.csv --output report.html
  profit report policies/standard.policy examples/customers.csv
exit status:
  0    every record classified
  1    the policy is invalid, a file cannot be read or written, or --output names an input
  2    some records failed (report still written, errors counted in it); or the command line is wrong
{_INTERRUPTED}"""


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_POLICY
    refusal = _overwrites_input(args)
    if refusal:
        _say(f"profit: {refusal}")
        return EXIT_POLICY
    previous = _catch_signals()
    try:
        return args.handler(args)
    except _Stopped as stop:  # the temporary output file is gone already: _output removed it
        _say("profit: interrupted" if stop.signum == signal.SIGINT
             else f"profit: stopped by {signal.Signals(stop.signum).name}")
        return 128 + stop.signum
    except KeyboardInterrupt:  # signals not ours to catch (main called outside the main thread)
        _say("profit: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `profit run ... | head`
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except (OSError, ValueError) as error:
        _say(f"profit: {error}")
        return EXIT_POLICY
    finally:
        _finish_progress()
        _PROGRESS.clear()
        _restore_signals(previous)


# ---- signals ----------------------------------------------------------------------------

_STOPPING = (signal.SIGINT, signal.SIGTERM) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())


class _Stopped(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP: unwinds the command so that `_output` removes its temporary file."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: Any) -> None:
    # The first signal unwinds; any further one is ignored so that the clean-up runs to its end.
    for number in _STOPPING:
        signal.signal(number, signal.SIG_IGN)
    raise _Stopped(signum)


def _catch_signals() -> Optional[List[Tuple[int, Any]]]:
    """Turn the stopping signals into `_Stopped` (only the main thread may); the previous handlers."""
    try:
        previous: List[Tuple[int, Any]] = [(number, signal.getsignal(number)) for number in _STOPPING]
        for number, handler in previous:
            if handler is not signal.SIG_IGN:  # `nohup profit ...` keeps ignoring SIGHUP
                signal.signal(number, _on_signal)
    except ValueError:  # not the main thread
        return None
    return previous


def _restore_signals(previous: Optional[List[Tuple[int, Any]]]) -> None:
    for number, handler in previous or ():
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


# ---- messages ---------------------------------------------------------------------------

# Control characters (C0 but the line feed, DEL, C1), and the Unicode marks that reorder or
# break lines on a terminal: shown escaped, so data can never move the cursor or recolour it.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Text for a terminal: every control character from the data shown as `\\x1b`, `\\u202e`."""
    return _CONTROL.sub(_escaped, text) if _CONTROL.search(text) else text


def _say(text: str) -> None:
    """One message on standard error, control characters escaped; never fails (SIGHUP, a closed pipe)."""
    _finish_progress()
    with contextlib.suppress(OSError, ValueError):
        print(printable(text), file=sys.stderr)


# ---- outputs that are inputs ----------------------------------------------------------


def _identity(path: str, stdin: bool = False) -> Optional[Tuple[int, int]]:
    """(device, inode) of the file a path names (symbolic links followed), or with `stdin` of the
    file standard input reads for `-`; None when there is none."""
    try:
        found = os.fstat(sys.stdin.fileno()) if stdin and path == "-" else os.stat(path)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None
    if stdin and path == "-" and not stat.S_ISREG(found.st_mode):
        return None  # a pipe or a terminal: nothing to overwrite
    return found.st_dev, found.st_ino


def _same_file(output: str, source: str) -> bool:
    """Whether an output names the file of an input (`-`: standard input): the same path, or the
    same inode (hard or symbolic links)."""
    if source != "-" and os.path.realpath(output) == os.path.realpath(source):
        return True
    found = _identity(output)
    return found is not None and found == _identity(source, stdin=True)


def _overwrites_input(args: argparse.Namespace) -> Optional[str]:
    """Why the outputs asked for would overwrite an input (or each other), before anything is read."""
    inputs: List[Tuple[str, str]] = [
        (what, path) for what, path in (("the data", getattr(args, "data", None)),
                                        ("the policy", getattr(args, "policy", None)),
                                        ("the --context file", getattr(args, "context", None))) if path]
    outputs: List[Tuple[str, str]] = [
        (option, path) for option, path in (("--output", getattr(args, "output", None)),
                                            ("--save-context", getattr(args, "save_context", None))) if path]
    for option, path in outputs:
        for what, source in inputs:
            if _same_file(path, source):
                shown = "standard input" if source == "-" else source
                return f"{option} {path} is {what} ({shown}): refusing to overwrite an input; write to another file"
    if len(outputs) == 2 and _same_file(outputs[0][1], outputs[1][1]):
        return f"--output and --save-context both name {outputs[0][1]}: give each its own file"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="profit", description="Customer profitability decisions from declarative policies.",
        epilog="run `profit COMMAND --help` for the options and an example of each command",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"profit {__version__}",
                        help="print the engine's version and exit")
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
    _unique_ids_argument(run)
    run.set_defaults(handler=_run)

    explain = commands.add_parser("explain", help="explain decisions step by step",
                                  description="Explain one decision (--id) or all of them, figure by figure and rule by rule.",
                                  epilog=_EPILOG_EXPLAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_arguments(explain)
    explain.add_argument("--id", dest="record_id", metavar="ID", help="only the record with this id")
    explain.add_argument("--period", metavar="PERIOD",
                         help="for a policy of histories: only the decision of this period (e.g. 2026Q4)")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    explain.add_argument("--context", metavar="FILE",
                         help="explain against the portfolio totals stored by `profit run --save-context`")
    _unique_ids_argument(explain)
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
    _unique_ids_argument(report)
    report.set_defaults(handler=_report)
    return parser


def _unique_ids_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument("--unique-ids", action="store_true",
                         help="make every record whose id an earlier record has a record error (the first "
                              "one is decided; in a portfolio the later ones share no pool and credit no one); "
                              "without it each is decided and a warning names the ids")


def _data_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("policy", metavar="POLICY")
    command.add_argument("data", metavar="DATA",
                         help="CSV (comma, semicolon or tab separated), JSON (an array), JSON Lines, .xlsx or "
                              "Parquet file; - for standard input")
    command.add_argument("--input-format", choices=FORMATS,
                         help="format of DATA (default: from its extension, which must be one of .csv .tsv .json "
                              ".jsonl .ndjson .xlsx .parquet; CSV for standard input)")
    command.add_argument("--encoding", metavar="NAME",
                         help="encoding of a text DATA file, such as cp1252 or latin-1 (default: UTF-8 or UTF-16 "
                              "by its byte order mark, else detected if profit-engine[encodings] is installed)")
    command.add_argument("--delimiter", metavar="CHAR",
                         help="CSV separator: , ; | or tab (default: sniffed among comma, semicolon and tab)")
    command.add_argument("--decimal-comma", action="store_true",
                         help="numbers in DATA are written 1.234,56 (a comma before the decimals, dots or spaces "
                              "between thousands); never guessed")
    command.add_argument("--sheet", metavar="NAME", help="the sheet of an .xlsx DATA file to read (default: the first)")


# ---- check ----------------------------------------------------------------------------


def _check(args) -> int:
    status = EXIT_OK
    reports = []
    for path in args.policies:
        try:
            policy = check_policy(path)  # checked, never compiled: a check needs no plan
            diagnostics, source, ok = policy.warnings, policy.source, True
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
            print(printable(render_all(diagnostics, source)))  # a policy's control characters escaped
            print(f"{path}: {'ok' if ok else 'invalid'}")
    if args.format == "json":
        print(json.dumps(reports, indent=2))
    return status


def _stages(policy: CheckedPolicy) -> str:
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
        _say(str(error))
        return None


@contextlib.contextmanager
def _input(args: argparse.Namespace) -> Iterator[RecordSource]:
    """DATA as a RecordSource, read as the options say (--input-format, --encoding, --delimiter,
    --decimal-comma, --sheet); its warnings go to stderr as found."""
    path, input_format = args.data, args.input_format
    encoding, delimiter, decimal_comma, sheet = args.encoding, args.delimiter, args.decimal_comma, args.sheet
    if path == "-":
        source = RecordSource(getattr(sys.stdin, "buffer", sys.stdin), input_format or "csv", encoding=encoding,
                              delimiter=delimiter, decimal_comma=decimal_comma, sheet=sheet)
        source.on_warning = lambda message: _say(f"profit: warning: {message}")
        yield source
        return
    with RecordSource.open(path, input_format, encoding=encoding, delimiter=delimiter, decimal_comma=decimal_comma,
                           sheet=sheet) as source:
        source.on_warning = lambda message: _say(f"profit: warning: {message}")
        yield source


@contextlib.contextmanager
def _output(path: Optional[str]):
    """Standard output, or a file that appears whole (renamed into place) or not at all."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    _sweep(directory)
    temporary: Optional[str] = None
    try:
        with _signals_held():  # a signal while the file is made waits until its name is known
            handle, temporary = tempfile.mkstemp(prefix=f"{_TEMPORARY}{_HOST}-{os.getpid()}-", suffix=".tmp",
                                                 dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            yield stream
        umask = os.umask(0)  # mkstemp makes the file private; give it the usual permissions
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:  # an error, Ctrl-C, SIGTERM, SIGHUP (see _catch_signals): no trace left
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """The stopping signals held back (delivered when the block ends), where the OS can."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


# The temporary file beside --output is named .profit-HOST-PID-XXXXXXXX.tmp. A run stopped by
# SIGINT, SIGTERM or SIGHUP removes its own; one killed outright (SIGKILL, the OOM killer, a
# power cut) cannot, so every run that writes into a directory first removes the temporary
# files there of runs on this host whose process is gone: they never accumulate. Chosen over
# O_TMPFILE + linkat, which leaves nothing even after SIGKILL but exists only on Linux, on
# some file systems and with /proc mounted. A file of a live process, or of another host
# sharing the directory, is never touched; a pid reused since is only swept later.
_TEMPORARY = ".profit-"
_HOST = re.sub(r"[^A-Za-z0-9.]", "", socket.gethostname())[:64] or "host"


def _sweep(directory: str) -> None:
    """Remove the temporary files of dead `profit` processes of this host in `directory`."""
    prefix = f"{_TEMPORARY}{_HOST}-"
    try:
        names = [name for name in os.listdir(directory) if name.startswith(prefix) and name.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def _alive(pid: int) -> bool:
    if pid <= 0 or os.name == "nt":  # not a process id; on Windows os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process (or not ours to judge): alive
    return True


class _Progress:
    """Records done, rate and errors on a terminal's stderr, once a batch takes over 2 seconds."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.start = self.last = time.monotonic()
        self.shown = False
        _PROGRESS.append(self)  # cleared before any message (_say) and when the command ends

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
            self.shown = False
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()


_PROGRESS: List[_Progress] = []


def _finish_progress() -> None:
    """Clear the progress line, if one is shown, so that the next message starts a clean line."""
    for progress in _PROGRESS:
        progress.finish()


def _results(policy: Policy, source: RecordSource, context: Optional[PortfolioContext] = None,
             unique_ids: bool = False) -> Run:
    progress = _Progress()
    return policy.run(source, context=context, progress=progress.update, unique_ids=unique_ids)


def _duplicate_warning(summary: RunSummary, unique_ids: bool) -> Optional[str]:
    line = summary.duplicate_line()
    if line is None:
        return None
    if unique_ids:
        return f"warning: {line}; each record after the first with an id is a record error (--unique-ids)"
    return f"warning: {line}; each was decided as a record of its own (--unique-ids makes the later ones errors)"


def _print_summary(summary: RunSummary, unique_ids: bool = False) -> None:
    _say(summary.line())
    for line in summary.pool_lines():
        _say(line)
    warning = _duplicate_warning(summary, unique_ids)
    if warning:
        _say(warning)
    _print_errors(summary)


def _print_errors(summary: RunSummary) -> None:
    for error in summary.errors[:10]:
        _say(f"  {error}")
    if len(summary.errors) > 10:
        _say(f"  ... and {len(summary.errors) - 10} more")


def _run(args) -> int:
    policy = _load(args.policy)
    if policy is None:
        return EXIT_POLICY
    writer = {"json": _write_json, "csv": _write_csv,
              "table": lambda policy, run, out: _write_table(policy, run, out, args.unique_ids)}[args.format]
    context = _read_context(args.context, policy)
    with _input(args) as source, _output(args.output) as out:
        run = _results(policy, source, context, args.unique_ids)
        writer(policy, run, out)
        summary = run.summary
    if args.save_context:
        if summary.context is None:
            print("profit: --save-context needs a policy that shares pooled costs", file=sys.stderr)
            return EXIT_POLICY
        with _output(args.save_context) as out:
            out.write(summary.context.dumps(policy))  # stamped: engine version, policy digest, content digest
    if args.format != "table" or args.output:
        _print_summary(summary, args.unique_ids)
    return EXIT_RECORDS if summary.errors else EXIT_OK


def _read_context(path: Optional[str], policy: Optional[Policy] = None) -> Optional[PortfolioContext]:
    """The context --context names, checked (None without the option). A malformed or altered
    file, or one from another engine version, raises ContextError, a ValueError that `main` prints
    as `profit: FILE: ...` (exit 1); one from another policy, as soon as `policy` is given, else
    when the first record is decided against it."""
    if path is None:
        return None
    return PortfolioContext.read(path, policy)


def _write_json(policy: Policy, run: Run, out: IO[str]) -> None:
    for result in run:
        out.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")


def _write_csv(policy: Policy, run: Run, out: IO[str]) -> None:
    others = list(policy.classification_names[1:])
    figures = list(policy.figure_names)
    period = ["period"] if policy.checked.history is not None else []  # a history: the period after the id
    warned = ["warnings"] if policy.checked.warning_rules else []  # the names of those that fired, `; ` between
    writer = csv.writer(out)
    text = _terminal_text if _isatty(out) else _formula_safe
    writer.writerow([text(name) for name in ["row", "id", *period, "class", "action", "rule", *others, *figures,
                                             *warned, "error"]])
    for result in run:
        if isinstance(result, RecordError):
            writer.writerow([result.row, text(result.id or ""), *[""] * len(period), "", "", "",
                             *[""] * (len(others) + len(figures) + len(warned)), text(result.message)])
            continue
        classes = result.classes
        values = result.figures
        writer.writerow([result.row, text(result.id or ""), *[str(result.period)] * len(period),
                         text(result.classification), text(result.action or ""),
                         result.rule.rule, *[text(classes[o]) for o in others],
                         *[_cell(values[f], text) for f in figures],
                         *[text("; ".join(w.name for w in result.warnings))] * len(warned), ""])


# OWASP, "CSV Injection": a cell starting with one of these is run as a formula by a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _formula_safe(text: str) -> str:
    """Text from the data (or the policy) as a CSV cell a spreadsheet shows and never runs:
    `=HYPERLINK(...)` becomes `'=HYPERLINK(...)`. Numbers the engine works out do not come here."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _terminal_text(text: str) -> str:
    return printable(_formula_safe(text))


def _isatty(out: IO[str]) -> bool:
    try:
        return out.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _cell(value: Any, text: Any = _formula_safe) -> str:
    """A figure as a CSV cell: a number or date as the engine writes it (-12.40 stays a number),
    yes/no, or text made formula-safe."""
    if isinstance(value, str):
        return text(value)
    value = json_value(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _write_table(policy: Policy, run: Run, out: IO[str], unique_ids: bool = False) -> None:
    """The table for people; every control character from the data or the policy shown escaped."""
    def write(text: str) -> None:
        out.write(printable(text))

    checked = policy.checked
    rules = [(c.name, c.rules) for c in checked.classifications]
    widths = [max(len(name), *(len(r.label) for r in rs)) for name, rs in rules]
    key = policy.bottom_line
    history = checked.history is not None
    period = f"{'period':<8} " if history else ""
    header = f"{'id':<12} {period}" + " ".join(f"{name:<{w}}" for (name, _), w in zip(rules, widths))
    header += f" {key or '':>16}  action"
    write(header + "\n" + "-" * len(header) + "\n")
    for result in run:
        if isinstance(result, RecordError):
            continue
        labels = " ".join(f"{o.label:<{w}}" for o, w in zip(result.outcomes, widths))
        value = result.value(key) if key else ""
        shown = grouped(value) if isinstance(value, Decimal) else str(value)
        when = f"{result.period:<8} " if history else ""
        warned = "".join(f"\n{'':<13}{'':<{len(period)}}warning {w.name}: {w.message}" for w in result.warnings)
        write(f"{result.id or '':<12} {when}{labels} {shown:>16}  {result.action or ''}{warned}\n")
    summary = run.summary
    write("\n" + summary.line() + "\n\n")
    for line in summary.pool_lines():
        write(line + "\n")
    counts, totals = dict(summary.counts), dict(summary.totals)
    write(f"{rules[0][0]:<16} {'count':>8} {'total ' + (key or ''):>20}\n")
    for label in [r.label for r in rules[0][1]]:
        if label in counts:
            total = totals.get(label)
            write(f"{label:<16} {counts[label]:>8,} {grouped(total) if total is not None else '':>20}\n")
    warning = _duplicate_warning(summary, unique_ids)
    if warning:
        write(f"\n{warning}\n")
    if summary.errors:
        write(f"\nerrors ({len(summary.errors)}):\n")
        for error in summary.errors:
            write(f"  {error}\n")


# ---- explain ----------------------------------------------------------------------------


def _explain(args) -> int:
    policy = _load(args.policy)
    if policy is None:
        return EXIT_POLICY
    found = failed = 0
    with _input(args) as source, _output(args.output) as out:
        run = _results(policy, source, _read_context(args.context, policy), args.unique_ids)
        for result in run:
            if args.record_id is not None and getattr(result, "id", None) != args.record_id:
                continue
            if args.period is not None and (isinstance(result, RecordError) or result.period != args.period):
                continue
            found += 1
            if isinstance(result, RecordError):
                failed += 1
                out.write(json.dumps(result.as_dict()) + "\n" if args.format == "json"
                          else printable(f"{result}\n\n"))
                continue
            explanation = result.explain()
            if args.format == "json":
                out.write(json.dumps(explanation.as_dict(), ensure_ascii=False) + "\n")
            else:  # text for people: control characters from the data shown escaped
                out.write(printable(explanation.text() + "\n\n"))
        warning = _duplicate_warning(run.summary, args.unique_ids)
    if warning:
        _say(warning)
    if (args.record_id is not None or args.period is not None) and not found:
        if args.period is None:
            _say(f"profit: no record with id '{args.record_id}' in {args.data}")
        else:
            which = f"id '{args.record_id}' and period {args.period}" if args.record_id is not None else f"period {args.period}"
            _say(f"profit: no decision with {which} in {args.data}")
        return EXIT_POLICY
    return EXIT_RECORDS if failed else EXIT_OK


# ---- report -----------------------------------------------------------------------------


def _report(args) -> int:
    policy = _load(args.policy)
    if policy is None:
        return EXIT_POLICY
    fmt = args.format or ("html" if args.output and args.output.lower().endswith((".html", ".htm")) else "text")
    with _input(args) as source:
        run = _results(policy, source, unique_ids=args.unique_ids)
        report = build_report(policy, run)
    with _output(args.output) as out:
        out.write(render_html(report) if fmt == "html" else printable(render_text(report)))
    summary = run.summary
    if args.output or fmt != "text":
        _say(summary.line())
    warning = _duplicate_warning(summary, args.unique_ids)
    if warning:
        _say(warning)
    _print_errors(summary)  # the report counts them; what went wrong goes to stderr, as for `run`
    return EXIT_RECORDS if summary.errors else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

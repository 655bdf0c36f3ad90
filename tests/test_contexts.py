"""Stored portfolio contexts (issue 9): what `profit run --save-context` writes, and how
reading one checks it.

A stored context carries the engine version, the policy that made it (its name, version
and the SHA-256 of its exact text) and a SHA-256 of its own content. Reading one checks
its size and nesting, that it is JSON holding an object, the engine version, the content
digest, every value against the declared schema, and the policy. Anything wrong is one
ContextError naming the file; the CLI prints it as one line, `profit: FILE: ...`, exit 1.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine import RecordError, cli, load_policy
from engine.portfolio import ContextError, PolicyStamp, PortfolioContext
from engine.portfolio.context import MAX_BYTES, MAX_DEPTH, content_digest
from engine.records import RecordSource

ROOT = Path(__file__).resolve().parents[1]
PORTFOLIO = ROOT / "policies" / "portfolio.policy"
PORTFOLIO_DATA = ROOT / "examples" / "portfolio_customers.csv"

TEXT = """policy "contexts"
version "1"
currency EUR
record c
  id          text key
  region      text default "north"
  calls       count default 0
  revenue     money
  referred_by text optional
table regional
  "north" = 600 EUR
  "south" = 300 EUR
cost centre   = allocate 900 EUR by calls
cost offices  = allocate regional by revenue within region
cost desk     = allocate 90 EUR equally
credit word   = referred 10% of revenue via referred_by
measure profit = revenue - costs + credits
classify k
  good  when profit > 0 EUR
  bad   otherwise
"""
ROWS = [
    {"id": "A", "region": "north", "calls": "1", "revenue": "1000.00", "referred_by": ""},
    {"id": "B", "region": "north", "calls": "2", "revenue": "3000.00", "referred_by": "A"},
    {"id": "C", "region": "south", "calls": "3", "revenue": "2000.00", "referred_by": "A"},
]
NEWCOMER = {"id": "N", "region": "south", "calls": "3", "revenue": "500.00", "referred_by": ""}
CSV = "id,region,calls,revenue,referred_by\n" + "".join(
    ",".join(row.values()) + "\n" for row in ROWS)
NEW_CSV = "id,region,calls,revenue,referred_by\nN,south,3,500.00,\nA,north,1,1000.00,\n"


@pytest.fixture(scope="module")
def policy():
    return load_policy(TEXT, filename="contexts.policy")


@pytest.fixture(scope="module")
def stored(policy):
    """The stored form of the run over ROWS, as `as_dict(policy)` gives it."""
    return policy.run(ROWS).summary.context.as_dict(policy)


def restamped(data: dict) -> dict:
    """The data with its content digest worked out again: only the schema can refuse it then."""
    return dict(data, digest=content_digest(data))


def refused(data, policy=None, *, source="ctx.json") -> str:
    """The one message reading `data` (JSON data, or text) gives."""
    with pytest.raises(ContextError) as error:
        if isinstance(data, str):
            PortfolioContext.loads(data, policy, source=source)
        else:
            PortfolioContext.loads(json.dumps(data), policy, source=source)
    message = str(error.value)
    assert message.startswith(f"{source}: "), message
    assert "\n" not in message and "Traceback" not in message
    return message


# ---- the stored form ----------------------------------------------------------------------


def test_a_stored_context_names_the_engine_the_policy_and_its_own_digest(policy, stored):
    assert list(stored) == ["engine", "policy", "label", "records", "allocations", "referrals", "digest"]
    assert stored["engine"] == engine.__version__
    assert stored["policy"] == {
        "name": "contexts", "version": "1",
        "digest": "sha256:" + hashlib.sha256(TEXT.encode("utf-8")).hexdigest()}
    assert policy.checked.digest == stored["policy"]["digest"]
    rest = {key: value for key, value in stored.items() if key != "digest"}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert stored["digest"] == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert stored["label"] == "this run" and stored["records"] == 3
    groups = stored["allocations"]["offices"]["groups"]
    assert groups == [
        {"group": "north", "pool": "600.00", "total": "4000", "customers": 2, "allocated": "600.00"},
        {"group": "south", "pool": "300.00", "total": "2000", "customers": 1, "allocated": "300.00"}]
    (desk,) = stored["allocations"]["desk"]["groups"]
    assert stored["allocations"]["desk"]["driver"] is None
    assert (desk["group"], desk["pool"], desk["customers"], desk["allocated"]) == (None, "90.00", 3, "90.00")
    assert stored["referrals"] == {"word": {"A": "500.00"}}


def test_decimals_are_written_plainly_never_with_an_exponent(policy):
    context = PortfolioContext("r", 1, {"allocations": {}, "referrals": {"word": {"A": D("1E+3"), "B": D("0E-7")}}})
    assert context.as_dict(policy)["referrals"]["word"] == {"A": "1000", "B": "0.0000000"}


def test_round_trip_through_json_text_and_a_file(policy, stored, tmp_path):
    run = policy.run(ROWS).summary.context
    for context in (PortfolioContext.from_dict(json.loads(json.dumps(stored)), policy),
                    PortfolioContext.loads(run.dumps(policy), policy)):
        assert context.parts == run.parts and context.label == run.label and context.records == run.records
        assert context.policy == PolicyStamp("contexts", "1", policy.checked.digest)
        assert context.as_dict() == stored  # stamped again as it was: one stored form
    path = tmp_path / "ctx.json"
    path.write_text(run.dumps(policy), encoding="utf-8")
    assert "\n  \"policy\": {\n" in path.read_text()  # indented, readable
    from_file = PortfolioContext.read(path, policy)
    assert from_file.source == str(path) and from_file.as_dict() == stored
    # deciding against the stored context is deciding against the run's own
    assert policy.evaluate(NEWCOMER, context=from_file).figures == policy.evaluate(NEWCOMER, context=run).figures
    decision = policy.evaluate(NEWCOMER, context=from_file)
    assert decision.figures["centre"] == D("450.00")  # 900 × 3 / 6
    assert decision.figures["desk"] == D("22.50")  # 90 / (3 + 1)


def test_a_runs_own_context_without_a_policy_is_bare_and_read_back_only_without_one(policy):
    run = policy.run(ROWS).summary.context
    bare = run.as_dict()
    assert "digest" not in bare and "policy" not in bare and "engine" not in bare
    assert PortfolioContext.from_dict(bare) == run
    assert "does not say which policy stored it" in refused(bare)
    with pytest.raises(ContextError, match="does not say which policy stored it"):
        PortfolioContext.from_dict(bare, policy)


# ---- malformed contexts: one clear error ----------------------------------------------------


def _edit(stored, change):
    data = copy.deepcopy(stored)
    change(data)
    return restamped(data)


def _group(data, key, value, allocation="offices", index=0):
    data["allocations"][allocation]["groups"][index][key] = value


MALFORMED = {
    "missing key": (lambda d: d.pop("records"), r"^ctx\.json: \"records\" is missing$"),
    "missing key in a group": (lambda d: d["allocations"]["offices"]["groups"][1].pop("pool"),
                               r"allocations\.offices\.groups\[1\]: \"pool\" is missing"),
    "missing section": (lambda d: d.pop("referrals"), r"\"referrals\" is missing"),
    "count as text": (lambda d: d.update(records="3"), r"records: expected a whole number, 0 or more, got \"3\""),
    "fractional count": (lambda d: _group(d, "customers", 1.5),
                         r"groups\[0\]\.customers: expected a whole number, 0 or more, got 1\.5"),
    "negative count": (lambda d: _group(d, "customers", -2), r"customers: -2 is not a whole number from 0"),
    "true as a count": (lambda d: d.update(records=True), r"records: expected a whole number, 0 or more, got true"),
    "label as a number": (lambda d: d.update(label=5), r"label: expected text, got 5"),
    "groups not a list": (lambda d: d["allocations"]["offices"].update(groups="everyone"),
                          r"allocations\.offices\.groups: expected a list, got \"everyone\""),
    "allocation not an object": (lambda d: d["allocations"].update(offices=[]),
                                 r"allocations\.offices: expected an object with driver, groups, got a list"),
    "pool as a number": (lambda d: _group(d, "pool", 600.0),
                         r"pool: expected a decimal written as a string \(\"12\.50\"\), got 600\.0"),
    "bad decimal": (lambda d: _group(d, "pool", "12,50"), r"groups\[0\]\.pool: \"12,50\" is not a decimal number"),
    "not a number": (lambda d: _group(d, "total", "NaN"), r"total: \"NaN\" is not a decimal number"),
    "infinite": (lambda d: _group(d, "total", "Infinity"), r"total: \"Infinity\" is not a decimal number"),
    "huge exponent": (lambda d: _group(d, "total", "1e999999999"),
                      r"total: \"1e999999999\" is out of range: a stored amount is below 10\^40"),
    "tiny exponent": (lambda d: _group(d, "total", "1e-999999999"), r"has more than 40 decimal places"),
    "too many digits": (lambda d: _group(d, "pool", "9" * 41), r"is out of range"),
    "negative total": (lambda d: _group(d, "total", "-1"),
                       r"^ctx\.json: allocations\.offices\.groups\[0\]\.total: \"-1\" is negative, which it cannot be$"),
    "negative pool": (lambda d: _group(d, "pool", "-600.00"), r"groups\[0\]\.pool: \"-600\.00\" is negative"),
    "more allocated than the pool": (lambda d: _group(d, "allocated", "600.01"),
                                     r"groups\[0\]\.allocated: 600\.01 allocated is more than the pool, 600\.00"),
    "a group twice": (lambda d: _group(d, "group", "north", index=1),
                      r"groups\[1\]\.group: the group \"north\" is given twice"),
    "credit not a decimal": (lambda d: d["referrals"]["word"].update(A=500),
                             r"referrals\.word\.A: expected a decimal written as a string"),
    "extra section": (lambda d: d.update(extras={}),
                      r"^ctx\.json: unknown key \"extras\" \(expected only engine, policy, label, records, "
                      r"allocations, referrals, digest\)$"),
    "extra key in a group": (lambda d: _group(d, "note", "x"), r"groups\[0\]: unknown key \"note\""),
    "policy without a digest": (lambda d: d["policy"].pop("digest"), r"policy: \"digest\" is missing"),
    "bad policy digest": (lambda d: d["policy"].update(digest="md5:1"),
                          r"policy\.digest: expected \"sha256:\" and 64 hexadecimal digits"),
    "lone surrogate": (lambda d: d.update(label="\ud800"), r"label: .* is not valid Unicode text"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_each_malformed_kind_is_one_clear_error(kind, stored):
    change, message = MALFORMED[kind]
    data = _edit(stored, change)  # the digest worked out again: the schema itself refuses it
    assert re.search(message, refused(data)), refused(data)


@pytest.mark.parametrize("kind", ["missing key", "negative total", "extra section", "huge exponent"])
def test_a_malformed_context_edited_by_hand_says_it_was_changed_and_what_is_wrong(kind, stored):
    change, message = MALFORMED[kind]
    data = copy.deepcopy(stored)
    change(data)  # the digest left as it was stored
    text = refused(data)
    assert text.startswith("ctx.json: was changed after it was stored (its content digest does not match), and ")
    assert re.search(message.lstrip("^").replace(r"ctx\.json: ", ""), text), text


@pytest.mark.parametrize("text, message", [
    ('{"label": ', r"^ctx\.json: is not valid JSON: Expecting value \(line 1, column 11\)$"),
    ("{'label': 'x'}", r"is not valid JSON: Expecting property name enclosed in double quotes \(line 1, column 2\)"),
    ("", r"^ctx\.json: is empty, not a stored context"),
    ("  \n", r"is empty"),
    ("[1, 2]", r"^ctx\.json: holds a list, not an object: not a stored context"),
    ('"context"', r"holds \"context\", not an object"),
    ("null", r"holds null, not an object"),
    ('{"label": NaN}', r"NaN is not a number a stored context can hold"),
    ('{"records": 1' + "0" * 10_000 + "}", r"a number of 10,001 digits is too large for a count"),
    ('{"label": "a", "label": "b"}', r"the key \"label\" appears twice in one object"),
    ("[" * 100_000 + "]" * 100_000, r"nests arrays and objects more than 16 levels deep"),
    ('{"a": ' * 50_000 + "1" + "}" * 50_000, r"nests arrays and objects more than 16 levels deep"),
    ("[" * 5_000, r"nests arrays and objects more than 16 levels deep"),
    ('["' + "]" * 40 + '"' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "]", r"more than 16 levels deep"),
])
def test_text_that_is_no_stored_context_is_one_clear_error(text, message):
    assert re.search(message, refused(text)), refused(text)


def test_brackets_inside_strings_do_not_count_as_nesting(policy, stored):
    data = restamped(dict(stored, label="[[[[[[[[[[[[[[[[[[[[[[[[[ {{{{{{{{{{{{{{{{{{{{ \\\" ]]]]"))
    assert PortfolioContext.loads(json.dumps(data), policy).label.startswith("[[[[")


def test_deep_or_large_input_is_refused_quickly():
    for text in ("[" * 5_000_000 + "]" * 5_000_000, "[]" * 5_000_000, "[[]" * 3_000_000):
        start = time.monotonic()
        with pytest.raises(ContextError):
            PortfolioContext.loads(text)
        assert time.monotonic() - start < 10


def test_a_file_too_large_not_utf8_or_missing_is_one_clear_error(tmp_path):
    large = tmp_path / "large.json"
    with open(large, "wb") as out:
        out.truncate(MAX_BYTES + 1)
    with pytest.raises(ContextError, match=rf"^{re.escape(str(large))}: is larger than 100,000,000 bytes"):
        PortfolioContext.read(large)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"label": "caf\xe9"}')
    with pytest.raises(ContextError, match=r"latin\.json: is not UTF-8 text \(byte 15 is 0xe9\)"):
        PortfolioContext.read(latin)
    with pytest.raises(ContextError, match=r"nowhere\.json: cannot be read: No such file or directory"):
        PortfolioContext.read(tmp_path / "nowhere.json")
    with pytest.raises(ContextError, match=r": cannot be read: Is a directory"):
        PortfolioContext.read(tmp_path)


def test_from_dict_takes_only_json_data(stored):
    for bad, message in [([stored], r"holds a list, not an object"),
                         (dict(stored, label=D("1")), r"holds a Decimal"),
                         (dict(stored, records=float("inf")), r"holds inf, which is not a finite number"),
                         ({1: "x"}, r"has the key 1, which is not text")]:
        with pytest.raises(ContextError, match=message):
            PortfolioContext.from_dict(bad)
    deep: dict = {}
    for _ in range(100_000):
        deep = {"x": deep}
    with pytest.raises(ContextError, match=r"nests lists and dicts more than 16 levels deep"):
        PortfolioContext.from_dict(deep)


# ---- edited, from another policy, from another engine ------------------------------------------


def test_an_edited_context_is_refused_as_changed(policy, stored):
    for change in (lambda d: _group(d, "total", "1.00"),
                   lambda d: d.update(label="the run over another.csv"),
                   lambda d: d["referrals"]["word"].update(A="5000.00"),
                   lambda d: d["policy"].update(version="2")):
        data = copy.deepcopy(stored)
        change(data)
        assert refused(data, policy) == (
            "ctx.json: was changed after it was stored (its content digest does not match): a stored context "
            "cannot be edited; store it again with `profit run POLICY DATA --save-context FILE`")


def test_a_context_from_another_policy_is_refused_naming_the_policy_that_stored_it(policy, stored):
    other = load_policy(TEXT.replace('version "1"', 'version "2"'), filename="other.policy")
    message = (f'ctx.json: was stored by the policy "contexts" version 1 ({policy.checked.digest[:19]}...), not by '
               'this policy "contexts" version 2 from other.policy; decide with the policy that stored it, or store '
               "a context with this one (`profit run POLICY DATA --save-context FILE`)")
    assert refused(stored, other) == message
    context = PortfolioContext.loads(json.dumps(stored), source="ctx.json")  # no policy given: checked when used
    context.check(policy)
    with pytest.raises(ContextError) as error:
        other.evaluate(NEWCOMER, context=context)
    assert str(error.value) == message
    with pytest.raises(ContextError, match="was stored by the policy"):
        list(other.run([NEWCOMER], context=context))
    with pytest.raises(ContextError, match="was stored by the policy"):
        context.check(other)
    with pytest.raises(ContextError, match="was stored by the policy"):
        context.as_dict(other)  # never stamped as another policy's


def test_the_digest_is_of_the_exact_text_so_a_whitespace_change_is_another_policy(policy, stored):
    spaced = load_policy(TEXT.replace("cost centre   =", "cost centre ="), filename="spaced.policy")
    assert (spaced.name, spaced.version) == (policy.name, policy.version)
    message = refused(stored, spaced)
    assert message.startswith('ctx.json: was stored by another text of the policy "contexts" version 1 (sha256:')
    assert "from spaced.policy): the digest is of the exact text, so any change counts, even of whitespace" in message
    # the same text loads to the same digest, from a file as from text
    assert load_policy(TEXT).checked.digest == policy.checked.digest
    assert load_policy("\ufeff" + TEXT).checked.digest == policy.checked.digest  # a BOM is not part of the text


def test_a_policy_file_has_the_digest_of_its_exact_text_line_ends_included(tmp_path, policy):
    path = tmp_path / "p.policy"
    path.write_bytes(TEXT.encode("utf-8"))
    assert load_policy(path).checked.digest == policy.checked.digest
    path.write_bytes(b"\xef\xbb\xbf" + TEXT.encode("utf-8"))  # a BOM is not part of the text
    assert load_policy(path).checked.digest == policy.checked.digest
    path.write_bytes(TEXT.replace("\n", "\r\n").encode("utf-8"))  # other line ends: another text
    assert load_policy(path).checked.digest != policy.checked.digest


def test_a_context_from_another_engine_version_is_refused(stored):
    data = restamped(dict(stored, engine="0.0.9"))
    assert refused(data) == (
        f'ctx.json: was stored by profit engine "0.0.9", and this is engine {engine.__version__}; store it '
        "again with `profit run POLICY DATA --save-context FILE`")


def test_without_a_source_the_message_names_the_stored_context(stored):
    with pytest.raises(ContextError, match=r"^the stored context: was changed after it was stored"):
        PortfolioContext.from_dict(dict(stored, records=4))


# ---- through the command ----------------------------------------------------------------------


def _files(tmp_path):
    policy_path = tmp_path / "contexts.policy"
    policy_path.write_text(TEXT, encoding="utf-8")
    (tmp_path / "run.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "new.csv").write_text(NEW_CSV, encoding="utf-8")
    return str(policy_path), str(tmp_path / "run.csv"), str(tmp_path / "new.csv")


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_cli_saves_a_stamped_context_and_decides_against_it(tmp_path, capsys, policy):
    policy_path, data, new = _files(tmp_path)
    saved = tmp_path / "ctx.json"
    code, _, _ = _cli(capsys, "run", policy_path, data, "--format", "json", "--output", str(tmp_path / "d.jsonl"),
                      "--save-context", str(saved))
    assert code == 0
    text = saved.read_text(encoding="utf-8")
    assert text.endswith("}\n") and json.loads(text)["label"] == "the run over run.csv"
    assert PortfolioContext.read(saved, policy).parts == policy.run(ROWS).summary.context.parts
    code, out, _ = _cli(capsys, "run", policy_path, new, "--format", "json", "--context", str(saved))
    assert code == 0
    assert [json.loads(line)["figures"]["centre"] for line in out.splitlines()] == ["450.00", "150.00"]
    code, out, _ = _cli(capsys, "explain", policy_path, new, "--id", "N", "--context", str(saved))
    assert code == 0 and "[portfolio: the run over run.csv]" in out


def _refused_by_cli(capsys, tmp_path, content, policy_path=None):
    given, _, new = _files(tmp_path)
    path = tmp_path / "stored.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2), encoding="utf-8")
    output = tmp_path / "decisions.jsonl"
    code, out, err = _cli(capsys, "run", policy_path or given, new, "--format", "json", "--output", str(output),
                          "--context", str(path))
    assert code == 1
    assert not output.exists()  # nothing written
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"profit: {path}: "), err
    return lines[0][len(f"profit: {path}: "):]


@pytest.mark.parametrize("kind", ["missing key", "count as text", "huge exponent", "negative total", "extra section"])
def test_cli_refuses_a_malformed_context_in_one_line(kind, capsys, tmp_path, stored):
    change, message = MALFORMED[kind]
    said = _refused_by_cli(capsys, tmp_path, _edit(stored, change))
    assert re.search(message.replace(r"^ctx\.json: ", ""), said), said


@pytest.mark.parametrize("content, message", [
    ("{", r"^is not valid JSON"),
    ("[]", r"^holds a list, not an object"),
    ("[" * 100_000 + "]" * 100_000, r"^nests arrays and objects more than 16 levels deep"),
    ('{"label": "x", "records": 1}', r"^does not say which policy stored it"),
])
def test_cli_refuses_text_that_is_no_context_in_one_line(content, message, capsys, tmp_path):
    assert re.search(message, _refused_by_cli(capsys, tmp_path, content))


def test_cli_refuses_a_context_from_another_policy_and_one_edited(capsys, tmp_path, stored):
    other = tmp_path / "other.policy"
    other.write_text(TEXT.replace('version "1"', 'version "2"'), encoding="utf-8")
    said = _refused_by_cli(capsys, tmp_path, stored, str(other))
    assert said.startswith('was stored by the policy "contexts" version 1 (sha256:')
    assert f'not by this policy "contexts" version 2 from {other}' in said
    data = copy.deepcopy(stored)
    _group(data, "total", "1.00")
    assert _refused_by_cli(capsys, tmp_path, data).startswith("was changed after it was stored")
    code, _, err = _cli(capsys, "run", str(other), str(tmp_path / "new.csv"), "--context", str(tmp_path / "no.json"))
    assert code == 1 and err.strip() == f"profit: {tmp_path / 'no.json'}: cannot be read: No such file or directory"


def test_the_issue_example_an_edited_pool_total_no_longer_turns_a_loss_into_billions(capsys, tmp_path):
    """C-1001 loses 1,198.99 EUR; a marketing total set to -1 once made it earn 6.4 billion, exit 0."""
    saved = tmp_path / "ctx.json"
    code, _, _ = _cli(capsys, "run", str(PORTFOLIO), str(PORTFOLIO_DATA), "--format", "json",
                      "--output", str(tmp_path / "all.jsonl"), "--save-context", str(saved))
    assert code == 0
    one = tmp_path / "one.csv"
    one.write_text("\n".join(PORTFOLIO_DATA.read_text(encoding="utf-8").splitlines()[:2]) + "\n", encoding="utf-8")
    code, out, _ = _cli(capsys, "run", str(PORTFOLIO), str(one), "--format", "json", "--context", str(saved))
    assert code == 0 and json.loads(out)["figures"]["profit"] == "-1198.99"
    data = json.loads(saved.read_text(encoding="utf-8"))
    data["allocations"]["marketing"]["groups"][0]["total"] = "-1"
    saved.write_text(json.dumps(data, indent=2), encoding="utf-8")
    code, out, err = _cli(capsys, "run", str(PORTFOLIO), str(one), "--format", "json", "--context", str(saved))
    assert code == 1 and out == ""
    assert err == (f"profit: {saved}: was changed after it was stored (its content digest does not match), and "
                   'allocations.marketing.groups[0].total: "-1" is negative, which it cannot be\n')


def test_a_record_error_against_a_stored_context_is_still_a_record_error(policy, stored):
    context = PortfolioContext.from_dict(stored, policy)
    with pytest.raises(RecordError, match="no pool 'offices' for region 'west' in the stored context this run"):
        policy.evaluate(dict(NEWCOMER, region="west"), context=context)


# ---- the documentation -------------------------------------------------------------------------


def test_docs_errors_shows_the_messages_the_engine_gives():
    """docs/errors.md's "A stored context that cannot be used" shows each refusal as the engine words it."""
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    section = text[text.index("### A stored context that cannot be used"):]
    shown = re.search(r"```console\n(.*?)```", section, re.S).group(1).splitlines()
    portfolio = load_policy(PORTFOLIO)
    source = PORTFOLIO.read_text(encoding="utf-8")
    stored = portfolio.run(RecordSource.open(PORTFOLIO_DATA)).summary.context.as_dict(portfolio)
    edited = copy.deepcopy(stored)
    _group(edited, "total", "1.00", allocation="marketing")
    broken = copy.deepcopy(stored)
    _group(broken, "total", "-1", allocation="marketing")
    newer = load_policy(source.replace('version "2026.1"', 'version "2026.2"'), filename="policies/portfolio.policy")
    spaced = load_policy(source.replace("currency EUR", "currency  EUR"), filename="policies/portfolio.policy")
    bare = {key: value for key, value in stored.items() if key not in ("engine", "policy", "digest")}
    actual = [refused(edited, source="context.json"), refused(broken, source="context.json"),
              refused(stored, newer, source="context.json"), refused(stored, spaced, source="context.json"),
              refused(restamped(dict(stored, engine="0.0.9")), source="context.json"),
              refused(bare, source="context.json"), refused(json.dumps(stored, indent=2).replace('",\n', '"\n', 1), source="context.json"),
              refused("[" * 5000, source="context.json")]
    assert len(shown) == len(actual)
    for line, message in zip(shown, actual):
        pattern = re.escape(line).replace(re.escape("..."), ".*")
        assert re.fullmatch(pattern, f"profit: {message}"), (line, message)


# ---- whatever the content: a context or one ContextError, then a decision or a RecordError ------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "-1", "0", "1e999999", "1E-50", "12.50", "north", "NaN", "-0.00", "1" * 60, "\u00e9"])
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


def _paths(data, where=()):
    """Every place in the data: (keys and positions, value)."""
    yield where, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, where + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, where + (index,))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choice=st.data())
def test_any_mutated_context_is_a_context_or_one_context_error(choice, policy, stored):
    data = copy.deepcopy(stored)
    places = [where for where, _ in _paths(data) if where and where[0] != "digest"]
    where = choice.draw(st.sampled_from(places))
    action = choice.draw(st.sampled_from(["replace", "delete", "add"]))
    parent = data
    for step in where[:-1]:
        parent = parent[step]
    if action == "replace":
        parent[where[-1]] = choice.draw(JSON_VALUES)
    elif action == "delete":
        del parent[where[-1]]
    elif isinstance(parent, dict):
        parent[choice.draw(st.text(max_size=6))] = choice.draw(JSON_VALUES)
    else:
        parent.append(choice.draw(JSON_VALUES))
    for candidate in (data, restamped(data)):
        try:
            context = PortfolioContext.loads(json.dumps(candidate), policy, source="ctx.json")
        except ContextError as error:
            assert str(error).startswith("ctx.json: ") and "\n" not in str(error)
            continue
        for record in (NEWCOMER, ROWS[0], dict(NEWCOMER, region="west")):
            try:
                policy.evaluate(record, context=context)
            except RecordError:
                pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=10**6), length=st.integers(min_value=1, max_value=40),
       insert=st.text(max_size=4))
def test_any_damaged_context_text_is_a_context_or_one_context_error(cut, length, insert, policy, stored):
    text = json.dumps(stored, indent=2)
    cut %= len(text)
    damaged = text[:cut] + insert + text[cut + length:]
    try:
        PortfolioContext.loads(damaged, policy, source="ctx.json")
    except ContextError as error:
        assert str(error).startswith("ctx.json: ") and "\n" not in str(error)

"""The built wheel works on its own: fresh venv, installed dependencies, no checkout on the path.

Builds the wheel from the repository root, installs it into a new virtual environment
(dependencies come from the package index; this can take a minute or two), then runs
that environment's python from an unrelated directory against a copy of
policies/standard.policy. Skipped only when pip cannot reach the package index.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NETWORK_ERRORS = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|"
    r"Name or service not known|nodename nor servname|Network is unreachable|ProxyError|ConnectTimeout|"
    r"Connection refused|Max retries exceeded|ReadTimeoutError|No route to host|"
    r"Could not fetch URL|SSLError|getaddrinfo failed")

SCRIPT = textwrap.dedent("""
    import sys
    from decimal import Decimal
    import engine
    from engine import load_policy, Decision

    policy = load_policy(sys.argv[1])
    decision = policy.evaluate({
        "id": "W-1", "name": "Wheel Test GmbH", "revenue": "240000.00", "cost_of_goods": "168000.00",
        "orders": "132", "manual_orders": "18", "deliveries": "74", "rush_deliveries": "3",
        "sales_visits": "12", "staff_hours": "48.0", "mailings": "24", "support_hours": "31.0",
        "support_calls": "41", "overdue": "38400.00", "days_overdue": "147",
    })
    assert isinstance(decision, Decision)
    assert decision.classification == "liability", decision.classification
    assert decision.figures["profit"] == Decimal("6425.90"), decision.figures["profit"]
    assert "liability" in str(decision.explain())
    print("ENGINE", engine.__file__)
    print("CLASS", decision.classification)
""")


def _run(command, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, **kwargs)


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, ROOT],
                 cwd=tmp_path, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(dist.glob("profit_engine-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    wheel = wheels[0]
    names = zipfile.ZipFile(wheel).namelist()
    assert "engine/__init__.py" in names
    assert "engine/py.typed" in names  # the package tells type checkers it is typed
    assert any(n.startswith("engine/grammar/") and n.endswith(".lark") for n in names), names
    assert not any(n.startswith(("tests/", "examples/")) for n in names)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    assert python.exists()

    installed = _run([python, "-m", "pip", "install", wheel], cwd=tmp_path, timeout=600)
    if installed.returncode != 0:
        output = installed.stdout + installed.stderr
        if NETWORK_ERRORS.search(output):
            pytest.skip(f"pip cannot reach the package index: {NETWORK_ERRORS.search(output).group(0)}")
        pytest.fail(f"pip install failed:\n{output}")

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    policy = workdir / "standard.policy"
    shutil.copyfile(ROOT / "policies" / "standard.policy", policy)
    script = workdir / "check_wheel.py"
    script.write_text(SCRIPT, encoding="utf-8")
    ran = _run([python, script, policy], cwd=workdir, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "CLASS liability" in ran.stdout
    engine_file = Path(ran.stdout.split("ENGINE ", 1)[1].splitlines()[0])
    assert env_dir.resolve() in engine_file.resolve().parents, f"imported {engine_file}, not the installed wheel"
    assert ROOT not in engine_file.resolve().parents

    profit = bin_dir / ("profit.exe" if os.name == "nt" else "profit")
    assert profit.exists(), sorted(p.name for p in bin_dir.iterdir())
    helped = _run([profit, "--help"], cwd=workdir, timeout=60)
    assert helped.returncode == 0, helped.stdout + helped.stderr
    assert "profit" in helped.stdout

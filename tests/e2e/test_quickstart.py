"""``model-gates quickstart`` from a fresh clone in a fresh virtual environment, with no network."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from gates.cli import main
from gates.quickstart import MODEL_NAME, WRITES
from gates.registry.local import LocalRegistry
from tests.conftest import REPO

NO_NETWORK = textwrap.dedent("""\
    import socket

    def _refuse(*args, **kwargs):
        raise OSError("the quickstart test forbids network access")

    socket.socket.connect = _refuse
    socket.socket.connect_ex = _refuse
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
""")


def fresh_clone(tmp: Path) -> Path:
    """Return a clone of the committed tree (the checkout itself when it is not a git repository)."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        return REPO
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True, timeout=120)
    return clone


def fresh_venv(tmp: Path, source: Path) -> Path:
    """Return the python of a new venv that sees ``source`` and the installed dependencies, nothing else.

    The dependencies come from this interpreter's site-packages by path (its .pth files, such as an
    editable install of the checkout under test, are not processed); ``source`` comes first.
    """
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    guard = tmp / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    (site / "a_source.pth").write_text(f"{source}\n{guard}\n")
    (site / "z_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def offline(cmd: list[str]) -> list[str]:
    """Prefix ``cmd`` with a private network namespace when this machine allows one."""
    if shutil.which("unshare") is None:
        return cmd
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    return ["unshare", "-rn", *cmd] if probe.returncode == 0 else cmd


@pytest.mark.slow
def test_quickstart_from_a_fresh_clone_without_network(tmp_path):
    source = fresh_clone(tmp_path)
    python = fresh_venv(tmp_path, source)
    demo = tmp_path / "demo"
    demo.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CI": "true"}
    res = subprocess.run(offline([str(python), "-I", "-m", "gates", "quickstart"]), check=False, cwd=demo,
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    probe = "import gates, json; from gates.checks import gate_registry; print(json.dumps([gates.__file__, " \
            "list(gate_registry())]))"
    imported, gates = json.loads(subprocess.run([str(python), "-I", "-c", probe], cwd=demo, capture_output=True,
                                                text=True, check=True).stdout)
    assert imported.startswith(str(source))
    out = res.stdout
    assert "verdict: PASS" in out and f"registered: {MODEL_NAME} version 2" in out
    assert "Reports: model-gates-report/" in out
    for step in ("model-gates history", "model-gates show", "model-gates rollback", "pytest --model-gates",
                 "--ci github"):
        assert step in out

    report = json.loads((demo / "model-gates-report" / "report.json").read_text())
    assert report["verdict"] == "pass"
    assert {c["gate"] for c in report["checks"]} == set(gates) >= {"data", "regression"}
    assert not any(c["status"] in ("error", "skipped") for c in report["checks"])
    assert report["model"]["baseline"]["uri"] == "registry:production (v1)"
    assert report["registration"] == {"registered": True, "backend": "local", "version": 2, "aliases": ["staging"],
                                      "already_registered": False}
    for name in ("report.xml", "report.md", "production/report.json"):
        assert (demo / "model-gates-report" / name).is_file()

    reg = LocalRegistry(demo / ".model-gates" / "registry")
    assert {v.version: v.aliases for v in reg.list_versions(MODEL_NAME)} == {1: ("production",), 2: ("staging",)}
    assert reg.get_version(MODEL_NAME, 1).lineage["verdict"] == "pass"
    assert reg.verify() == []
    reg.close()


def test_quickstart_refuses_a_folder_with_a_project_in_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gates.yaml").write_text("version: 1\n")
    assert main(["quickstart"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already has gates.yaml" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gates.yaml"]
    assert "gates.yaml" in WRITES

"""``pytest --model-gates``: the policy's checks as pytest items (DESIGN section 10).

This module is what the ``pytest11`` entry point loads in *every* pytest run of a project that
installs model-gates, so it imports nothing but pytest and the standard library: the engine
(pandas, numpy, the gates) is imported only when the gate is switched on, by
:mod:`pytest_model_gates.session`. Without ``--model-gates`` the plugin declares its options and
its marker, and nothing else happens.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

#: the name the session plugin is registered under (``config.pluginmanager.get_plugin``)
SESSION_PLUGIN = "model-gates-session"
DEFAULT_CONFIG = "gates.yaml"
DEFAULT_REPORT_DIR = "model-gates-report"
MSG_NO_DEFAULT_CONFIG = "{here}: config file not found (nor {root}); pass --model-gates-config FILE"
#: the fixtures exist in every run, so a test using one skips (not errors) without --model-gates
pytest_plugins = ["pytest_model_gates.fixtures"]
MARKER = (
    "model_gate(blocking=True): this test counts as a check in the model-gates verdict "
    "(with --model-gates); a failing blocking one stops registration"
)


@dataclass(frozen=True)
class Settings:
    """The plugin's switches, from the command line first, then the ini file."""

    config: Path
    report_dir: Path
    register: bool
    engine: str | None = None
    engine_address: str | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("model-gates", "model-gates: gate a candidate model inside pytest")
    group.addoption("--model-gates", action="store_true", default=None, dest="model_gates",
                    help="Run the model-gates policy: one test item per check (ini: model_gates).")
    group.addoption("--model-gates-config", dest="model_gates_config", metavar="FILE", default=None,
                    help=f"The policy file (default: {DEFAULT_CONFIG} in the folder pytest runs from, else in the "
                         "rootdir; ini: model_gates_config).")
    group.addoption("--model-gates-report-dir", dest="model_gates_report_dir", metavar="DIR", default=None,
                    help=f"Where report.json, report.xml and report.md are written (default: {DEFAULT_REPORT_DIR}; "
                         "ini: model_gates_report_dir).")
    group.addoption("--model-gates-register", action="store_true", default=None, dest="model_gates_register",
                    help="Register the candidate at session end if every blocking check and every blocking "
                         "model_gate test passed (ini: model_gates_register).")
    group.addoption("--model-gates-engine", dest="model_gates_engine", choices=("local", "dask"), default=None,
                    help="Where the gates compute (over the policy's engine.kind).")
    group.addoption("--model-gates-engine-address", dest="model_gates_engine_address", metavar="URL", default=None,
                    help="A running dask scheduler (implies --model-gates-engine dask).")
    parser.addini("model_gates", type="bool", default=False, help="Run the model-gates policy (like --model-gates).")
    parser.addini("model_gates_config", type="string", default="",
                  help="The policy file, relative to the ini file (like --model-gates-config).")
    parser.addini("model_gates_report_dir", type="string", default="",
                  help="The report folder, relative to the ini file (like --model-gates-report-dir).")
    parser.addini("model_gates_register", type="bool", default=False,
                  help="Register the candidate when the verdict passes (like --model-gates-register).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    settings = read_settings(config)
    if settings is None:
        return
    from pytest_model_gates.session import GateSession

    config.pluginmanager.register(GateSession(config, settings), SESSION_PLUGIN)


def read_settings(config: pytest.Config) -> Settings | None:
    """Return the plugin's settings, or None when the gate is not switched on.

    Paths given on the command line are relative to where pytest was invoked; paths from the ini
    file are relative to the ini file's folder. The report folder defaults to the invocation folder;
    the policy file to :func:`default_config`.
    """
    if not (config.getoption("model_gates") or config.getini("model_gates")):
        return None
    return Settings(
        config=_path(config, "model_gates_config") or default_config(config),
        report_dir=(_path(config, "model_gates_report_dir")
                    or (config.invocation_params.dir / DEFAULT_REPORT_DIR).resolve()),
        register=bool(config.getoption("model_gates_register") or config.getini("model_gates_register")),
        engine=config.getoption("model_gates_engine"),
        engine_address=config.getoption("model_gates_engine_address"),
    )


def default_config(config: pytest.Config) -> Path:
    """Return ``gates.yaml`` in the folder pytest was started from if there is one, else the rootdir's.

    The invocation folder comes first because a project (``model-gates quickstart``) may live in a
    subfolder of a checkout whose ini file makes the checkout the rootdir.
    """
    here = (config.invocation_params.dir / DEFAULT_CONFIG).resolve()
    root = (config.rootpath / DEFAULT_CONFIG).resolve()
    if here.is_file() or here == root:
        return here
    if root.is_file():
        return root
    raise pytest.UsageError(MSG_NO_DEFAULT_CONFIG.format(here=here, root=root))


def _path(config: pytest.Config, name: str) -> Path | None:
    """Return the path option ``name`` from the command line or the ini file, or None when unset."""
    given: str | None = config.getoption(name)
    if given:
        return (config.invocation_params.dir / given).resolve()
    from_ini: str = config.getini(name)
    if from_ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return (base / from_ini).resolve()
    return None

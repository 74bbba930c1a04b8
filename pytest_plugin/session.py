"""The gate inside one pytest session: load the policy, run the engine once, decide at the end.

Registered by :func:`pytest_model_gates.plugin.pytest_configure` only when ``--model-gates`` is on.
The engine runs once per session (at collection, on the context the fixtures share); its checks
become items, marked user tests are folded in from their reports, and at session end the verdict
is built, the reports written as ``model-gates run`` writes them, and the candidate registered
once if everything blocking passed. Under pytest-xdist the controller runs the engine, hands the
checks to its workers, and alone writes reports and registers.
"""
from __future__ import annotations

import fnmatch
import os
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pytest_model_gates.items import CheckItem, policy_file
from pytest_model_gates.markscan import MarkScan, may_hold_marked_tests
from pytest_model_gates.plugin import SESSION_PLUGIN, Settings
from pytest_model_gates.usertests import REPORT_ATTR, MarkedTests, check_id, marker_settings, soften

from gates.config import load_policy
from gates.errors import GateError, UserError
from gates.reporters.json_report import check_to_dict
from gates.results import CheckResult, Status

if TYPE_CHECKING:
    from gates.context import EvalContext
    from gates.runner import RunResult

#: key of a pytest-xdist worker's ``workerinput`` holding the controller's checks
WORKER_KEY = "model_gates_checks"
#: key of a worker's ``workeroutput`` telling the controller what it selected and deselected
SELECTION_KEY = "model_gates_selection"
#: pytest exit statuses after which the session's verdict means nothing: write nothing, register nothing
UNFINISHED = (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)
MSG_HEADER = "model-gates: policy {path} sha256 {sha256}, seed {seed}, mode {mode}, register {register}"
MSG_NOT_ASKED = "--model-gates-register was not given"
MSG_STOPPED = "the pytest session stopped early ({why}), so the verdict may be missing checks"
MSG_MISSING_TESTS = "{n} selected model_gate test(s) did not run: {names}"
MSG_DESELECTED = "{n} blocking check(s) deselected: {names}; run without -k/-m/--deselect for a verdict"
MSG_DROPPED = ("{n} blocking check(s) or model_gate test(s) collected but left out of the session without being "
               "deselected (a plugin or conftest hook dropped them): {names}")
MSG_UNCOLLECTED = "{n} test file(s) using model_gate never collected, so their marked tests did not run: {names}"
MSG_COLLECT_ERROR = "{path} (collection error)"
MSG_COLLECT_SKIP = "{path} (skipped: {reason})"
MSG_COLLECT_NOTHING = "{path} (collected no test)"
MSG_COLLECT_IGNORED = "{path} (ignored: --ignore, --ignore-glob, collect_ignore or a pytest_ignore_collect hook)"
#: folders pytest never descends by default (besides norecursedirs and virtualenvs): not scanned when ignored
NOT_SCANNED = ("__pycache__",)
MSG_INCOMPLETE = "  incomplete: {reason}"
MSG_SHADOW_VERDICT = " (shadow mode: not enforced)"
MSG_INTERRUPTED = "the session was interrupted: no report written, nothing registered"
MSG_NOT_RUN = "the policy could not be run, so no report was written: {problem}"
MSG_REGISTRY_ERROR = "registry error: {problem}"
MSG_FINISH_FAILED = "model-gates: error: {problem}"
MSG_VERDICT = "verdict: {verdict} ({counts}) for {name}"
MSG_REPORTS = "reports: {path} (also {others})"
MSG_REGISTERED = "registered: {name} version {version}{again}"
MSG_NOT_REGISTERED = "not registered: {reason}"


def session_of(config: pytest.Config) -> GateSession:
    """Return the session plugin (registered only when the gate is on)."""
    plugin = config.pluginmanager.get_plugin(SESSION_PLUGIN)
    assert isinstance(plugin, GateSession)
    return plugin


class GateSession:
    """The policy, the shared context and the engine's one result, for one pytest process."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        try:
            self.policy = load_policy(settings.config)
        except UserError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.config = config
        self.settings = settings
        self.tests = MarkedTests()
        self.selected_tests: set[str] = set()
        #: check ids of blocking checks and blocking marked tests that -k, -m or --deselect left out
        self.deselected: set[str] = set()
        self._deselected_nodes: set[str] = set()
        #: check ids of blocking checks and marked tests collected, neither deselected nor kept in the session's items
        self.dropped: set[str] = set()
        #: test files using the marker whose collection failed, was skipped or was ignored, with why
        self.uncollected: set[str] = set()
        #: every item collected, by node id, from the moment it was collected (before any hook could drop it)
        self._collected: dict[str, pytest.Item] = {}
        #: paths a pytest_ignore_collect hook (``--ignore``, ``collect_ignore``, ...) kept out of collection
        self._ignored: set[Path] = set()
        self._scan = MarkScan(config.rootpath)
        self.summary: list[str] = []
        #: set when pytest collects the policy file (pytest offers every file, collects only selected ones)
        self.is_collected = False
        self._context: EvalContext | None = None
        self._result: RunResult | None = None
        self._error: GateError | None = None

    # ------------------------------------------------------------------ the engine, once

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def is_controller(self) -> bool:
        """True in the pytest-xdist process that hands tests to workers and runs none itself."""
        return self.config.pluginmanager.hasplugin("dsession")

    @property
    def context(self) -> EvalContext:
        """The EvalContext the engine and the fixtures share (data and predictions loaded once)."""
        if self._context is None:
            from gates.engine import resolve_spec
            from gates.registrar import baseline_resolver
            from gates.runner import RunOptions, make_context

            engine = resolve_spec(self.policy.engine, self.settings.engine, self.settings.engine_address)
            self._context = make_context(self.policy, baseline_resolver(self.policy), RunOptions(engine=engine))
        return self._context

    def result(self) -> RunResult:
        """Return the engine's result, running every gate on the first call only.

        A user error is kept and raised again, so a broken policy is not run twice.
        """
        if self._error is not None:
            raise self._error
        if self._result is None:
            from gates.runner import close_context, run_policy

            try:
                self._result = run_policy(self.policy, context=self.context)
            except GateError as exc:
                self._error = exc
                raise
            finally:
                close_context(self.context)  # a cluster the engine started is not needed past the run
        return self._result

    def checks(self) -> list[dict[str, Any]]:
        """Return the checks in report form: the controller's on an xdist worker, else our own."""
        shipped = getattr(self.config, "workerinput", {}).get(WORKER_KEY)
        if shipped is not None:
            return list(shipped)
        return [check_to_dict(c) for c in self.result().verdict.checks]

    # ------------------------------------------------------------------ pytest hooks

    def pytest_report_header(self, config: pytest.Config) -> str:
        p = self.policy
        path = os.path.relpath(p.path, config.rootpath)
        return MSG_HEADER.format(path=path, sha256=p.sha256, seed=p.seed, mode=p.mode,
                                 register="yes" if self.settings.register else "no")

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        """Collect the policy file where pytest meets it (``pytest --model-gates gates.yaml`` works)."""
        return policy_file(parent, file_path) if file_path == self.policy.path else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        """Put the checks in front of the user's tests when pytest did not meet the policy file itself.

        Runs before ``-k`` and ``--deselect`` apply, so they select checks like any test. Items are
        remembered as they are collected (:meth:`pytest_itemcollected`), so a hook that runs before
        this one and drops an item does not drop it unseen.
        """
        self._remember(items)
        if self.is_collected:
            return
        collector = policy_file(session, self.policy.path)
        collector.ihook.pytest_collectstart(collector=collector)
        rep = collector.ihook.pytest_make_collect_report(collector=collector)
        collector.ihook.pytest_collectreport(report=rep)
        if rep.passed:
            checks = [node for node in rep.result if isinstance(node, pytest.Item)]
            self._remember(checks)
            items[:0] = checks

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        self._remember([item])

    def _remember(self, items: Sequence[pytest.Item]) -> None:
        for item in items:
            self._collected.setdefault(item.nodeid, item)

    @pytest.hookimpl(wrapper=True)
    def pytest_ignore_collect(self, collection_path: Path) -> Generator[None, bool | None, bool | None]:
        """Remember a path kept out of collection by ``--ignore``, ``--ignore-glob``, ``collect_ignore(_glob)``
        or a hook; pytest's own defaults (``__pycache__``, virtualenvs, ``norecursedirs``) are not remembered.
        """
        ignored = yield
        if ignored and not self._by_default(collection_path):
            self._ignored.add(collection_path)
        return ignored

    def _by_default(self, path: Path) -> bool:
        """True for a path pytest leaves out by default: ``__pycache__``, a virtualenv, a ``norecursedirs`` folder."""
        if path.name in NOT_SCANNED:
            return True
        if not path.is_dir():
            return False
        if (path / "pyvenv.cfg").is_file() or (path / "conda-meta" / "history").is_file():
            return True
        return any(_matches(path, pattern) for pattern in self.config.getini("norecursedirs"))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Remember a test file that uses the marker and was not collected (an error, a module-level skip,
        or no test at all, as ``--lf`` leaves a file it skips).

        Its marked tests are unknown, so they cannot be in the verdict: the verdict is then incomplete.
        """
        if not report.nodeid or (report.passed and ("::" in report.nodeid or report.result)):
            return
        rel = report.nodeid.split("::")[0]
        path = self.config.rootpath / rel
        if path == self.policy.path or not self._may_hold_marked_tests(path):
            return
        if report.passed:  # a test file that yielded nothing at all (--lf skips whole files this way)
            if path.is_file():
                self.uncollected.add(MSG_COLLECT_NOTHING.format(path=rel))
        elif report.failed:
            self.uncollected.add(MSG_COLLECT_ERROR.format(path=rel))
        else:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
            self.uncollected.add(MSG_COLLECT_SKIP.format(path=rel, reason=str(reason).removeprefix("Skipped: ")))

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        """Remember every blocking check or blocking marked test left out: the verdict is then incomplete."""
        for item in items:
            if isinstance(item, CheckItem):
                if item.check["blocking"]:
                    self.deselected.add(str(item.check["id"]))
                continue
            settings = marker_settings(item)
            if settings is not None and settings["blocking"]:
                self.deselected.add(check_id(item.nodeid))
        self._deselected_nodes.update(item.nodeid for item in items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.selected_tests = {item.nodeid for item in session.items
                               if not isinstance(item, CheckItem) and marker_settings(item) is not None}
        kept = {item.nodeid for item in session.items}
        self.dropped = {_check_of(item) for nodeid, item in self._collected.items()
                        if nodeid not in kept and nodeid not in self._deselected_nodes and _blocks(item)}
        self.uncollected.update(MSG_COLLECT_IGNORED.format(path=self._relative(p)) for p in self._ignored_test_files())

    def _ignored_test_files(self) -> list[Path]:
        """Return the ignored test files (and those in ignored folders) that may hold marked tests."""
        patterns = self.config.getini("python_files")
        found = []
        for path in sorted(self._ignored):
            files = _test_files(path, patterns, self.config.getini("norecursedirs")) if path.is_dir() else (
                [path] if path.suffix == ".py" and any(_matches(path, p) for p in patterns) else [])
            found += [f for f in files if f != self.policy.path and self._may_hold_marked_tests(f)]
        return found

    def _may_hold_marked_tests(self, path: Path) -> bool:
        return not path.is_file() or may_hold_marked_tests(path, self.config.rootpath, self._scan)

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.config.rootpath).as_posix()
        except ValueError:
            return str(path)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if isinstance(item, CheckItem):
            if report.skipped:
                report.longrepr = item.skip_location(report.longrepr)
            return report
        settings = marker_settings(item)
        if settings is not None:
            setattr(report, REPORT_ATTR, soften(report, settings, is_shadow=self.policy.is_shadow))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.is_worker:
            self.tests.observe(report)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand each pytest-xdist worker the controller's checks, so the gates run once."""
        try:
            node.workerinput[WORKER_KEY] = self.checks()
        except GateError:
            return  # each worker then meets the same error and reports it as a collection error

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Fold a pytest-xdist worker's selection into the controller's (the controller collects nothing)."""
        selection = getattr(node, "workeroutput", {}).get(SELECTION_KEY) or {}
        self.selected_tests.update(selection.get("selected", ()))
        self.deselected.update(selection.get("deselected", ()))
        self.dropped.update(selection.get("dropped", ()))
        self.uncollected.update(selection.get("uncollected", ()))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            self.config.workeroutput[SELECTION_KEY] = {  # type: ignore[attr-defined]
                "selected": sorted(self.selected_tests), "deselected": sorted(self.deselected),
                "dropped": sorted(self.dropped), "uncollected": sorted(self.uncollected)}
            return
        if self.config.option.collectonly:
            return
        if exitstatus in UNFINISHED:
            self.summary.append(MSG_INTERRUPTED)
            return
        try:
            result = self.result()
        except GateError as exc:
            self.summary.append(MSG_NOT_RUN.format(problem=exc))
            return
        if not self.finish(result, self._why_incomplete(session)):
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.summary:
            terminalreporter.write_sep("-", "model-gates")
            for line in self.summary:
                terminalreporter.write_line(line)

    # ------------------------------------------------------------------ the end of the session

    def finish(self, result: RunResult, incomplete: str | None) -> bool:
        """Build the verdict, register if asked and allowed, write the reports; False on failure."""
        from gates.finish import finish_run
        from gates.reporters.json_report import build_report
        from gates.runner import add_checks

        final = add_checks(result, self.tests.results(), incomplete)
        asked = self.settings.register
        not_asked = (incomplete or MSG_NOT_ASKED) if asked else MSG_NOT_ASKED
        done = finish_run(self.policy, final, build_report(final), Path(self.settings.report_dir),
                          register=asked and incomplete is None, not_asked=not_asked)
        if done.written:
            self.summary.extend(summary_lines(done.report, final.verdict.checks, done.written, incomplete))
        if done.error is None:
            return True
        if done.stage == "registry":  # the audit log failed: that fails only a session that meant to register
            self.summary.append(MSG_REGISTRY_ERROR.format(problem=done.error))
            return not asked
        self.summary.append(MSG_FINISH_FAILED.format(problem=done.error))
        return False

    def _why_incomplete(self, session: pytest.Session) -> str | None:
        """Return why this session's verdict cannot be trusted for registration, or None."""
        stopped = session.shouldfail or session.shouldstop
        if stopped:
            return MSG_STOPPED.format(why=stopped)
        for found, message in ((self.deselected, MSG_DESELECTED), (self.dropped, MSG_DROPPED),
                               (self.uncollected, MSG_UNCOLLECTED)):
            if found:
                names = sorted(found)
                more = f" and {len(names) - 3} more" if len(names) > 3 else ""
                return message.format(n=len(names), names=", ".join(names[:3]) + more)
        missing = sorted(self.selected_tests - self.tests.nodeids)
        if missing:
            return MSG_MISSING_TESTS.format(n=len(missing), names=", ".join(missing[:3]))
        return None


def _blocks(item: pytest.Item) -> bool:
    """True for a blocking check's item and for a user's test marked ``model_gate`` that blocks."""
    if isinstance(item, CheckItem):
        return bool(item.check["blocking"])
    settings = marker_settings(item)
    return settings is not None and bool(settings["blocking"])


def _check_of(item: pytest.Item) -> str:
    """Return the check id an item stands for."""
    return str(item.check["id"]) if isinstance(item, CheckItem) else check_id(item.nodeid)


def _matches(path: Path, pattern: str) -> bool:
    """True when ``path`` matches an ini glob as pytest reads one: the name alone, or the path's end when it has a ``/``."""
    if "/" not in pattern and os.sep not in pattern:
        return fnmatch.fnmatch(path.name, pattern)
    return fnmatch.fnmatch(path.as_posix(), pattern if pattern.startswith("/") else f"*/{pattern}")


def _test_files(folder: Path, patterns: Sequence[str], norecurse: Sequence[str]) -> list[Path]:
    """Return the files under ``folder`` pytest would collect as tests, not descending where it would not."""
    found = []
    for here, dirs, files in os.walk(folder):
        base = Path(here)
        dirs[:] = sorted(d for d in dirs if d not in NOT_SCANNED and not (base / d / "pyvenv.cfg").is_file()
                         and not any(_matches(base / d, p) for p in norecurse))
        found += [base / f for f in sorted(files) if f.endswith(".py") and any(_matches(base / f, p) for p in patterns)]
    return found


def summary_lines(report: Mapping[str, Any], checks: Sequence[CheckResult], written: Sequence[Path],
                  incomplete: str | None = None) -> list[str]:
    """Return the terminal summary: verdict, why it is incomplete, notes on warn/waived checks, reports, registration."""
    counts = ", ".join(f"{n} {s}" for s, n in report["summary"].items() if n)
    shadow = MSG_SHADOW_VERDICT if (report.get("policy") or {}).get("mode") == "shadow" else ""
    lines = [MSG_VERDICT.format(verdict=report["verdict"].upper() + shadow, counts=counts or "no checks",
                                name=report["model"]["name"])]
    if incomplete:
        lines.append(MSG_INCOMPLETE.format(reason=incomplete))
    for c in checks:
        if c.status is Status.WAIVED and c.waiver:
            lines.append(f"  WAIVED {c.id}: {c.waiver.get('reason', '')}")
        elif c.status is Status.WARN:
            lines.append(f"  WARN {c.id}: {c.message}")
    lines.append(MSG_REPORTS.format(path=written[0], others=", ".join(p.name for p in written[1:])))
    reg = report.get("registration") or {}
    if reg.get("registered"):
        again = " (already registered: same model bytes)" if reg.get("already_registered") else ""
        lines.append(MSG_REGISTERED.format(name=report["model"]["name"], version=reg.get("version"), again=again))
    elif reg.get("reason"):
        lines.append(MSG_NOT_REGISTERED.format(reason=reg["reason"]))
    return lines

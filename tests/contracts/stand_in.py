"""A stand-in GitHub / GitLab API on 127.0.0.1 that holds model-gates to the platforms' contracts.

Every request body is validated against the official request schema in
``../shared/contracts/`` (a body the real API would reject is answered 422 and recorded in
``errors``), and against the limits the schemas cannot say the way the platform counts them:
GitHub measures check-run ``summary`` and ``text`` (their schema ``maxLength``) and annotation
messages ("64 KB") in UTF-8 bytes, and limits comment bodies to the characters its contract's notes
give; state (check runs, statuses, comments) is kept so a second run can find and edit
what the first created. Faults (5xx, 429, 403) can be scripted per endpoint.
"""
from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

CONTRACTS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "contracts").resolve()
GITHUB_TOKEN = "ghs_standInToken0123456789abcdef"
GITLAB_TOKEN = "glpat-standInToken0123456789"
GITLAB_PREFIX = "/api/v4"


def contract(name: str) -> dict[str, Any]:
    """Return a contract file's endpoints, skipping the test when ``shared/contracts`` is absent."""
    return contract_file(name)["endpoints"]


def contract_file(name: str) -> dict[str, Any]:
    """Return a whole contract file (endpoints and notes), skipping the test when it is absent."""
    path = CONTRACTS / name
    if not path.is_file():
        pytest.skip(f"the platform contracts are not beside the project ({path} is missing)")
    return json.loads(path.read_text(encoding="utf-8"))


CHECK_RUN_ENDPOINTS = ("POST /repos/{owner}/{repo}/check-runs", "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}")
COMMENT_ENDPOINTS = ("POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
                     "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}")


@dataclass(frozen=True)
class GitHubLimits:
    """GitHub's limits as its contract states them, in the unit GitHub counts them in."""

    output_bytes: dict[str, int]  # check-run output field -> its maxLength, counted in UTF-8 bytes
    annotation_message_bytes: int
    comment_chars: int

    @classmethod
    def from_contract(cls, data: dict[str, Any]) -> GitHubLimits:
        output = data["endpoints"][CHECK_RUN_ENDPOINTS[0]]["requestBody"]["properties"]["output"]["properties"]
        message = output["annotations"]["items"]["properties"]["message"]["description"]
        kb = re.search(r"maximum size is (\d+) KB", message)
        chars = next(re.search(r"comment bodies are limited to ([\d,]+) characters", n)
                     for n in data["notes"] if "comment bodies" in n)
        assert kb and chars, "the GitHub contract no longer states the annotation and comment limits"
        return cls(output_bytes={f: output[f]["maxLength"] for f in ("summary", "text")},
                   annotation_message_bytes=int(kb.group(1)) * 1024,
                   comment_chars=int(chars.group(1).replace(",", "")))

    def problem(self, endpoint: str, body: Any) -> str | None:
        if not isinstance(body, dict):
            return None
        if endpoint in CHECK_RUN_ENDPOINTS:
            output = body.get("output") or {}
            for name, most in self.output_bytes.items():
                size = len(str(output.get(name, "")).encode("utf-8"))
                if size > most:
                    return f"output/{name}: {size} UTF-8 bytes, more than GitHub's {most}"
            for i, note in enumerate(output.get("annotations") or []):
                size = len(str(note.get("message", "")).encode("utf-8"))
                if size > self.annotation_message_bytes:
                    return f"output/annotations/{i}/message: {size} bytes, more than {self.annotation_message_bytes}"
        if endpoint in COMMENT_ENDPOINTS and len(str(body.get("body", ""))) > self.comment_chars:
            return f"body: {len(body['body'])} characters, more than GitHub's {self.comment_chars}"
        return None


@dataclass
class Recorded:
    method: str
    path: str
    endpoint: str | None
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=lambda: {"message": "stand-in fault"})


class StandIn:
    """The fake API: ``url`` to point a publisher at, ``requests`` and ``errors`` to assert on."""

    def __init__(self, platform: str, prefix: str | None = None) -> None:
        self.platform = platform
        self.prefix = (GITLAB_PREFIX if platform == "gitlab" else "") if prefix is None else prefix
        name = "github-rest-subset.json" if platform == "github" else "gitlab-rest-subset.json"
        data = contract_file(name)
        self.endpoints = data["endpoints"]
        self.limits = GitHubLimits.from_contract(data) if platform == "github" else None
        self.routes = [(key, _route(key)) for key in self.endpoints]
        self.token = GITHUB_TOKEN if platform == "github" else GITLAB_TOKEN
        self.requests: list[Recorded] = []
        self.errors: list[str] = []
        self.faults: dict[str, list[Fault]] = {}
        self.denied: dict[str, Fault] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.annotations: dict[int, list[dict[str, Any]]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.page_size_cap = 100
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def start(self) -> StandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- scripting ---------------------------------------------------------------------------
    def fail(self, endpoint: str, *faults: Fault) -> None:
        """Answer the next requests to ``endpoint`` (a contract key) with ``faults``, in order."""
        assert endpoint in self.endpoints, endpoint
        self.faults.setdefault(endpoint, []).extend(faults)

    def deny(self, endpoint: str, status: int = 403, message: str = "Resource not accessible by integration") -> None:
        """Answer every request to ``endpoint`` with ``status`` (a token without that permission)."""
        assert endpoint in self.endpoints, endpoint
        self.denied[endpoint] = Fault(status, body={"message": message})

    def calls(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def add_comment(self, thread: str, body: str) -> dict[str, Any]:
        """Seed a comment (someone else's, or an earlier run's)."""
        item = {"id": next(self._ids), "body": body}
        self.comments.setdefault(thread, []).append(item)
        return item

    # -- serving -----------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not path.startswith(self.prefix + "/"):
            return self._reject(method, path, None, query, headers, None, 404, f"outside {self.prefix}/")
        path = path[len(self.prefix):]
        endpoint, params = self._match(method, path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._reject(method, path, endpoint, query, headers, raw.decode(errors="replace"), 400, "not JSON")
        record = Recorded(method, path, endpoint, query, headers, body)
        with self._lock:
            self.requests.append(record)
        status, out_headers, payload = self._respond(record, params)
        record.status = status
        return status, out_headers, payload

    def _reject(self, method: str, path: str, endpoint: str | None, query: dict[str, str], headers: dict[str, str],
                body: Any, status: int, why: str) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(Recorded(method, path, endpoint, query, headers, body, status))
            self.errors.append(f"{method} {path}: {why}")
        return status, {}, {"message": why}

    def _match(self, method: str, path: str) -> tuple[str | None, dict[str, str]]:
        for key, regex in self.routes:
            verb, _, _ = key.partition(" ")
            m = regex.match(path)
            if verb == method and m:
                return key, m.groupdict()
        return None, {}

    def _respond(self, rec: Recorded, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if rec.endpoint is None:
            self.errors.append(f"{rec.method} {rec.path}: no such endpoint in the contract")
            return 404, {}, {"message": "Not Found"}
        problem = self._contract_problem(rec)
        if problem:
            self.errors.append(f"{rec.endpoint}: {problem}")
            return 422, {}, {"message": f"Validation Failed: {problem}"}
        if not self._authorised(rec.headers):
            return 401, {}, {"message": "Bad credentials"}
        with self._lock:
            queue = self.faults.get(rec.endpoint)
            fault = queue.pop(0) if queue else self.denied.get(rec.endpoint)
        if fault is not None:
            return fault.status, fault.headers, fault.body
        return self._serve(rec, params)

    def _contract_problem(self, rec: Recorded) -> str | None:
        spec = self.endpoints[rec.endpoint]
        if "requestBody" in spec:
            validator = jsonschema.Draft7Validator(spec["requestBody"], format_checker=jsonschema.FormatChecker())
            err = jsonschema.exceptions.best_match(validator.iter_errors(rec.body))
            if err is not None:
                return f"{'/'.join(map(str, err.absolute_path)) or 'body'}: {err.message[:300]}"
            beyond = self.limits.problem(rec.endpoint, rec.body) if self.limits else None
            if beyond:
                return beyond
        elif rec.body is not None:
            return "a body was sent to an endpoint that takes none"
        for q in spec.get("query", []):
            if q["name"] in rec.query:
                value = rec.query[q["name"]]
                value = int(value) if q["schema"].get("type") == "integer" and value.isdigit() else value
                err = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(q["schema"]).iter_errors(value))
                if err is not None:
                    return f"query {q['name']}: {err.message}"
        unknown = set(rec.query) - {q["name"] for q in spec.get("query", [])}
        return f"unknown query parameters {sorted(unknown)}" if unknown else None

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.platform == "github":
            return headers.get("authorization") == f"Bearer {self.token}"
        return headers.get("private-token") == self.token

    def _serve(self, rec: Recorded, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            return _SERVE[rec.endpoint](self, rec, params)

    def _page(self, rec: Recorded, items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        per_page = min(int(rec.query.get("per_page", 30)), self.page_size_cap)
        page = int(rec.query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers: dict[str, str] = {}
        if page * per_page < len(items):
            if self.platform == "github":
                nxt = f"{self.url}{rec.path}?per_page={per_page}&page={page + 1}"  # absolute, as GitHub sends
                headers["Link"] = f'<{nxt}>; rel="next"'
            else:
                headers["x-next-page"] = str(page + 1)
        return 200, headers, chunk


def _route(key: str) -> re.Pattern[str]:
    _, _, path = key.partition(" ")
    pattern = re.sub(r"\{(\w+)\}|:(\w+)", lambda m: f"(?P<{m.group(1) or m.group(2)}>[^/]+)", path)
    return re.compile(f"^{pattern}$")


def _gh_create_check_run(api: StandIn, rec: Recorded, p: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    run_id = next(api._ids)
    output = dict(rec.body.get("output") or {})
    api.annotations[run_id] = list(output.pop("annotations", []))
    api.check_runs[run_id] = {**rec.body, "output": output, "id": run_id}
    return 201, {}, api.check_runs[run_id]


def _gh_update_check_run(api: StandIn, rec: Recorded, p: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    run_id = int(p["check_run_id"])
    if run_id not in api.check_runs:
        return 404, {}, {"message": "Not Found"}
    output = dict(rec.body.get("output") or {})
    api.annotations[run_id] += output.pop("annotations", [])
    api.check_runs[run_id].update({**rec.body, "output": {**api.check_runs[run_id]["output"], **output}})
    return 200, {}, api.check_runs[run_id]


def _gh_status(api: StandIn, rec: Recorded, p: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    api.statuses.append({**rec.body, "sha": p["sha"]})
    return 201, {}, {"id": next(api._ids), **rec.body}


def _comments_of(api: StandIn, p: dict[str, str]) -> list[dict[str, Any]]:
    key = p.get("issue_number") or p.get("merge_request_iid") or ""
    return api.comments.setdefault(key, [])


def _list_comments(api: StandIn, rec: Recorded, p: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    return api._page(rec, _comments_of(api, p))


def _create_comment(api: StandIn, rec: Recorded, p: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    item = {"id": next(api._ids), "body": rec.body["body"]}
    _comments_of(api, p).append(item)
    return 201, {}, item


def _update_comment(api: StandIn, rec: Recorded, p: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    wanted = int(p.get("comment_id") or p.get("note_id") or 0)
    for items in api.comments.values():
        for item in items:
            if item["id"] == wanted:
                item["body"] = rec.body["body"]
                return 200, {}, item
    return 404, {}, {"message": "Not Found"}


def _gl_status(api: StandIn, rec: Recorded, p: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    api.statuses.append({**rec.body, "sha": p["sha"]})
    return 201, {}, {"id": next(api._ids), "status": rec.body["state"]}


_SERVE = {
    "POST /repos/{owner}/{repo}/check-runs": _gh_create_check_run,
    "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}": _gh_update_check_run,
    "POST /repos/{owner}/{repo}/statuses/{sha}": _gh_status,
    "GET /repos/{owner}/{repo}/issues/{issue_number}/comments": _list_comments,
    "POST /repos/{owner}/{repo}/issues/{issue_number}/comments": _create_comment,
    "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}": _update_comment,
    "GET /repos/{owner}/{repo}/pulls/{pull_number}": lambda api, rec, p: (200, {}, {"number": int(p["pull_number"])}),
    "POST /projects/:id/statuses/:sha": _gl_status,
    "GET /projects/:id/merge_requests/:merge_request_iid/notes": _list_comments,
    "POST /projects/:id/merge_requests/:merge_request_iid/notes": _create_comment,
    "PUT /projects/:id/merge_requests/:merge_request_iid/notes/:note_id": _update_comment,
}


def _handler(api: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out_headers, payload = api.handle(self.command, self.path, headers, raw)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in out_headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def serve(platform: str, prefix: str | None = None) -> Iterator[StandIn]:
    """Run a stand-in for ``platform`` for the duration of a fixture."""
    api = StandIn(platform, prefix).start()
    try:
        yield api
    finally:
        api.stop()


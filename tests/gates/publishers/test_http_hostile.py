"""A hostile or broken API on 127.0.0.1: tokens stay with their host, requests and runs have deadlines."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gates.publishers.http import (
    MSG_BUDGET_SPENT,
    MSG_SKIPPED,
    ApiClient,
    ApiError,
    Budget,
    BudgetSpent,
    RetryPolicy,
    origin,
)

TOKEN = "glpat-hostileTest0123456789"

Handler = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """A server on ``host`` whose every request is recorded (path and headers) and answered by ``handle``."""

    def __init__(self, host: str, handle: Handler) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                outer.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                try:
                    handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = _any

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(status: int = 200, body: object = None, headers: dict[str, str] | None = None) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        data = json.dumps(body if body is not None else {"id": 1}).encode()
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return handle


def drip(seconds: int) -> Handler:
    """Send headers at once, then one byte of the body a second for ``seconds`` seconds."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(seconds + 10))
        h.end_headers()
        for _ in range(seconds):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(1)

    return handle


def drip_headers(seconds: int) -> Handler:
    """Send the status line, then one byte of a header a second."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(seconds):
            h.wfile.write(b"a")
            h.wfile.flush()
            time.sleep(1)

    return handle


@pytest.fixture
def servers() -> Iterator[Callable[[str, Handler], Server]]:
    made: list[Server] = []

    def make(host: str, handle: Handler) -> Server:
        made.append(Server(host, handle))
        return made[-1]

    yield make
    for s in made:
        s.close()


def gitlab_client(url: str, **retry: float) -> ApiClient:
    return ApiClient(url, {"PRIVATE-TOKEN": TOKEN}, secrets=(TOKEN,), sleep=lambda s: None,
                     retry=RetryPolicy(**{"attempts": 2, **retry}))


def github_client(url: str) -> ApiClient:
    return ApiClient(url, {"Authorization": f"Bearer {TOKEN}"}, secrets=(TOKEN,), sleep=lambda s: None,
                     retry=RetryPolicy(attempts=2))


def test_origin_makes_default_ports_explicit():
    assert origin("https://Example.com/api") == origin("https://example.com:443/x") == ("https", "example.com", 443)
    assert origin("http://127.0.0.1:8080/a") != origin("http://127.0.0.2:8080/a")
    assert origin("http://h/a") != origin("https://h/a")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_host_is_refused_and_gets_no_token(servers, status):
    elsewhere = servers("127.0.0.2", reply())
    api = servers("127.0.0.1", reply(status, {}, {"Location": f"{elsewhere.url}/steal"}))
    with pytest.raises(ApiError) as err:
        gitlab_client(api.url + "/api/v4").request("POST", "/projects/1/statuses/abc", body={"state": "success"})
    assert "refused to follow a redirect" in str(err.value) and TOKEN not in str(err.value)
    assert elsewhere.seen == []
    assert len(api.seen) == 1 and api.seen[0][1]["private-token"] == TOKEN


@pytest.mark.parametrize("make", [gitlab_client, github_client])
def test_a_redirect_to_another_port_of_the_same_host_is_refused(servers, make):
    elsewhere = servers("127.0.0.1", reply())
    api = servers("127.0.0.1", reply(307, {}, {"Location": f"{elsewhere.url}/x"}))
    with pytest.raises(ApiError, match="refused"):
        make(api.url).request("GET", "/x")
    assert elsewhere.seen == []


def test_a_redirect_within_the_api_is_followed_with_the_token(servers):
    hops: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        hops.append(h.path)
        (reply(307, {}, {"Location": "/moved"}) if h.path == "/first" else reply(200, {"id": 7}))(h)

    api = servers("127.0.0.1", handle)
    assert gitlab_client(api.url).request("GET", "/first") == {"id": 7}
    assert hops == ["/first", "/moved"] and all(h["private-token"] == TOKEN for _, h in api.seen)


@pytest.mark.parametrize("make", [gitlab_client, github_client])
def test_a_pagination_link_to_another_host_is_refused(servers, make):
    elsewhere = servers("127.0.0.3", reply(200, []))
    api = servers("127.0.0.1", reply(200, [{"id": 1}], {"Link": f'<{elsewhere.url}/page2>; rel="next"'}))
    items: list[dict] = []
    with pytest.raises(ApiError, match="refused to follow a pagination link"):
        items.extend(make(api.url).paginate("/notes"))
    assert items == [{"id": 1}] and elsewhere.seen == []


def test_a_relative_pagination_link_stays_on_the_api(servers):
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/notes"):
            reply(200, [{"id": 1}], {"Link": '</next?page=2>; rel="next"'})(h)
        else:
            reply(200, [{"id": 2}])(h)

    api = servers("127.0.0.1", handle)
    assert [i["id"] for i in gitlab_client(api.url).paginate("/notes")] == [1, 2]


def test_a_dripping_body_is_cut_at_the_deadline(servers):
    api = servers("127.0.0.1", drip(60))
    started = time.monotonic()
    with pytest.raises(ApiError, match="deadline"):
        gitlab_client(api.url, deadline=1.5, read_timeout=5.0).request("GET", "/slow")
    held = time.monotonic() - started
    assert 1.4 <= held < 15  # one deadline, not retried, not the 60 s the server would drip
    assert len(api.seen) == 1


def test_dripping_headers_are_cut_at_the_deadline(servers):
    api = servers("127.0.0.1", drip_headers(60))
    started = time.monotonic()
    with pytest.raises(ApiError, match="deadline"):
        gitlab_client(api.url, deadline=1.5, read_timeout=5.0).request("GET", "/slow")
    assert time.monotonic() - started < 15


def test_a_spent_budget_skips_requests_without_sending_them(servers):
    api = servers("127.0.0.1", reply())
    c = ApiClient(api.url, {}, budget=Budget(0.0))
    with pytest.raises(BudgetSpent, match=MSG_SKIPPED):
        c.request("GET", "/x")
    assert api.seen == [] and c.budget_warning() == MSG_BUDGET_SPENT.format(budget=0.0, n=1)


def test_the_budget_bounds_a_request_deadline(servers):
    api = servers("127.0.0.1", drip(60))
    c = ApiClient(api.url, {}, retry=RetryPolicy(deadline=30.0), budget=Budget(1.0))
    started = time.monotonic()
    with pytest.raises(ApiError):
        c.request("GET", "/slow")
    assert time.monotonic() - started < 12


def test_retry_after_beyond_the_budget_is_not_waited_for(servers):
    api = servers("127.0.0.1", reply(429, {"message": "slow down"}, {"Retry-After": "50"}))
    slept: list[float] = []
    c = ApiClient(api.url, {}, sleep=slept.append, retry=RetryPolicy(attempts=3), budget=Budget(20.0))
    with pytest.raises(ApiError, match="beyond the .* left of the publishing budget"):
        c.request("GET", "/x")
    assert slept == [] and len(api.seen) == 1


@pytest.mark.parametrize("value, expected", [("7", 7.0), ("٧", None), ("²", None), ("1" * 40, None)])
def test_retry_after_takes_ascii_seconds_only(value, expected):
    from gates.publishers.http import _retry_after

    assert _retry_after(value, 0.0) == expected


@pytest.mark.parametrize("env, budget, deadline", [
    ({}, 120.0, 30.0),
    ({"MODEL_GATES_PUBLISH_BUDGET": "5", "MODEL_GATES_HTTP_TIMEOUT": "2.5"}, 5.0, 2.5),
    ({"MODEL_GATES_PUBLISH_BUDGET": "²", "MODEL_GATES_HTTP_TIMEOUT": "nan"}, 120.0, 30.0),
    ({"MODEL_GATES_PUBLISH_BUDGET": "-3", "MODEL_GATES_HTTP_TIMEOUT": "inf"}, 120.0, 30.0),
])
def test_budget_and_deadline_from_the_environment(env, budget, deadline):
    policy = RetryPolicy.from_env(env)
    assert (policy.budget, policy.deadline) == (budget, deadline)

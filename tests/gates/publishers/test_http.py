"""The shared HTTP client against a real server on 127.0.0.1: retries, waits, timeouts, masking."""
from __future__ import annotations

import email.utils
import random
import socket
import threading
from collections.abc import Iterator

import pytest

from gates.publishers.http import ApiClient, ApiError, RetryPolicy, backoff
from tests.contracts.stand_in import GITHUB_TOKEN, Fault, StandIn

STATUS = "POST /repos/{owner}/{repo}/statuses/{sha}"
COMMENTS = "GET /repos/{owner}/{repo}/issues/{issue_number}/comments"
NOTES = "GET /projects/:id/merge_requests/:merge_request_iid/notes"
NOW = 1_800_000_000.0


def client(api: StandIn, sleeps: list[float], *, attempts: int = 4, token: str = GITHUB_TOKEN,
           timeout: float = 5.0) -> ApiClient:
    header = {"Authorization": f"Bearer {token}"} if api.platform == "github" else {"PRIVATE-TOKEN": token}
    return ApiClient(api.url, header, secrets=(token,), sleep=sleeps.append, clock=lambda: NOW,
                     rng=random.Random(0), retry=RetryPolicy(attempts=attempts, read_timeout=timeout))


def post_status(c: ApiClient) -> object:
    return c.request("POST", "/repos/o/r/statuses/abc", body={"state": "success", "context": "model-gates"})


def test_5xx_is_retried_with_growing_jittered_backoff_then_succeeds(github_api):
    github_api.fail(STATUS, Fault(502), Fault(503), Fault(500))
    sleeps: list[float] = []
    assert post_status(client(github_api, sleeps))["state"] == "success"
    assert [r.status for r in github_api.calls(STATUS)] == [502, 503, 500, 201]
    policy = RetryPolicy()
    for attempt, delay in enumerate(sleeps):  # equal jitter: between half and all of base * 2**attempt
        ceiling = policy.base_delay * 2 ** attempt
        assert ceiling / 2 <= delay <= ceiling
    assert github_api.errors == []


def test_429_waits_what_retry_after_says(github_api):
    github_api.fail(STATUS, Fault(429, {"Retry-After": "7"}))
    sleeps: list[float] = []
    post_status(client(github_api, sleeps))
    assert sleeps == [7.0]


def test_retry_after_as_an_http_date(github_api):
    github_api.fail(STATUS, Fault(503, {"Retry-After": email.utils.formatdate(NOW + 12, usegmt=True)}))
    sleeps: list[float] = []
    post_status(client(github_api, sleeps))
    assert sleeps == [pytest.approx(12.0, abs=1.0)]


def test_primary_rate_limit_waits_until_the_reset_time(github_api):
    github_api.fail(STATUS, Fault(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 20)},
                                  {"message": "API rate limit exceeded"}))
    sleeps: list[float] = []
    post_status(client(github_api, sleeps))
    assert sleeps == [21.0]


def test_secondary_rate_limit_without_retry_after_waits_a_minute(github_api):
    github_api.fail(STATUS, Fault(403, body={"message": "You have exceeded a secondary rate limit. Please wait"}))
    sleeps: list[float] = []
    post_status(client(github_api, sleeps))
    assert len(sleeps) == 1 and sleeps[0] >= RetryPolicy().secondary_delay


def test_a_wait_longer_than_the_limit_gives_up_at_once(github_api):
    github_api.fail(STATUS, Fault(429, {"Retry-After": "3600"}))
    sleeps: list[float] = []
    with pytest.raises(ApiError, match="gave up") as err:
        post_status(client(github_api, sleeps))
    assert err.value.status == 429 and sleeps == [] and len(github_api.calls(STATUS)) == 1


def test_persistent_failure_raises_after_the_attempts(github_api):
    github_api.fail(STATUS, *[Fault(502)] * 10)
    sleeps: list[float] = []
    with pytest.raises(ApiError, match="gave up after 3 attempts") as err:
        post_status(client(github_api, sleeps, attempts=3))
    assert err.value.status == 502 and len(sleeps) == 2 and len(github_api.calls(STATUS)) == 3


def test_client_errors_are_not_retried(github_api):
    sleeps: list[float] = []
    with pytest.raises(ApiError, match="HTTP 401: Bad credentials") as err:
        post_status(client(github_api, sleeps, token="wrong-token"))
    assert err.value.status == 401 and sleeps == [] and len(github_api.requests) == 1


def test_the_token_never_appears_in_an_error(github_api):
    github_api.fail(STATUS, *[Fault(500, body={"message": f"echo of {GITHUB_TOKEN}"})] * 4)
    with pytest.raises(ApiError) as err:
        post_status(client(github_api, []))
    assert GITHUB_TOKEN not in str(err.value) and "echo of ***" in str(err.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_a_server_that_never_answers_times_out(silent_server):
    sleeps: list[float] = []
    c = ApiClient(f"http://127.0.0.1:{silent_server}", {}, sleep=sleeps.append,
                  retry=RetryPolicy(attempts=2, read_timeout=0.2))
    with pytest.raises(ApiError, match="ReadTimeout"):
        c.request("GET", "/anything")
    assert len(sleeps) == 1


def test_github_pages_follow_the_link_header(github_api):
    for i in range(7):
        github_api.add_comment("5", f"comment {i}")
    github_api.page_size_cap = 3
    items = list(client(github_api, []).paginate("/repos/o/r/issues/5/comments", {"per_page": 100}))
    assert [c["body"] for c in items] == [f"comment {i}" for i in range(7)]
    assert len(github_api.calls(COMMENTS)) == 3 and github_api.errors == []


def test_gitlab_pages_follow_x_next_page(gitlab_api):
    from tests.contracts.stand_in import GITLAB_TOKEN

    for i in range(5):
        gitlab_api.add_comment("9", f"note {i}")
    gitlab_api.page_size_cap = 2
    c = client(gitlab_api, [], token=GITLAB_TOKEN)
    items = list(c.paginate("/projects/12/merge_requests/9/notes", {"per_page": 100}))
    assert [n["body"] for n in items] == [f"note {i}" for i in range(5)]
    assert [r.query.get("page") for r in gitlab_api.calls(NOTES)] == [None, "2", "3"]


def test_backoff_never_exceeds_the_cap():
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    rng = random.Random(1)
    assert all(2.5 <= backoff(a, policy, rng) <= 5.0 for a in range(3, 12))


def test_retry_policy_from_env():
    policy = RetryPolicy.from_env({"MODEL_GATES_HTTP_ATTEMPTS": "2", "MODEL_GATES_HTTP_TIMEOUT": "1.5"})
    assert (policy.attempts, policy.read_timeout) == (2, 1.5)
    assert RetryPolicy.from_env({"MODEL_GATES_HTTP_ATTEMPTS": "zero"}) == RetryPolicy()

"""HTTP for publishers: deadlines, a budget, retries with backoff and jitter, pagination, token masking.

GitHub and GitLab share this client so that both platforms get the same robustness: a
publisher talks to an API that may be slow, rate limited, briefly down or hostile, and none of
that may ever change a verdict, leak a token or hold a CI job:

- the token goes only to the configured API origin (scheme, host, port): a redirect or a
  pagination link anywhere else is refused, never followed;
- each request has a total deadline (connect, headers and whole body), so a server that drips
  one byte a second is cut at the deadline;
- all requests of a run share one budget (``MODEL_GATES_PUBLISH_BUDGET`` seconds, default 120):
  once it is spent, the remaining requests are skipped, and no ``Retry-After`` longer than what
  is left is waited for.
"""
from __future__ import annotations

import email.utils
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

import gates

#: the one text a token is replaced by wherever a message could contain it
MASK = "***"
#: how many list pages a publisher reads at most (100 items each): a bound on a runaway loop
MAX_PAGES = 50
#: redirects followed at most (to the API's own origin only)
MAX_REDIRECTS = 5
#: seconds all publishing in a run may take, unless MODEL_GATES_PUBLISH_BUDGET says otherwise
DEFAULT_BUDGET = 120.0
MSG_GAVE_UP = "{what}: gave up after {attempts} attempts: {problem}"
MSG_WAIT_TOO_LONG = "{what}: rate limited for {seconds:.0f} s more (longer than the {limit:.0f} s we wait); gave up"
MSG_WAIT_BEYOND_BUDGET = (
    "{what}: the server asks to wait {seconds:.0f} s, beyond the {left:.0f} s left of the publishing budget; gave up"
)
MSG_OTHER_ORIGIN = "{what}: refused to follow {kind} to {origin}: the token is sent only to {api}"
MSG_DEADLINE = "no complete response within the {seconds:g} s deadline"
#: the message of a request skipped because the budget is spent (warnings holding it are merged into one)
MSG_SKIPPED = "skipped: the publishing budget is spent"
MSG_BUDGET_SPENT = (
    "publishing stopped: its {budget:g} s budget (MODEL_GATES_PUBLISH_BUDGET) is spent; {n} request(s) "
    "skipped; the verdict is unchanged"
)
_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")


class ApiError(Exception):
    """A request that failed for good (after retries); the message never contains the token."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BudgetSpent(ApiError):
    """A request that was not sent because the run's publishing budget is spent."""


class _Deadline(requests.Timeout):
    """A request whose complete response did not arrive by its deadline (not retried)."""


class Budget:
    """Seconds all publishing of one run may take: time spent in requests and in waits between them.

    Only publishing counts (not the gates before it), so a long gate run does not eat the budget.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.spent = 0.0
        self.skipped = 0

    def spend(self, seconds: float) -> None:
        self.spent += max(0.0, seconds)

    def left(self) -> float:
        return max(0.0, self.seconds - self.spent)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: a publisher should wait out a blip, not hold a CI job for minutes."""

    attempts: int = 4
    base_delay: float = 1.0
    #: longest single wait accepted; a server asking for more makes the request give up
    max_delay: float = 60.0
    #: seconds to wait for GitHub's secondary rate limit when it names no time (GitHub's guidance)
    secondary_delay: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    #: the whole of one request: connect, headers and body (a dripping server is cut here)
    deadline: float = 30.0
    #: seconds for all publishing of a run (MODEL_GATES_PUBLISH_BUDGET)
    budget: float = DEFAULT_BUDGET

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """Return the default policy, tuned by ``MODEL_GATES_HTTP_ATTEMPTS`` / ``MODEL_GATES_HTTP_TIMEOUT``.

        ``MODEL_GATES_HTTP_TIMEOUT`` is each request's total deadline in seconds,
        ``MODEL_GATES_PUBLISH_BUDGET`` the seconds all publishing of a run may take.
        """
        policy = cls()
        attempts = env.get("MODEL_GATES_HTTP_ATTEMPTS", "").strip()
        if re.fullmatch(r"[0-9]{1,3}", attempts) and int(attempts) >= 1:
            policy = replace(policy, attempts=int(attempts))
        timeout = _positive_seconds(env.get("MODEL_GATES_HTTP_TIMEOUT", ""))
        if timeout:
            policy = replace(policy, read_timeout=timeout, deadline=timeout)
        budget = _positive_seconds(env.get("MODEL_GATES_PUBLISH_BUDGET", ""))
        if budget:
            policy = replace(policy, budget=budget)
        return policy


class ApiClient:
    """A JSON API client with retries; ``sleep``, ``clock`` and ``rng`` are injectable for tests.

    Parameters
    ----------
    base_url : str
        API root, e.g. ``https://api.github.com`` or ``$CI_API_V4_URL``.
    headers : Mapping[str, str]
        Sent with every request (authentication included).
    secrets : tuple of str
        Texts masked in every message this client produces.
    """

    def __init__(self, base_url: str, headers: Mapping[str, str], *, secrets: tuple[str, ...] = (),
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 budget: Budget | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.origin = origin(self.base_url)
        self.retry = retry or RetryPolicy()
        self.budget = budget or Budget(self.retry.budget)
        self._secrets = tuple(s for s in secrets if s)
        self._sleep, self._clock = sleep, clock
        self._rng = rng or random.Random()
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": f"model-gates/{gates.__version__}",
                                      "Accept": "application/json"})
        self._session.headers.update(headers)

    def mask(self, text: str) -> str:
        """Return ``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def request(self, method: str, path: str, *, body: Any = None,
                params: Mapping[str, Any] | None = None) -> Any:
        """Send one request (retrying transient failures) and return its decoded JSON, or None."""
        return _decode(self._send(method, self._url(path), body, params))

    def budget_warning(self) -> str | None:
        """Return the one warning for requests skipped because the budget is spent, None if none were."""
        if not self.budget.skipped:
            return None
        return MSG_BUDGET_SPENT.format(budget=self.budget.seconds, n=self.budget.skipped)

    def paginate(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Yield the items of a list endpoint page by page (``Link: rel=next`` or ``x-next-page``)."""
        url, query = self._url(path), dict(params or {})
        for _ in range(MAX_PAGES):
            response = self._send("GET", url, None, query)
            items = _decode(response)
            yield from items if isinstance(items, list) else []
            nxt = response.links.get("next", {}).get("url")
            if nxt:
                url, query = urljoin(response.url or url, nxt), {}
                self._refuse_other_origin(url, "a pagination link")
            elif response.headers.get("x-next-page"):
                query["page"] = response.headers["x-next-page"]
            else:
                return

    def close(self) -> None:
        self._session.close()

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def _refuse_other_origin(self, url: str, kind: str) -> None:
        if origin(url) != self.origin:
            raise ApiError(self.mask(MSG_OTHER_ORIGIN.format(what=_shown(url), kind=kind, origin=_shown_origin(url),
                                                             api=_shown_origin(self.base_url))))

    def _send(self, method: str, url: str, body: Any, params: Mapping[str, Any] | None) -> requests.Response:
        what = self.mask(f"{method} {url}")
        self._refuse_other_origin(url, "a request")
        policy = self.retry
        problem, status = "", None
        for attempt in range(policy.attempts):
            delay: float | None
            try:
                response = self._follow(method, url, body, params)
            except _Deadline as exc:  # a server that slow will not be faster on a second try
                raise ApiError(self.mask(f"{what}: {exc}")) from None
            except requests.RequestException as exc:
                problem, delay = f"{type(exc).__name__}: {exc}", self._backoff(attempt)
            else:
                if response.status_code < 400:
                    return response
                status = response.status_code
                problem = f"HTTP {status}: {_api_message(response)}"
                delay = retry_delay(response, attempt, policy, self._clock(), self._rng)
                if delay is None:
                    raise ApiError(self.mask(f"{what}: {problem}"), status)
                if delay > policy.max_delay:
                    raise ApiError(self.mask(MSG_WAIT_TOO_LONG.format(
                        what=what, seconds=delay, limit=policy.max_delay)), status)
            if attempt + 1 < policy.attempts:
                if delay >= self.budget.left():
                    raise ApiError(self.mask(MSG_WAIT_BEYOND_BUDGET.format(
                        what=what, seconds=delay, left=self.budget.left())), status)
                self._sleep(delay)
                self.budget.spend(delay)
        raise ApiError(self.mask(MSG_GAVE_UP.format(what=what, attempts=policy.attempts, problem=problem)), status)

    def _follow(self, method: str, url: str, body: Any, params: Mapping[str, Any] | None) -> requests.Response:
        """Send a request, following redirects only within the API's origin (the token goes nowhere else)."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self._within_deadline(method, url, body, params)
            if not (response.is_redirect and response.headers.get("location")):
                return response
            url = urljoin(response.url or url, response.headers["location"])
            self._refuse_other_origin(url, f"a redirect ({response.status_code})")
            if response.status_code == 303 or (response.status_code in (301, 302) and method != "HEAD"):
                method, body = ("GET", None) if method != "GET" else (method, body)
            params = None  # the Location carries its own query
        raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def _within_deadline(self, method: str, url: str, body: Any, params: Mapping[str, Any] | None
                         ) -> requests.Response:
        """Return the complete response, or raise _Deadline when it is not all here in time.

        Socket timeouts bound each read, not the whole: a server sending a byte a second never
        trips them. The request runs in a daemon thread that is abandoned at the deadline (its
        socket is closed with the client, or with the process).
        """
        left = self.budget.left()
        if left <= 0:
            self.budget.skipped += 1
            raise BudgetSpent(MSG_SKIPPED)
        seconds = min(self.retry.deadline, left)
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["response"] = self._session.request(
                    method, url, json=body, params=params, allow_redirects=False,
                    timeout=(min(self.retry.connect_timeout, seconds), min(self.retry.read_timeout, seconds)))
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread below
                box["error"] = exc

        worker = threading.Thread(target=call, name="model-gates-http", daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(seconds)
        self.budget.spend(time.monotonic() - started)
        if worker.is_alive():
            raise _Deadline(MSG_DEADLINE.format(seconds=round(seconds, 3)))
        if "error" in box:
            raise box["error"]
        return box["response"]

    def _backoff(self, attempt: int) -> float:
        return backoff(attempt, self.retry, self._rng)


def response_id(data: Any) -> int:
    """Return the ``id`` of a created object, or raise ApiError when the API answered something else."""
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, int):
        return value
    raise ApiError(f"unexpected API response without an id: {str(data)[:200]}")


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Return an exponential delay with "equal jitter": half fixed, half random.

    Jitter spreads the retries of many CI jobs hitting the same API at once (AWS Architecture
    Blog, "Exponential Backoff And Jitter", 2015).
    """
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** attempt)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retry_delay(response: requests.Response, attempt: int, policy: RetryPolicy, now: float,
                rng: random.Random) -> float | None:
    """Return seconds to wait before retrying ``response``, or None when retrying cannot help.

    Retried: 5xx, 429, and GitHub's rate limits (403 with ``x-ratelimit-remaining: 0`` or a
    "secondary rate limit" message). The server's own ``Retry-After`` wins, then
    ``x-ratelimit-reset``, then exponential backoff.
    """
    status = response.status_code
    exhausted = response.headers.get("x-ratelimit-remaining") == "0"
    secondary = status == 403 and "secondary rate limit" in response.text.lower()
    if not (status >= 500 or status == 429 or (status == 403 and (exhausted or secondary
                                                                   or "retry-after" in response.headers))):
        return None
    told = _retry_after(response.headers.get("retry-after"), now)
    if told is not None:
        return told
    if exhausted and re.fullmatch(r"[0-9]{1,12}", response.headers.get("x-ratelimit-reset", "")):
        return max(0.0, int(response.headers["x-ratelimit-reset"]) - now) + 1.0
    if secondary:
        return max(policy.secondary_delay, backoff(attempt, policy, rng))
    return backoff(attempt, policy, rng)


def _retry_after(value: str | None, now: float) -> float | None:
    """Parse ``Retry-After``: delta-seconds or an HTTP date (RFC 9110, section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,12}", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def origin(url: str) -> tuple[str, str, int | None]:
    """Return (scheme, host, port) of ``url``, the port made explicit for http and https."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return scheme, "", -1  # a malformed port matches no origin
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _shown_origin(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


def _shown(url: str) -> str:
    """Return ``url`` without its query (which may carry private data) for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


def _positive_seconds(text: str) -> float | None:
    """Return ``text`` as positive seconds (ASCII digits, optionally a fraction), else None."""
    text = text.strip()
    return float(text) if _SECONDS.fullmatch(text) and float(text) > 0 else None


def _api_message(response: requests.Response) -> str:
    """Return the API's own error message (GitHub ``message``, GitLab ``message``/``error``)."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason or ""
    if isinstance(data, dict):
        msg = data.get("message") or data.get("error") or data
        return msg if isinstance(msg, str) else json.dumps(msg)[:200]
    return str(data)[:200]


def _decode(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None

"""HTTP for publishers: timeouts, retries with backoff and jitter, pagination, token masking.

GitHub and GitLab share this client so that both platforms get the same robustness: a
publisher talks to an API that may be slow, rate limited or briefly down, and none of that may
ever change a verdict or leak a token into a CI log.
"""
from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import requests

import gates

#: the one text a token is replaced by wherever a message could contain it
MASK = "***"
#: how many list pages a publisher reads at most (100 items each): a bound on a runaway loop
MAX_PAGES = 50
MSG_GAVE_UP = "{what}: gave up after {attempts} attempts: {problem}"
MSG_WAIT_TOO_LONG = "{what}: rate limited for {seconds:.0f} s more (longer than the {limit:.0f} s we wait); gave up"


class ApiError(Exception):
    """A request that failed for good (after retries); the message never contains the token."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """Return the default policy, tuned by ``MODEL_GATES_HTTP_ATTEMPTS`` / ``MODEL_GATES_HTTP_TIMEOUT``."""
        policy = cls()
        attempts, timeout = env.get("MODEL_GATES_HTTP_ATTEMPTS", ""), env.get("MODEL_GATES_HTTP_TIMEOUT", "")
        if attempts.isdigit() and int(attempts) >= 1:
            policy = replace(policy, attempts=int(attempts))
        if timeout.replace(".", "", 1).isdigit() and float(timeout) > 0:
            policy = replace(policy, read_timeout=float(timeout))
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
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
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

    def paginate(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Yield the items of a list endpoint page by page (``Link: rel=next`` or ``x-next-page``)."""
        url, query = self._url(path), dict(params or {})
        for _ in range(MAX_PAGES):
            response = self._send("GET", url, None, query)
            items = _decode(response)
            yield from items if isinstance(items, list) else []
            nxt = response.links.get("next", {}).get("url")
            if nxt:
                url, query = nxt, {}
            elif response.headers.get("x-next-page"):
                query["page"] = response.headers["x-next-page"]
            else:
                return

    def close(self) -> None:
        self._session.close()

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def _send(self, method: str, url: str, body: Any, params: Mapping[str, Any] | None) -> requests.Response:
        what = self.mask(f"{method} {url}")
        policy = self.retry
        problem, status = "", None
        for attempt in range(policy.attempts):
            delay: float | None
            try:
                response = self._session.request(method, url, json=body, params=params,
                                                  timeout=(policy.connect_timeout, policy.read_timeout))
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
                self._sleep(delay)
        raise ApiError(self.mask(MSG_GAVE_UP.format(what=what, attempts=policy.attempts, problem=problem)), status)

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
    if exhausted and response.headers.get("x-ratelimit-reset", "").isdigit():
        return max(0.0, int(response.headers["x-ratelimit-reset"]) - now) + 1.0
    if secondary:
        return max(policy.secondary_delay, backoff(attempt, policy, rng))
    return backoff(attempt, policy, rng)


def _retry_after(value: str | None, now: float) -> float | None:
    """Parse ``Retry-After``: delta-seconds or an HTTP date (RFC 9110, section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


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

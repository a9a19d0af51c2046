"""The HTTP session helper every service client uses: base URL, credentials, timeouts, retries of idempotent
calls, and one mapping of failures to ApiError. Also the readiness probe `up` and `status` use.

Passwords travel only as Basic auth or in a JSON body: never in a URL, an exception or a log line (a service that
echoes one in an error body has it replaced by ***).
"""

from __future__ import annotations

import time
from typing import Any

from stackctl.core.errors import StackError

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class ApiError(StackError):
    """A service API refused a call (`status` set) or gave no answer (`status` None: the request may or may not
    have been applied). The message names the call and the service's reason, never a credential."""

    def __init__(self, message: str, status: int | None = None, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.reason = reason


def probe(url: str, timeout: float = 2.0, auth: tuple[str, str] | None = None) -> tuple[bool, str]:
    """GET `url` (with Basic `auth`); ready means a 2xx answer. Returns (ok, a short reason when not ok)."""
    import requests  # kept off the --help path

    try:
        response = requests.get(url, timeout=timeout, auth=auth)
    except requests.RequestException as error:
        return False, f"{type(error).__name__}: no answer from {url}"
    if 200 <= response.status_code < 300:
        return True, ""
    reason = error_reason(response, (auth[1],) if auth else ())
    return False, f"{url} answered {response.status_code}" + (f": {reason[:120]}" if reason else "")


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def error_reason(response: Any, secrets: tuple[str, ...] = ()) -> str:
    """The short reason a service gives in its error body (Elasticsearch, Grafana, Kibana and Prometheus shapes)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Elasticsearch: {"error": {"type", "reason", "root_cause", "caused_by"}, "status"}
            reason = str(error.get("reason") or error.get("type") or "")
            causes = [error.get("caused_by")] + list(error.get("root_cause") or [])
            cause = next((str(c["reason"]) for c in causes if isinstance(c, dict) and c.get("reason")), "")
            if cause and cause not in reason:  # "failed to create repository" says less than what caused it
                reason = f"{reason}: {cause}" if reason else cause
        elif isinstance(error, str) and body.get("message"):  # Kibana: {"statusCode", "error", "message"}
            reason = f"{error}: {body['message']}"
        elif isinstance(error, str):  # Prometheus: {"status": "error", "errorType", "error"}
            reason = error
        reason = reason or str(body.get("message") or "")  # Grafana: {"message"}
    if not reason and not (isinstance(body, (dict, list)) and not body):  # an empty JSON body says nothing
        reason = (getattr(response, "text", "") or "").strip().replace("\n", " ")
    return scrub(reason, secrets)[:300]


class HttpApi:
    """One service's HTTP API as reached from this machine.

    `auth` is the default (user, password) for calls; a call may pass its own. Calls with idempotent methods are
    retried `retries` times when no answer came (connection refused or reset, timeout), backing off `backoff`
    seconds and doubling."""

    def __init__(self, base_url: str, title: str, auth: tuple[str, str] | None = None, timeout: float = 30.0,
                 retries: int = 2, backoff: float = 0.5, headers: dict[str, str] | None = None):
        import requests  # kept off the --help path

        self.base_url = base_url.rstrip("/")
        self.title = title
        self.auth = auth
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = requests.Session()
        self.session.headers.update(headers or {})

    def url(self, path: str) -> str:
        return self.base_url + path

    def call(self, method: str, path: str, what: str, *, auth: tuple[str, str] | None = None,
             json: Any = None, params: dict | None = None, data: Any = None, files: Any = None,
             headers: dict[str, str] | None = None, timeout: float | None = None, ok: tuple[int, ...] = (),
             secrets: tuple[str, ...] = ()):
        """One call; any status outside 2xx (and `ok`) or no answer raises ApiError naming `what`."""
        import requests

        auth = auth or self.auth
        secrets = tuple(s for s in ((auth[1],) if auth else ()) + secrets if s)
        url = self.url(path)
        attempts = 1 + (self.retries if method.upper() in IDEMPOTENT else 0)
        delay = self.backoff
        for attempt in range(attempts):
            try:
                response = self.session.request(method, url, auth=auth, json=json, params=params, data=data,
                                                files=files, headers=headers, timeout=timeout or self.timeout)
                break
            except requests.RequestException as error:
                if attempt + 1 == attempts:
                    raise ApiError(f"{what}: no answer from {self.title} at {url} ({type(error).__name__})") from None
                time.sleep(delay)
                delay *= 2
        if not (200 <= response.status_code < 300 or response.status_code in ok):
            reason = error_reason(response, secrets)
            detail = f": {reason}" if reason else ""
            raise ApiError(f"{what}: {self.title} at {url} answered {response.status_code}{detail}",
                           response.status_code, reason)
        return response

    def json(self, method: str, path: str, what: str, **kwargs) -> Any:
        """A call whose answer must be JSON."""
        response = self.call(method, path, what, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"{what}: {self.title} at {self.url(path)} answered {response.status_code} with a body "
                           "that is not JSON", response.status_code) from None

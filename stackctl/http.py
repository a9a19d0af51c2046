"""The HTTP shell: readiness probes from the host and the services' APIs (Elasticsearch security, Grafana users,
Kibana data views)."""

from __future__ import annotations

from stackctl.errors import StackError


def probe(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """GET `url`; ready means a 2xx answer. Returns (ok, a short reason when not ok)."""
    import requests  # kept off the --help path

    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as error:
        return False, f"{type(error).__name__}: no answer from {url}"
    if 200 <= response.status_code < 300:
        return True, ""
    return False, f"{url} answered {response.status_code}"


# --- service APIs ----------------------------------------------------------------------------------------------
# Every call takes the service's base URL (from the host) and credentials, so tests point it at a fake. Passwords
# travel only as Basic auth or in a JSON body: never in a URL, an exception or a log line.


class ApiError(StackError):
    """A service API refused a call (`status` set) or gave no answer (`status` None: the request may or may not
    have been applied). The message names the call and the service's reason, never a credential."""

    def __init__(self, message: str, status: int | None = None, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.reason = reason


class UserMissing(ApiError):
    """Elasticsearch has no such user (yet): it must exist before its password can be changed."""


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _reason(response, secrets: tuple[str, ...]) -> str:
    """The short reason a service gives in its error body (Elasticsearch, Grafana and Kibana shapes)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            reason = str(error.get("reason") or error.get("type") or "")
        elif isinstance(error, str) and body.get("message"):
            reason = f"{error}: {body['message']}"
        reason = reason or str(body.get("message") or "")
    if not reason:
        reason = (response.text or "").strip().replace("\n", " ")
    return _scrub(reason, secrets)[:300]


def _call(method: str, url: str, what: str, *, auth: tuple[str, str], body: dict | None = None,
          headers: dict[str, str] | None = None, timeout: float = 30.0, secrets: tuple[str, ...] = ()):
    """One authenticated JSON call; a non-2xx answer or no answer raises ApiError naming `what`."""
    import requests  # kept off the --help path

    secrets = tuple(s for s in (auth[1], *secrets) if s)
    try:
        response = requests.request(method, url, auth=auth, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as error:
        raise ApiError(f"{what}: no answer from {url} ({type(error).__name__})") from None
    if not 200 <= response.status_code < 300:
        reason = _reason(response, secrets)
        detail = f": {reason}" if reason else ""
        raise ApiError(f"{what}: {url} answered {response.status_code}{detail}", response.status_code, reason)
    return response


def _json(response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def es_authenticate(base_url: str, username: str, password: str, timeout: float = 10.0) -> dict:
    """GET /_security/_authenticate: who Elasticsearch takes these credentials for (401: it does not)."""
    response = _call("GET", f"{base_url}/_security/_authenticate", f"Elasticsearch authentication of {username}",
                     auth=(username, password), timeout=timeout)
    return _json(response)


def es_change_password(base_url: str, auth: tuple[str, str], username: str, new_password: str,
                       timeout: float = 30.0) -> None:
    """POST /_security/user/<username>/_password {"password": ...}, authenticated as `auth` (elastic, with its
    current password; for elastic itself too). Raises UserMissing when the user does not exist yet."""
    what = f"Elasticsearch password change of {username}"
    try:
        _call("POST", f"{base_url}/_security/user/{username}/_password", what, auth=auth,
              body={"password": new_password}, timeout=timeout, secrets=(new_password,))
    except ApiError as error:
        # Elasticsearch answers 400 "user must exist in order to change password" for an unknown native user.
        if error.status in (400, 404) and "must exist" in error.reason:
            raise UserMissing(error.message, error.status, error.reason) from None
        raise


def grafana_current_user(base_url: str, username: str, password: str, timeout: float = 10.0) -> dict:
    """GET /api/user: the signed-in user (401: Grafana does not accept these credentials)."""
    response = _call("GET", f"{base_url}/api/user", f"Grafana sign-in of {username}", auth=(username, password),
                     timeout=timeout)
    return _json(response)


def grafana_change_own_password(base_url: str, username: str, old_password: str, new_password: str,
                                timeout: float = 30.0) -> None:
    """PUT /api/user/password {"oldPassword", "newPassword", "confirmNew"} as the user itself, with its old password."""
    _call("PUT", f"{base_url}/api/user/password", f"Grafana password change of {username}",
          auth=(username, old_password),
          body={"oldPassword": old_password, "newPassword": new_password, "confirmNew": new_password},
          timeout=timeout, secrets=(new_password,))


def kibana_ensure_data_view(base_url: str, username: str, password: str, *, view_id: str = "stackctl-logs",
                            title: str = "logs-*", time_field: str = "@timestamp", name: str = "stackctl logs",
                            timeout: float = 30.0) -> dict:
    """Create or replace a Kibana data view with a fixed id (POST /api/data_views/data_view, override: true):
    calling it again changes nothing. Defaults: the stack's log data view over logs-*. Kibana before 8.2 has only
    the index patterns API (same call, `index_pattern` instead of `data_view`, no display name): used on a 404."""
    spec = {"id": view_id, "title": title, "timeFieldName": time_field}
    what = f"Kibana data view {view_id}"
    try:
        response = _call("POST", f"{base_url}/api/data_views/data_view", what, auth=(username, password),
                         body={"data_view": {**spec, "name": name}, "override": True},
                         headers={"kbn-xsrf": "true"}, timeout=timeout)
    except ApiError as error:
        if error.status != 404:
            raise
        response = _call("POST", f"{base_url}/api/index_patterns/index_pattern", what, auth=(username, password),
                         body={"index_pattern": spec, "override": True}, headers={"kbn-xsrf": "true"},
                         timeout=timeout)
    return _json(response)

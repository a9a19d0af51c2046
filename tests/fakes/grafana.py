"""FAKE: a small stand-in following Grafana's documented HTTP API, not the real service.

Source: grafana/grafana:public/api-merged.json (Swagger 2.0; status codes per operation as generated into
grafana/grafana-openapi-client-go) and the handlers it documents, pkg/api/datasources.go (checkDatasourceHealth),
pkg/api/dashboard.go, pkg/api/plugins.go (translatePluginRequestErrorToAPIError); notes in
/work/scratch/apis/grafana.md.

Only what stackctl calls: `GET /api/health` (no auth), `GET /api/user` (the signed-in user), `PUT /api/user/password`
(`{"oldPassword", "newPassword", "confirmNew"}`, as the user with its old password), the admin API's
`PUT /api/admin/users/:id/password` (`{"password"}`, Grafana admins only), `GET /api/datasources/uid/:uid` (404
"Data source not found"), `GET /api/datasources/uid/:uid/health` (200 `{"status": "OK", "message"}`; 400 with the same
shape when unhealthy; 404 "Plugin not found" for a type without a backend health check; 500 "Unable to load
datasource metadata" for an unknown uid) and `GET /api/dashboards/uid/:uid` (`{dashboard, meta}`, provisioned ones
with `meta.provisionedExternalId`; 404 "Dashboard not found"), with Basic auth and the message bodies Grafana answers
with (401 "Invalid username or password", 401 "Invalid old password", 400 "New password is too short").

`provision()` loads datasources the way Grafana's file provisioning does: every string is interpolated first
(`$VAR`, `${VAR}` from the environment, empty when unset; `$__file{path}`; `$$` is the escape for `$`;
pkg/services/provisioning/values/values.go), so an unescaped `${__span.traceId}` arrives empty.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.fakes.server import FakeServer, Reply, Request

_VARIABLE = re.compile(r"\$\$|\$__file\{([^}]*)\}|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
# Datasource types whose plugin has no backend, so Grafana has no health check to run for them.
FRONTEND_ONLY = {"alertmanager"}


def interpolate(value, environ: dict[str, str], files: dict[str, str]):
    """What Grafana's provisioning makes of a value from a provisioning file."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ, files) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ, files) for v in value]
    if not isinstance(value, str):
        return value

    def expand(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group(1) is not None:
            return files.get(match.group(1), "")
        return environ.get(match.group(2) or match.group(3), "")

    return _VARIABLE.sub(expand, value)


class FakeGrafana(FakeServer):
    def __init__(self, admin_user: str, admin_password: str) -> None:
        super().__init__()
        self.users: dict[str, dict] = {admin_user: {"id": 1, "password": admin_password, "isGrafanaAdmin": True}}
        self.fail_password_change: int | None = None  # answer this status to the next password change
        self.datasources: dict[str, dict] = {}  # by uid, as provisioned
        self.unhealthy: dict[str, str] = {}  # uid -> the message its health check fails with
        self.dashboards: dict[str, dict] = {}  # by uid: {"dashboard", "meta"}

    def provision(self, bundle: Path, environ: dict[str, str] | None = None, files: dict[str, str] | None = None) -> None:
        """Load the bundle's provisioned datasources and dashboards, as Grafana does at start."""
        import yaml

        text = (bundle / "grafana/provisioning/datasources/datasources.yaml").read_text()
        for i, ds in enumerate(yaml.safe_load(text).get("datasources") or [], start=1):
            ds = interpolate(ds, environ or {}, files or {})
            self.datasources[ds["uid"]] = {
                "id": i, "uid": ds["uid"], "orgId": 1, "name": ds["name"], "type": ds["type"], "access": ds["access"],
                "url": ds["url"], "user": "", "database": "", "basicAuth": bool(ds.get("basicAuth")),
                "basicAuthUser": ds.get("basicAuthUser", ""), "withCredentials": False,
                "isDefault": bool(ds.get("isDefault")), "jsonData": ds.get("jsonData") or {},
                "secureJsonFields": {k: True for k in ds.get("secureJsonData") or {}}, "version": 1,
                "readOnly": not ds.get("editable", False)}
        root = bundle / "grafana/dashboards"
        for path in sorted(root.rglob("*.json")):
            dashboard = json.loads(path.read_text())
            self.dashboards[dashboard["uid"]] = {
                "dashboard": {**dashboard, "id": len(self.dashboards) + 1, "version": 1},
                "meta": {"type": "db", "slug": dashboard["uid"], "provisioned": True,
                         "provisionedExternalId": path.relative_to(root).as_posix(), "folderTitle": path.parent.name}}

    def password_of(self, login: str) -> str | None:
        return self.users.get(login, {}).get("password")

    def handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.path == "/api/health":
            return Reply(200, {"database": "ok", "version": "12.4.10"})
        user = self._authenticate(request)
        if user is None:
            return Reply(401, {"message": "Invalid username or password", "messageId": "password-auth.failed",
                               "statusCode": 401, "traceID": ""})
        record = self.users[user]
        if request.method == "GET" and request.path == "/api/user":
            return Reply(200, {"id": record["id"], "login": user, "email": "admin@localhost", "name": "",
                               "isGrafanaAdmin": record["isGrafanaAdmin"], "orgId": 1})
        if request.method == "PUT" and request.path == "/api/user/password":
            body = request.json or {}
            if self.fail_password_change is not None:
                status, self.fail_password_change = self.fail_password_change, None
                return Reply(status, {"message": "Failed to change user password"})
            if body.get("oldPassword") != record["password"]:
                return Reply(401, {"message": "Invalid old password"})
            new = body.get("newPassword") or ""
            if "confirmNew" in body and body["confirmNew"] != new:
                return Reply(400, {"message": "New password and confirmation do not match"})
            if len(new) < 4:
                return Reply(400, {"message": "New password is too short"})
            record["password"] = new
            return Reply(200, {"message": "User password changed"})
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and parts[:3] == ["api", "datasources", "uid"] and len(parts) in (4, 5):
            return self._datasource(parts[3], health=len(parts) == 5 and parts[4] == "health")
        if request.method == "GET" and parts[:3] == ["api", "dashboards", "uid"] and len(parts) == 4:
            found = self.dashboards.get(parts[3])
            return Reply(200, found) if found else Reply(404, {"message": "Dashboard not found"})
        if request.method == "PUT" and len(parts) == 5 and parts[:3] == ["api", "admin", "users"] and parts[4] == "password":
            if not record["isGrafanaAdmin"]:
                return Reply(403, {"message": "Permission denied"})
            target = next((u for u, r in self.users.items() if str(r["id"]) == parts[3]), None)
            if target is None:
                return Reply(404, {"message": "user not found"})
            new = (request.json or {}).get("password") or ""
            if len(new) < 4:
                return Reply(400, {"message": "New password is too short"})
            self.users[target]["password"] = new
            return Reply(200, {"message": "User password updated"})
        return Reply(404, {"message": "Not found"})

    def _authenticate(self, request: Request) -> str | None:
        if request.auth is None:
            return None
        login, password = request.auth
        if login in self.users and self.users[login]["password"] == password:
            return login
        return None

    def _datasource(self, uid: str, health: bool) -> Reply:
        ds = self.datasources.get(uid)
        if not health:
            return Reply(200, ds) if ds else Reply(404, {"message": "Data source not found"})
        if ds is None:
            return Reply(500, {"message": "Unable to load datasource metadata"})
        if ds["type"] in FRONTEND_ONLY:
            return Reply(404, {"message": "Plugin not found"})
        if uid in self.unhealthy:
            return Reply(400, {"status": "ERROR", "message": self.unhealthy[uid]})
        return Reply(200, {"status": "OK", "message": "Data source is working"})

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

Dashboards and folders (public/api-merged.json: GET /search, GET|POST /folders, DELETE /folders/{uid},
POST /dashboards/db, DELETE /dashboards/uid/{uid}; pkg/api/dashboard.go, pkg/services/dashboards/errors.go,
pkg/services/search/model; notes in grafana.md): search hits `{uid, title, type, folderUid?, folderTitle?}` (a
dashboard at the root has no folderUid key); `GET /api/dashboards/uid` meta with `folderUid` ("" at the root),
`folderTitle` ("General" at the root) and, for provisioned ones, `provisionedExternalId` (the path relative to the
provider's directory; `provisioned` true since stackctl's provider has allowUiUpdates: false); saving over a
provisioned uid is a 400 "Cannot save provisioned dashboard", an unknown folderUid a 400 "folder not found", an
existing uid without overwrite a 412 version-mismatch; creating a folder whose uid exists is a 409. Provisioning makes
one folder per dashboard directory (foldersFromFilesStructure) with a generated uid and the directory's name.

`provision()` loads datasources the way Grafana's file provisioning does: every string is interpolated first
(`$VAR`, `${VAR}` from the environment, empty when unset; `$__file{path}`; `$$` is the escape for `$`;
pkg/services/provisioning/values/values.go), so an unescaped `${__span.traceId}` arrives empty.
"""

from __future__ import annotations

import json
import re
import uuid
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
        self.folders: dict[str, dict] = {}  # by uid: {"id", "uid", "title", "parentUid"?}

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
            folder = next((f for f in self.folders.values() if f["title"] == path.parent.name), None)
            if folder is None:  # foldersFromFilesStructure: a generated uid, the directory's name
                folder = self.add_folder(uuid.uuid4().hex[:14], path.parent.name)
            self.dashboards[dashboard["uid"]] = {
                "dashboard": {**dashboard, "id": len(self.dashboards) + 1, "version": 1},
                "meta": {"type": "db", "slug": dashboard["uid"], "provisioned": True,
                         "provisionedExternalId": path.relative_to(root).as_posix(), "folderUid": folder["uid"],
                         "folderTitle": folder["title"]}}

    def add_folder(self, uid: str, title: str, parent: str = "") -> dict:
        self.folders[uid] = {"id": len(self.folders) + 1, "uid": uid, "title": title,
                             **({"parentUid": parent} if parent else {})}
        return self.folders[uid]

    def add_dashboard(self, dashboard: dict, folder_uid: str = "") -> None:
        """A dashboard a user made in the UI."""
        folder = self.folders.get(folder_uid)
        self.dashboards[dashboard["uid"]] = {
            "dashboard": {**dashboard, "id": len(self.dashboards) + 1, "version": dashboard.get("version", 1)},
            "meta": {"type": "db", "slug": dashboard["uid"], "provisioned": False, "provisionedExternalId": "",
                     "folderUid": folder_uid, "folderTitle": folder["title"] if folder else "General"}}

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
        if request.method == "DELETE" and parts[:3] == ["api", "dashboards", "uid"] and len(parts) == 4:
            found = self.dashboards.get(parts[3])
            if found is None:
                return Reply(404, {"message": "Dashboard not found"})
            if found["meta"].get("provisionedExternalId"):
                return Reply(400, {"message": "provisioned dashboard cannot be deleted"})
            del self.dashboards[parts[3]]
            return Reply(200, {"title": found["dashboard"].get("title"), "message": "Dashboard deleted", "id": 1})
        if request.method == "POST" and parts == ["api", "dashboards", "db"]:
            return self._save_dashboard(request.json or {})
        if request.method == "GET" and parts == ["api", "search"]:
            return self._search(request)
        if parts[:2] == ["api", "folders"]:
            return self._folder_call(request, parts[2:])
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

    # --- dashboards and folders ---------------------------------------------------------------------------------

    def _search(self, request: Request) -> Reply:
        if (request.query.get("type") or ["dash-db"])[0] != "dash-db":
            return Reply(200, [])
        limit = int((request.query.get("limit") or ["1000"])[0])
        page = int((request.query.get("page") or ["1"])[0])
        hits = []
        for uid, item in sorted(self.dashboards.items(), key=lambda kv: kv[1]["dashboard"].get("title", "").lower()):
            meta = item["meta"]
            hit = {"id": item["dashboard"]["id"], "uid": uid, "orgId": 1, "title": item["dashboard"].get("title", ""),
                   "uri": f"db/{uid}", "url": f"/d/{uid}/{uid}", "slug": "", "type": "dash-db",
                   "tags": item["dashboard"].get("tags") or [], "isStarred": False, "sortMeta": 0, "isDeleted": False}
            if meta.get("folderUid"):
                hit.update(folderUid=meta["folderUid"], folderTitle=meta["folderTitle"],
                           folderUrl=f"/dashboards/f/{meta['folderUid']}/")
            hits.append(hit)
        return Reply(200, hits[(page - 1) * limit: page * limit])

    def _save_dashboard(self, body: dict) -> Reply:
        dashboard = body.get("dashboard") or {}
        uid = dashboard.get("uid") or uuid.uuid4().hex[:14]
        if not dashboard.get("title"):
            return Reply(400, {"status": "empty-name", "message": "Dashboard title cannot be empty"})
        folder_uid = body.get("folderUid") or ""
        if folder_uid and folder_uid not in self.folders:
            return Reply(400, {"message": "folder not found"})
        existing = self.dashboards.get(uid)
        if existing is not None and existing["meta"].get("provisionedExternalId"):
            return Reply(400, {"message": "Cannot save provisioned dashboard"})
        if existing is not None and not body.get("overwrite") and \
                dashboard.get("version") != existing["dashboard"].get("version"):
            return Reply(412, {"status": "version-mismatch", "message": "The dashboard has been changed by someone else"})
        version = existing["dashboard"]["version"] + 1 if existing else 1
        self.add_dashboard({**dashboard, "uid": uid, "version": version}, folder_uid)
        return Reply(200, {"id": self.dashboards[uid]["dashboard"]["id"], "uid": uid, "url": f"/d/{uid}/x",
                           "status": "success", "version": version, "slug": uid, "folderUid": folder_uid})

    def _folder_call(self, request: Request, rest: list[str]) -> Reply:
        if request.method == "GET" and not rest:
            parent = (request.query.get("parentUid") or [""])[0]
            return Reply(200, [{k: f[k] for k in ("id", "uid", "title", "parentUid") if k in f}
                               for f in self.folders.values() if f.get("parentUid", "") == parent])
        if request.method == "POST" and not rest:
            body = request.json or {}
            uid = body.get("uid") or uuid.uuid4().hex[:14]
            if uid in self.folders:
                return Reply(409, {"message": "a folder with the same uid already exists"})
            if not body.get("title"):
                return Reply(400, {"message": "folder title cannot be empty"})
            folder = self.add_folder(uid, body["title"], body.get("parentUid") or "")
            return Reply(200, {**folder, "orgId": 1, "url": f"/dashboards/f/{uid}/", "version": 1})
        if request.method == "DELETE" and len(rest) == 1:
            if self.folders.pop(rest[0], None) is None:
                return Reply(404, {"message": "folder not found"})
            for uid in [u for u, d in self.dashboards.items() if d["meta"].get("folderUid") == rest[0]]:
                del self.dashboards[uid]
            return Reply(200, {"message": "Folder deleted", "id": 1})
        return Reply(404, {"message": "Not found"})

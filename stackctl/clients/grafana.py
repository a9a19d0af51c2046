"""Grafana's HTTP API: signing in, a user changing their own password, datasources (and their health check),
dashboards (search, by uid, saving) and folders.

Shapes follow Grafana's OpenAPI description (grafana/grafana public/api-merged.json: GET /user, PUT /user/password,
GET /datasources/uid/{uid}, GET /datasources/uid/{uid}/health, GET /dashboards/uid/{uid}, GET /search,
POST /dashboards/db, GET|POST /folders); the health check answers 200 {"status": "OK", "message"} or 400 with the
same shape when the datasource is not healthy (pkg/api/datasources.go, checkDatasourceHealth). A dashboard comes from
provisioning when its meta.provisionedExternalId is not empty (pkg/api/dashboard.go, GetDashboard)."""

from __future__ import annotations

from stackctl.clients.http import ApiError, HttpApi


class Grafana(HttpApi):
    def __init__(self, base_url: str, auth: tuple[str, str] | None = None, **kwargs):
        super().__init__(base_url, "Grafana", auth, **kwargs)

    def current_user(self, username: str, password: str, timeout: float = 10.0) -> dict:
        """GET /api/user: the signed-in user (401: Grafana does not accept these credentials)."""
        return self.json("GET", "/api/user", f"Grafana sign-in of {username}", auth=(username, password),
                         timeout=timeout)

    def change_own_password(self, username: str, old_password: str, new_password: str) -> None:
        """PUT /api/user/password {"oldPassword", "newPassword", "confirmNew"} as the user, with its old password."""
        self.call("PUT", "/api/user/password", f"Grafana password change of {username}",
                  auth=(username, old_password), secrets=(new_password,),
                  json={"oldPassword": old_password, "newPassword": new_password, "confirmNew": new_password})

    def datasource(self, uid: str, timeout: float | None = None) -> dict | None:
        """GET /api/datasources/uid/{uid}: the datasource as Grafana holds it (jsonData as provisioned); None: 404."""
        response = self.call("GET", f"/api/datasources/uid/{uid}", f"Grafana datasource {uid}", ok=(404,),
                             timeout=timeout)
        return None if response.status_code == 404 else response.json()

    def datasource_health(self, uid: str, timeout: float | None = None) -> tuple[int, dict]:
        """GET /api/datasources/uid/{uid}/health: (HTTP status, body). 200 OK; 400 unhealthy (its message says
        why); 404 the datasource's plugin has no backend health check; 500 Grafana cannot load the datasource."""
        response = self.call("GET", f"/api/datasources/uid/{uid}/health", f"Grafana health check of {uid}",
                             ok=(400, 404, 500), timeout=timeout)
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text.strip()[:200]}
        return response.status_code, body if isinstance(body, dict) else {"message": str(body)}

    def dashboard(self, uid: str, timeout: float | None = None) -> dict | None:
        """GET /api/dashboards/uid/{uid}: {dashboard, meta}; None: 404."""
        response = self.call("GET", f"/api/dashboards/uid/{uid}", f"Grafana dashboard {uid}", ok=(404,),
                             timeout=timeout)
        return None if response.status_code == 404 else response.json()

    def search_dashboards(self, timeout: float | None = None) -> list[dict]:
        """GET /api/search?type=dash-db, page by page: every dashboard's hit ({uid, title, folderUid?, ...})."""
        hits: list[dict] = []
        page = 1
        while True:
            batch = self.json("GET", "/api/search", "Grafana dashboard search", timeout=timeout,
                              params={"type": "dash-db", "limit": 5000, "page": page})
            if not isinstance(batch, list):
                raise ApiError(f"Grafana dashboard search: {self.url('/api/search')} did not answer a list")
            hits += batch
            if len(batch) < 5000:
                return hits
            page += 1

    def folders(self, parent_uid: str = "", timeout: float | None = None) -> list[dict]:
        """GET /api/folders ([{uid, title, parentUid?}]); with `parent_uid`, that folder's subfolders (nested
        folders, Grafana 11+)."""
        params: dict = {"limit": 1000}
        if parent_uid:
            params["parentUid"] = parent_uid
        body = self.json("GET", "/api/folders", "Grafana folders", params=params, timeout=timeout)
        if not isinstance(body, list):
            raise ApiError(f"Grafana folders: {self.url('/api/folders')} did not answer a list")
        return body

    def create_folder(self, uid: str, title: str, parent_uid: str = "", timeout: float | None = None) -> dict:
        """POST /api/folders {uid, title, parentUid?}: the new folder."""
        body = {"uid": uid, "title": title, **({"parentUid": parent_uid} if parent_uid else {})}
        return self.json("POST", "/api/folders", f"Grafana folder {title}", json=body, timeout=timeout)

    def save_dashboard(self, dashboard: dict, folder_uid: str, message: str, timeout: float | None = None) -> dict:
        """POST /api/dashboards/db with overwrite: creates or replaces the dashboard with this uid (its id is left
        out, so Grafana gives its own), in the folder `folder_uid` ("" for the root)."""
        body = {"dashboard": {k: v for k, v in dashboard.items() if k != "id"}, "overwrite": True, "message": message,
                **({"folderUid": folder_uid} if folder_uid else {})}
        return self.json("POST", "/api/dashboards/db", f"Grafana dashboard {dashboard.get('uid')}", json=body,
                         timeout=timeout)

    def delete_dashboard(self, uid: str, timeout: float | None = None) -> None:
        """DELETE /api/dashboards/uid/{uid} (a missing one is fine)."""
        self.call("DELETE", f"/api/dashboards/uid/{uid}", f"Grafana dashboard {uid} deletion", ok=(404,),
                  timeout=timeout)

    def delete_folder(self, uid: str, timeout: float | None = None) -> None:
        """DELETE /api/folders/{uid} with what it holds (a missing one is fine)."""
        self.call("DELETE", f"/api/folders/{uid}", f"Grafana folder {uid} deletion", ok=(404,), timeout=timeout)

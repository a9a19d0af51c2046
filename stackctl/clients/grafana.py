"""Grafana's HTTP API: signing in, a user changing their own password, datasources (and their health check) and
dashboards by uid.

Shapes follow Grafana's OpenAPI description (grafana/grafana public/api-merged.json: GET /user, PUT /user/password,
GET /datasources/uid/{uid}, GET /datasources/uid/{uid}/health, GET /dashboards/uid/{uid}); the health check
answers 200 {"status": "OK", "message"} or 400 with the same shape when the datasource is not healthy
(pkg/api/datasources.go, checkDatasourceHealth)."""

from __future__ import annotations

from stackctl.clients.http import HttpApi


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

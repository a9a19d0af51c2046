"""Grafana's HTTP API (users): signing in, and a user changing their own password.

Shapes follow Grafana's OpenAPI description (grafana/grafana public/api-merged.json: GET /user,
PUT /user/password)."""

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

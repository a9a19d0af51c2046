"""FAKE: a small stand-in following Grafana's documented HTTP API, not the real service.

Only what stackctl calls: `GET /api/health` (no auth), `GET /api/user` (the signed-in user), `PUT /api/user/password`
(`{"oldPassword", "newPassword", "confirmNew"}`, as the user with its old password) and the admin API's
`PUT /api/admin/users/:id/password` (`{"password"}`, Grafana admins only), with Basic auth and the message bodies
Grafana answers with (401 "Invalid username or password", 401 "Invalid old password", 400 "New password is too short").
"""

from __future__ import annotations

from tests.fakes.server import FakeServer, Reply, Request


class FakeGrafana(FakeServer):
    def __init__(self, admin_user: str, admin_password: str) -> None:
        super().__init__()
        self.users: dict[str, dict] = {admin_user: {"id": 1, "password": admin_password, "isGrafanaAdmin": True}}
        self.fail_password_change: int | None = None  # answer this status to the next password change

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

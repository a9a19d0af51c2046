"""Elasticsearch's REST API: who a password signs in as, changing a user's password, searching and deleting
documents.

Shapes follow the Elasticsearch REST API specification (elastic/elasticsearch
rest-api-spec/src/main/resources/rest-api-spec/api/security.authenticate.json, security.change_password.json,
search.json, delete_by_query.json; elastic/elasticsearch-specification _global/search/SearchResponse.ts)."""

from __future__ import annotations

from stackctl.clients.http import ApiError, HttpApi


class UserMissing(ApiError):
    """Elasticsearch has no such user (yet): it must exist before its password can be changed."""


class Elasticsearch(HttpApi):
    def __init__(self, base_url: str, auth: tuple[str, str] | None = None, **kwargs):
        super().__init__(base_url, "Elasticsearch", auth, **kwargs)

    def authenticate(self, username: str, password: str, timeout: float = 10.0) -> dict:
        """GET /_security/_authenticate: who Elasticsearch takes these credentials for (401: it does not)."""
        return self.json("GET", "/_security/_authenticate", f"Elasticsearch authentication of {username}",
                         auth=(username, password), timeout=timeout)

    def change_password(self, auth: tuple[str, str], username: str, new_password: str) -> None:
        """POST /_security/user/<username>/_password {"password": ...}, authenticated as `auth` (elastic with its
        current password; for elastic itself too). Raises UserMissing when the user does not exist yet."""
        what = f"Elasticsearch password change of {username}"
        try:
            self.call("POST", f"/_security/user/{username}/_password", what, auth=auth,
                      json={"password": new_password}, secrets=(new_password,))
        except ApiError as error:
            # Elasticsearch answers 400 "user must exist in order to change password" for an unknown native user.
            if error.status in (400, 404) and "must exist" in error.reason:
                raise UserMissing(error.message, error.status, error.reason) from None
            raise

    def search(self, index: str, body: dict, timeout: float | None = None) -> list[dict]:
        """POST /{index}/_search: the hits (each with _index and _source); a wildcard matching nothing gives none."""
        answer = self.json("POST", f"/{index}/_search", f"Elasticsearch search of {index}", json=body,
                           timeout=timeout)
        return list((answer.get("hits") or {}).get("hits") or [])

    def delete_by_query(self, index: str, query: dict, timeout: float | None = None) -> int:
        """POST /{index}/_delete_by_query: how many documents were deleted."""
        answer = self.json("POST", f"/{index}/_delete_by_query", f"Elasticsearch deletion in {index}",
                           json={"query": query}, params={"refresh": "true", "conflicts": "proceed"},
                           timeout=timeout)
        return int(answer.get("deleted") or 0)

"""Elasticsearch's REST API: who a password signs in as, changing a user's password, searching and deleting
documents, and snapshots (fs repositories, creating, restoring, deleting) with the data streams a restore replaces.

Shapes follow the Elasticsearch REST API specification (elastic/elasticsearch
rest-api-spec/src/main/resources/rest-api-spec/api/security.authenticate.json, security.change_password.json,
search.json, delete_by_query.json, snapshot.*.json, indices.delete_data_stream.json, indices.exists.json,
indices.delete.json; elastic/elasticsearch-specification _global/search/SearchResponse.ts, snapshot/**). Errors are
{"error": {"type", "reason", "root_cause"}, "status"}; a failed repository or restore answers 500."""

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

    def put_fs_repository(self, name: str, location: str, readonly: bool = False) -> None:
        """PUT /_snapshot/<name> {"type": "fs", "settings": {"location"}}: `location` must lie under path.repo."""
        settings = {"location": location, **({"readonly": True} if readonly else {})}
        self.json("PUT", f"/_snapshot/{name}", f"Elasticsearch snapshot repository {name}",
                  json={"type": "fs", "settings": settings})

    def delete_repository(self, name: str) -> None:
        """DELETE /_snapshot/<name>: unregisters it (its files stay); a missing one is fine."""
        self.call("DELETE", f"/_snapshot/{name}", f"Elasticsearch repository {name} removal", ok=(404,))

    def create_snapshot(self, repository: str, snapshot: str, indices: list[str], timeout: float | None = 3600) -> dict:
        """PUT /_snapshot/<repo>/<snap>?wait_for_completion=true of these indices and data streams, without global
        or feature state: the SnapshotInfo (state SUCCESS | PARTIAL | FAILED ..., indices, data_streams, shards)."""
        body = self.json("PUT", f"/_snapshot/{repository}/{snapshot}", f"Elasticsearch snapshot {snapshot}",
                         params={"wait_for_completion": "true"}, timeout=timeout,
                         json={"indices": ",".join(indices), "ignore_unavailable": True, "include_global_state": False,
                               "metadata": {"taken_by": "stackctl"}})
        info = body.get("snapshot") if isinstance(body, dict) else None
        if not isinstance(info, dict):
            raise ApiError(f"Elasticsearch snapshot {snapshot}: the answer holds no snapshot")
        return info

    def snapshot(self, repository: str, snapshot: str) -> dict:
        """GET /_snapshot/<repo>/<snap>: its SnapshotInfo."""
        body = self.json("GET", f"/_snapshot/{repository}/{snapshot}", f"Elasticsearch snapshot {snapshot}")
        found = body.get("snapshots") if isinstance(body, dict) else None
        if not found:
            raise ApiError(f"Elasticsearch snapshot {snapshot}: not in repository {repository}")
        return found[0]

    def delete_snapshot(self, repository: str, snapshot: str) -> None:
        self.call("DELETE", f"/_snapshot/{repository}/{snapshot}", f"Elasticsearch snapshot {snapshot} removal",
                  ok=(404,), timeout=600)

    def restore_snapshot(self, repository: str, snapshot: str, indices: list[str],
                         timeout: float | None = 3600) -> dict:
        """POST /_snapshot/<repo>/<snap>/_restore?wait_for_completion=true of these indices and data streams, with
        no global or feature state (users and security stay as they are): {snapshot: {indices, shards}}."""
        body = self.json("POST", f"/_snapshot/{repository}/{snapshot}/_restore", f"Elasticsearch restore of {snapshot}",
                         params={"wait_for_completion": "true"}, timeout=timeout,
                         json={"indices": ",".join(indices), "include_global_state": False, "include_aliases": True})
        if not isinstance(body, dict) or not isinstance(body.get("snapshot"), dict):
            raise ApiError(f"Elasticsearch restore of {snapshot}: the answer holds no snapshot")
        return body["snapshot"]

    def data_streams(self, pattern: str = "*") -> list[str]:
        """GET /_data_stream/<pattern>: the names of the data streams that exist. A wildcard matching none answers
        an empty list; a literal name that does not exist answers 404 (also read as none)."""
        response = self.call("GET", f"/_data_stream/{pattern}", f"Elasticsearch data streams {pattern}", ok=(404,))
        if response.status_code == 404:
            return []
        return [str(ds.get("name")) for ds in (response.json().get("data_streams") or [])]

    def delete_data_streams(self, names: list[str]) -> None:
        """DELETE /_data_stream/<a,b>: each stream with all its backing indices."""
        self.call("DELETE", f"/_data_stream/{','.join(names)}", "Elasticsearch data stream deletion", timeout=300)

    def index_exists(self, name: str) -> bool:
        """HEAD /<index>: 200 when it exists, 404 when not."""
        return self.call("HEAD", f"/{name}", f"Elasticsearch index {name}", ok=(404,)).status_code == 200

    def delete_index(self, name: str) -> None:
        self.call("DELETE", f"/{name}", f"Elasticsearch index {name} deletion", timeout=300)

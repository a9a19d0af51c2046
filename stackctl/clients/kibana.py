"""Kibana's HTTP API: data views, saved objects (export and import) and the status API.

Shapes follow Kibana's OpenAPI description (elastic/kibana oas_docs: POST /api/data_views/data_view,
GET /api/data_views/data_view/{id}, POST /api/saved_objects/_export, POST /api/saved_objects/_import,
GET /api/status); every write needs the kbn-xsrf header. An export is NDJSON whose last line is a summary, not an
object; an import answers 200 even when objects failed (success false, errors[]). /api/status answers
503 with the full body when Kibana's core is unavailable (src/core/packages/status/server-internal/src/routes/status.ts)."""

from __future__ import annotations

from stackctl.clients.http import ApiError, HttpApi


class Kibana(HttpApi):
    def __init__(self, base_url: str, auth: tuple[str, str] | None = None, **kwargs):
        super().__init__(base_url, "Kibana", auth, headers={"kbn-xsrf": "true"}, **kwargs)

    def ensure_data_view(self, view_id: str, title: str, name: str, time_field: str = "@timestamp") -> dict:
        """Create or replace a data view with a fixed id (override: true), so calling it again changes nothing.
        Kibana before 8.2 has only the index patterns API (same call, `index_pattern`, no display name): used on
        a 404."""
        spec = {"id": view_id, "title": title, "timeFieldName": time_field}
        what = f"Kibana data view {view_id}"
        try:
            return self.json("POST", "/api/data_views/data_view", what,
                             json={"data_view": {**spec, "name": name}, "override": True})
        except ApiError as error:
            if error.status != 404:
                raise
        return self.json("POST", "/api/index_patterns/index_pattern", what,
                         json={"index_pattern": spec, "override": True})

    def data_view(self, view_id: str, timeout: float | None = None) -> dict | None:
        """GET the data view (Kibana before 8.2: the index pattern) with this id; None when it does not exist."""
        for path, key in ((f"/api/data_views/data_view/{view_id}", "data_view"),
                          (f"/api/index_patterns/index_pattern/{view_id}", "index_pattern")):
            response = self.call("GET", path, f"Kibana data view {view_id}", ok=(404,), timeout=timeout)
            if response.status_code != 404:
                return response.json().get(key)
        return None

    def status(self, timeout: float | None = None) -> dict:
        """GET /api/status: {status: {overall: {level, summary}, core: {...}}} (a 503 has the same body)."""
        return self.json("GET", "/api/status", "Kibana status", ok=(503,), timeout=timeout)

    def export_saved_objects(self, types: list[str], timeout: float | None = 300) -> tuple[bytes, dict]:
        """POST /api/saved_objects/_export of every object of these types, with what they reference: (the objects
        as NDJSON, one per line, without the summary line; the summary, whose missingReferences lists references to
        objects that do not exist)."""
        import json

        response = self.call("POST", "/api/saved_objects/_export", "Kibana saved objects export", timeout=timeout,
                             json={"type": types, "includeReferencesDeep": True, "excludeExportDetails": False})
        lines = [line for line in response.content.split(b"\n") if line.strip()]
        summary: dict = {}
        if lines:
            try:
                last = json.loads(lines[-1])
            except ValueError:
                raise ApiError("Kibana saved objects export: the answer is not NDJSON") from None
            if isinstance(last, dict) and "exportedCount" in last:
                summary = last
                lines = lines[:-1]
        return b"\n".join(lines) + (b"\n" if lines else b""), summary

    def import_saved_objects(self, ndjson: bytes, timeout: float | None = 300) -> dict:
        """POST /api/saved_objects/_import?overwrite=true (multipart field `file`, a .ndjson name): the answer
        ({success, successCount, errors, successResults})."""
        return self.json("POST", "/api/saved_objects/_import", "Kibana saved objects import", timeout=timeout,
                         params={"overwrite": "true"}, files={"file": ("export.ndjson", ndjson, "application/ndjson")})

    def delete_saved_object(self, kind: str, object_id: str, timeout: float | None = None) -> None:
        """DELETE /api/saved_objects/{type}/{id} (a missing one is fine)."""
        self.call("DELETE", f"/api/saved_objects/{kind}/{object_id}", f"Kibana saved object {kind}/{object_id} "
                  "deletion", ok=(404,), timeout=timeout)

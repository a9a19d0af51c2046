"""Kibana's HTTP API (data views).

Shapes follow Kibana's OpenAPI description (elastic/kibana oas_docs: POST /api/data_views/data_view); every
write needs the kbn-xsrf header."""

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

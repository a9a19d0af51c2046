"""FAKE: a small stand-in following Kibana's documented data views API, not the real service.

Only what stackctl calls: `POST /api/data_views/data_view` (`{"data_view": {...}, "override": bool}`; the `kbn-xsrf`
header is required) and `GET /api/data_views/data_view/<id>`, with Basic auth. As in Kibana, `override: true`
replaces a data view with the same title; without it a duplicate title is refused. With `legacy=True` it answers
like Kibana 8.0/8.1, which have only the index patterns API (`POST /api/index_patterns/index_pattern`,
`{"index_pattern": {...}, "override": bool}`) and 404 for data views.
"""

from __future__ import annotations

from tests.fakes.server import FakeServer, Reply, Request


class FakeKibana(FakeServer):
    def __init__(self, username: str, password: str, legacy: bool = False) -> None:
        super().__init__()
        self.credentials = (username, password)
        self.legacy = legacy
        self.data_views: dict[str, dict] = {}

    def handle(self, request: Request) -> Reply:
        if request.auth != self.credentials:
            return Reply(401, {"statusCode": 401, "error": "Unauthorized",
                               "message": "[security_exception]: unable to authenticate user"})
        parts = request.path.strip("/").split("/")
        create = ["api", "index_patterns", "index_pattern"] if self.legacy else ["api", "data_views", "data_view"]
        if request.method == "POST" and parts == create:
            if "kbn-xsrf" not in request.headers:
                return Reply(400, {"statusCode": 400, "error": "Bad Request",
                                   "message": "Request must contain a kbn-xsrf header."})
            body = request.json or {}
            spec = body.get(parts[2]) or {}
            if self.legacy and "name" in spec:
                return Reply(400, {"statusCode": 400, "error": "Bad Request",
                                   "message": "[request body.index_pattern.name]: definition for this key is missing"})
            if not spec.get("title"):
                return Reply(400, {"statusCode": 400, "error": "Bad Request",
                                   "message": "[request body.data_view.title]: expected value of type [string]"})
            duplicates = [i for i, v in self.data_views.items() if v["title"] == spec["title"]]
            if duplicates and not body.get("override"):
                return Reply(400, {"statusCode": 400, "error": "Bad Request",
                                   "message": f"Duplicate data view: {spec['title']}"})
            for existing in duplicates:
                del self.data_views[existing]
            view_id = spec.get("id") or f"generated-{len(self.data_views) + 1}"
            if view_id in self.data_views:
                return Reply(409, {"statusCode": 409, "error": "Conflict",
                                   "message": f"Saved object [index-pattern/{view_id}] conflict"})
            self.data_views[view_id] = {**spec, "id": view_id}
            return Reply(200, {parts[2]: self.data_views[view_id]})
        if request.method == "GET" and parts[:3] == create and len(parts) == 4:
            if parts[3] not in self.data_views:
                return Reply(404, {"statusCode": 404, "error": "Not Found",
                                   "message": f"Saved object [index-pattern/{parts[3]}] not found"})
            return Reply(200, {parts[2]: self.data_views[parts[3]]})
        return Reply(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})

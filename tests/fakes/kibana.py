"""FAKE: a small stand-in following Kibana's documented HTTP API, not the real service.

Source: elastic/kibana route sources behind oas_docs/output/kibana.yaml:
src/platform/plugins/shared/data_views/server/rest_api_routes/public/{create_data_view,get_data_view}.ts,
.../public/util/handle_errors.ts, data_views/common/data_views/data_views.ts (createSavedObject, findByName),
src/core/packages/status/server-internal/src/routes/status.ts and
src/core/packages/http/server-internal/src/lifecycle_handlers.ts; notes in /work/scratch/apis/kibana.md.

Only what stackctl calls, with Basic auth (bad credentials: 401 first, before the xsrf check):
- `POST /api/data_views/data_view` (`{"data_view": {...}, "override": bool}`; every write needs the `kbn-xsrf`
  header, else 400). As in Kibana 8.4 and later, a duplicate is found by NAME (name defaults to the title): without
  override it is a 400 "Duplicate data view: <name>"; with `override: true` the same-named view is replaced and the
  call always answers 200. An id taken by a view of another name is a saved-objects conflict, which the data views
  API turns into a 400 as well: it never answers 409.
- `GET /api/data_views/data_view/<id>` (404 when missing).
- `GET /api/status`: 200, or 503 with the same full body when core (Elasticsearch or saved objects) is unavailable;
  without credentials the redacted `{"status": {"overall": {"level"}}}`.
With `legacy=True` it answers like Kibana 8.0/8.1, which have only the index patterns API
(`POST /api/index_patterns/index_pattern`, `{"index_pattern": {...}, "override": bool}`) and 404 for data views.
"""

from __future__ import annotations

from tests.fakes.server import FakeServer, Reply, Request


def _bad_request(message: str) -> Reply:
    return Reply(400, {"statusCode": 400, "error": "Bad Request", "message": message})


class FakeKibana(FakeServer):
    def __init__(self, username: str, password: str, legacy: bool = False) -> None:
        super().__init__()
        self.credentials = (username, password)
        self.legacy = legacy
        self.data_views: dict[str, dict] = {}
        self.core_level = "available"  # elasticsearch and savedObjects: decides 200 or 503
        self.overall_level = "available"  # may be worse than core's (a plugin), with a 200 all the same

    def _status(self, request: Request) -> Reply:
        code = 503 if self.core_level in ("unavailable", "critical") else 200
        if request.auth is None:
            return Reply(code, {"status": {"overall": {"level": self.core_level}}})
        summaries = {"available": "All services and plugins are available", "degraded": "1 service is degraded",
                     "unavailable": "Some services are unavailable", "critical": "Some services are critical"}
        levels = ("available", "degraded", "unavailable", "critical")  # overall is the worst of core and plugins
        overall = max(self.core_level, self.overall_level, key=levels.index)
        core = {"elasticsearch": {"level": self.core_level, "summary": f"Elasticsearch is {self.core_level}"},
                "savedObjects": {"level": self.core_level, "summary": f"SavedObjects service is {self.core_level}"}}
        return Reply(code, {"name": "kibana", "uuid": "5b2de169-2785-441b-ae8c-186a1936b17d",
                            "version": {"number": "9.5.1", "build_flavor": "traditional"},
                            "status": {"overall": {"level": overall, "summary": summaries[overall]},
                                       "core": core, "plugins": {}},
                            "metrics": {"last_updated": "2026-08-20T10:00:05.000Z",
                                        "collection_interval_in_millis": 5000}})

    def handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.path == "/api/status" and request.auth is None:
            return self._status(request)
        if request.auth != self.credentials:
            return Reply(401, {"statusCode": 401, "error": "Unauthorized",
                               "message": "[security_exception]: unable to authenticate user"})
        if request.method == "GET" and request.path == "/api/status":
            return self._status(request)
        parts = request.path.strip("/").split("/")
        create = ["api", "index_patterns", "index_pattern"] if self.legacy else ["api", "data_views", "data_view"]
        if request.method == "POST" and parts == create:
            if "kbn-xsrf" not in request.headers:
                return _bad_request("Request must contain a kbn-xsrf header.")
            return self._create(request, parts[2])
        if request.method == "GET" and parts[:3] == create and len(parts) == 4:
            if parts[3] not in self.data_views:
                return Reply(404, {"statusCode": 404, "error": "Not Found",
                                   "message": f"Saved object [index-pattern/{parts[3]}] not found"})
            return Reply(200, {parts[2]: self.data_views[parts[3]]})
        return Reply(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})

    def _create(self, request: Request, key: str) -> Reply:
        body = request.json or {}
        spec = body.get(key) or {}
        if self.legacy and "name" in spec:
            return _bad_request("[request body.index_pattern.name]: definition for this key is missing")
        if not spec.get("title"):
            return _bad_request(f"[request body.{key}.title]: expected value of type [string]")
        name = spec.get("name") or spec["title"]  # the handler: name: spec.name || spec.title
        same_name = [i for i, v in self.data_views.items() if (v.get("name") or v["title"]) == name]
        if same_name and not body.get("override"):
            return _bad_request(f"Duplicate data view: {name}")
        for existing in same_name:  # override: delete the same-named view first
            del self.data_views[existing]
        view_id = spec.get("id") or f"generated-{len(self.data_views) + 1}"
        if view_id in self.data_views and not body.get("override"):
            # The saved-objects conflict (409) comes back through handleErrors as a 400.
            return _bad_request(f"Saved object [index-pattern/{view_id}] conflict")
        self.data_views[view_id] = {**spec, "id": view_id, **({} if self.legacy else {"name": name})}
        return Reply(200, {key: self.data_views[view_id]})

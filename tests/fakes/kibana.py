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
- `POST /api/saved_objects/_export` (src/core/packages/saved-objects/server-internal/src/routes/export.ts and
  saved_objects_exporter.ts): `{"type": [...]}` or `{"objects": [...]}` (neither: 400), kbn-xsrf required; NDJSON,
  one object per line with its keys sorted (json-stable-stringify), the summary line
  `{"excludedObjects", "excludedObjectsCount", "exportedCount", "missingRefCount", "missingReferences"}` last, no
  trailing newline; an unknown type is a 400 "Trying to export non-exportable type(s): x". Data views are saved
  objects of type index-pattern.
- `POST /api/saved_objects/_import?overwrite=true` (routes/import.ts): multipart/form-data with one field `file`
  whose filename must end in .ndjson (else 400 "Invalid file extension ..."); an object whose id exists without
  overwrite fails with a `conflict` error, a reference to a missing object with `missing_references`; failures are
  still HTTP 200 with success false and errors[].
- `DELETE /api/saved_objects/<type>/<id>` (200 `{}`, 404 when missing).
With `legacy=True` it answers like Kibana 8.0/8.1, which have only the index patterns API
(`POST /api/index_patterns/index_pattern`, `{"index_pattern": {...}, "override": bool}`) and 404 for data views.
"""

from __future__ import annotations

import json

from tests.fakes.server import FakeServer, Reply, Request

EXPORTABLE = {"config", "index-pattern", "search", "visualization", "lens", "dashboard", "map", "tag"}


def _bad_request(message: str) -> Reply:
    return Reply(400, {"statusCode": 400, "error": "Bad Request", "message": message})


class FakeKibana(FakeServer):
    def __init__(self, username: str, password: str, legacy: bool = False) -> None:
        super().__init__()
        self.credentials = (username, password)
        self.legacy = legacy
        self.data_views: dict[str, dict] = {}
        self.objects: dict[tuple[str, str], dict] = {}  # saved objects other than data views, by (type, id)
        self.refuse_import: set[tuple[str, str]] = set()  # objects whose import fails with an `unknown` error
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
        if parts[:2] == ["api", "saved_objects"]:
            if request.method != "GET" and "kbn-xsrf" not in request.headers:
                return _bad_request("Request must contain a kbn-xsrf header.")
            return self._saved_objects(request, parts[2:])
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

    # --- saved objects ---------------------------------------------------------------------------------------

    def saved_objects(self) -> dict[tuple[str, str], dict]:
        """Every saved object as Kibana stores it: data views are index-pattern objects."""
        found = dict(self.objects)
        for view_id, view in self.data_views.items():
            found[("index-pattern", view_id)] = {
                "type": "index-pattern", "id": view_id, "references": [], "managed": False,
                "attributes": {k: view[k] for k in ("title", "name", "timeFieldName") if k in view}}
        return found

    def _saved_objects(self, request: Request, rest: list[str]) -> Reply:
        if rest == ["_export"] and request.method == "POST":
            return self._export(request.json or {})
        if rest == ["_import"] and request.method == "POST":
            return self._import(request)
        if len(rest) == 2 and request.method == "DELETE":
            key = (rest[0], rest[1])
            if key[0] == "index-pattern" and key[1] in self.data_views:
                del self.data_views[key[1]]
            elif self.objects.pop(key, None) is None:
                return Reply(404, {"statusCode": 404, "error": "Not Found",
                                   "message": f"Saved object [{key[0]}/{key[1]}] not found"})
            return Reply(200, {})
        return Reply(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})

    def _export(self, body: dict) -> Reply:
        types = body.get("type")
        if types is None and body.get("objects") is None:
            return _bad_request("Either `type` or `objects` are required.")
        types = [types] if isinstance(types, str) else list(types or [])
        unknown = [t for t in types if t not in EXPORTABLE]
        if unknown:
            return _bad_request(f"Trying to export non-exportable type(s): {', '.join(unknown)}")
        everything = self.saved_objects()
        chosen = [o for (kind, _), o in sorted(everything.items()) if kind in types]
        missing = [{"type": r["type"], "id": r["id"]} for o in chosen for r in o.get("references") or []
                   if (r.get("type"), r.get("id")) not in everything]
        lines = [json.dumps(o, sort_keys=True, separators=(",", ":")) for o in chosen]
        lines.append(json.dumps({"excludedObjects": [], "excludedObjectsCount": 0, "exportedCount": len(chosen),
                                 "missingRefCount": len(missing), "missingReferences": missing},
                                separators=(",", ":")))
        return Reply(200, "\n".join(lines).encode(), {"Content-Type": "application/ndjson",
                                                      "Content-Disposition": 'attachment; filename="export.ndjson"'})

    def _import(self, request: Request) -> Reply:
        from email.parser import BytesParser
        from email.policy import HTTP

        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode() + request.body)
        part = next((p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"),
                    None) if message.is_multipart() else None
        filename = part.get_filename() if part is not None else None
        if part is None or not (filename or "").lower().endswith(".ndjson"):
            extension = ("." + filename.rsplit(".", 1)[-1]) if filename and "." in filename else ""
            return _bad_request(f"Invalid file extension {extension}")
        overwrite = (request.query.get("overwrite") or ["false"])[0] == "true"
        try:
            items = [json.loads(line) for line in part.get_payload(decode=True).splitlines() if line.strip()]
        except ValueError:
            return _bad_request("Unexpected token in JSON")
        items = [i for i in items if "exportedCount" not in i]
        existing = self.saved_objects()
        incoming = {(i.get("type"), i.get("id")) for i in items}
        errors, results = [], []
        for item in items:
            key = (item.get("type"), item.get("id"))
            meta = {"title": (item.get("attributes") or {}).get("title", "")}
            if key[0] not in EXPORTABLE:
                errors.append({"id": key[1], "type": key[0], "meta": meta, "error": {"type": "unsupported_type"}})
                continue
            missing = [r for r in item.get("references") or []
                       if (r.get("type"), r.get("id")) not in existing and (r.get("type"), r.get("id")) not in incoming]
            if missing:
                errors.append({"id": key[1], "type": key[0], "meta": meta,
                               "error": {"type": "missing_references", "references": missing}})
                continue
            if key in self.refuse_import:
                errors.append({"id": key[1], "type": key[0], "meta": meta,
                               "error": {"type": "unknown", "message": "an injected failure", "statusCode": 400}})
                continue
            if key in existing and not overwrite:
                errors.append({"id": key[1], "type": key[0], "meta": meta, "error": {"type": "conflict"}})
                continue
            if key[0] == "index-pattern":
                self.data_views[key[1]] = {**(item.get("attributes") or {}), "id": key[1]}
            else:
                self.objects[key] = item
            results.append({"type": key[0], "id": key[1], "meta": meta, "managed": False,
                            **({"overwrite": True} if key in existing else {})})
        return Reply(200, {"success": not errors, "successCount": len(results), "errors": errors,
                           "successResults": results})

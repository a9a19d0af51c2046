"""FAKE: a small stand-in following Elasticsearch's documented API, not the real service.

Source: elastic/elasticsearch-specification@9.5:specification/** (request, response and error shapes, see
/work/scratch/apis/elasticsearch.md) and elastic/elasticsearch:rest-api-spec/src/main/resources/rest-api-spec/api/*.json.

Only what stackctl calls: `GET /_cluster/health` (status green|yellow|red, always 200; 408 with timed_out when
`wait_for_status` is not reached), documents in data streams (`POST /<index>/_doc` answers 201 with the backing
index, `POST /<pattern>/_search` with `multi_match` phrase or `term` queries, `hits.total` an object, a wildcard
matching nothing gives 200 and no hits; `POST /<pattern>/_delete_by_query`), the security API (`GET /_security/_authenticate`, `POST|PUT /_security/user/<u>/_password`,
`PUT|POST|GET /_security/user/<u>`, `PUT|POST|GET /_security/role/<r>`), ILM policies (`PUT|GET /_ilm/policy/<p>`)
and composable index templates (`PUT|GET /_index_template/<t>`), with the response and error shapes of the
Elasticsearch 8/9 reference. Every call needs Basic auth of a known user (401 otherwise); security, ILM and template
management need the `superuser` role (403 otherwise), except a user changing its own password.

Snapshots (specification/snapshot/{create_repository,get_repository,delete_repository,create,get,delete,restore}/*,
specification/indices/{get_data_stream,delete_data_stream,exists,delete}/*; /work/scratch/apis/elasticsearch.md):
`PUT /_snapshot/<repo>` registers an fs repository whose `location` must lie under `path.repo` (500
repository_exception "... doesn't match any of the locations specified by path.repo", "because this setting is empty"
when none is set); `PUT /_snapshot/<repo>/<snap>?wait_for_completion=true` writes the snapshot's files into the
repository's directory on the node's filesystem (`fs`, shared with the fake engine, so copying the directory out and
back in is what a real backup does) and answers `{"snapshot": SnapshotInfo}`; `GET` and `DELETE` of snapshots read
and remove those files; `POST .../_restore?wait_for_completion=true` answers 500 snapshot_restore_exception when an
open index of the same name exists (a data stream's backing index included), else brings the documents back;
`GET|DELETE /_data_stream/<names>` (a literal name that does not exist: 404 index_not_found_exception) and
`HEAD|DELETE /<index>` (a data stream's write index cannot be deleted: 400 illegal_argument_exception). The snapshot
files' contents are this fake's own (JSON), not Elasticsearch's format.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import uuid
from dataclasses import dataclass

from tests.fakes.server import DropConnection, FakeServer, Reply, Request

RESERVED_USERS = ("elastic", "kibana_system", "logstash_system", "beats_system", "apm_system",
                  "remote_monitoring_user")
MAPPING_TYPES = {"date", "date_nanos", "text", "keyword", "constant_keyword", "wildcard", "long", "integer", "short",
                 "byte", "double", "float", "half_float", "scaled_float", "boolean", "ip", "object", "nested",
                 "flattened", "match_only_text", "geo_point", "unsigned_long"}
ILM_PHASES = ("hot", "warm", "cold", "frozen", "delete")
TIME_VALUE = re.compile(r"^\d+(d|h|m|s|ms|micros|nanos)$")
BYTE_SIZE = re.compile(r"^\d+(b|kb|mb|gb|tb|pb)$")


@dataclass
class Failure:
    """Make the next `times` matching calls fail: answer `status`, or drop the connection (status None), after
    applying the call first when `apply` is set (an answer lost on the way back)."""

    status: int | None
    times: int = 1
    apply: bool = False


def _error(status: int, kind: str, reason: str, headers: dict | None = None) -> Reply:
    cause = {"type": kind, "reason": reason}
    return Reply(status, {"error": {"root_cause": [cause], **cause}, "status": status}, headers or {})


class _SnapshotApi:
    """The snapshot, data stream and index routes of FakeElasticsearch (see the module docstring)."""

    def _snapshots(self, request: Request, parts: list[str]) -> Reply:
        method = request.method
        if parts[0] == "_data_stream" and len(parts) == 2:
            names = self._streams_matching(parts[1])
            if names is None:
                return _error(404, "index_not_found_exception", f"no such index [{parts[1]}]")
            if method == "GET":
                return Reply(200, {"data_streams": [
                    {"name": n, "timestamp_field": {"name": "@timestamp"}, "generation": 1, "status": "GREEN",
                     "template": "logs-stackctl", "hidden": False, "system": False,
                     "indices": [{"index_name": _backing_index(n), "index_uuid": "u"}]} for n in names]})
            if method == "DELETE":
                self.documents = [(stream, doc) for stream, doc in self.documents if stream not in names]
                return Reply(200, {"acknowledged": True})
        if parts[0] != "_snapshot" and len(parts) == 1:  # HEAD or DELETE /<index>
            stream = next((st for st, _ in self.documents if _backing_index(st) == parts[0]), None)
            if method == "HEAD":
                return Reply(200 if stream else 404)
            if stream is not None:
                return _error(400, "illegal_argument_exception", f"index [{parts[0]}] is the write index for data stream "
                                                                 f"[{stream}] and cannot be deleted")
            return _error(404, "index_not_found_exception", f"no such index [{parts[0]}]")
        if parts[0] == "_snapshot" and len(parts) == 2:
            return self._repository(request, parts[1])
        if parts[0] == "_snapshot" and len(parts) in (3, 4):
            repository = self.repositories.get(parts[1])
            if repository is None:
                return _error(404, "repository_missing_exception", f"[{parts[1]}] missing")
            if len(parts) == 4 and parts[3] == "_restore" and method == "POST":
                return self._restore(request, parts[1], repository, parts[2])
            if len(parts) == 3 and method in ("PUT", "POST"):
                return self._create_snapshot(request, parts[1], repository, parts[2])
            if len(parts) == 3 and method == "GET":
                found = self._read_snapshot(repository, parts[2])
                if found is None:
                    return _error(404, "snapshot_missing_exception", f"[{parts[1]}:{parts[2]}] is missing")
                return Reply(200, {"snapshots": [found["info"]], "total": 1, "remaining": 0})
            if len(parts) == 3 and method == "DELETE":
                found = self._read_snapshot(repository, parts[2])
                if found is None:
                    return _error(404, "snapshot_missing_exception", f"[{parts[1]}:{parts[2]}] is missing")
                self.fs.remove(f"{repository['location']}/snap-{found['info']['uuid']}.dat")
                return Reply(200, {"acknowledged": True})
        self.unhandled.append(f"{method} {request.path}")
        return Reply(400, {"error": f"no handler found for uri [{request.path}] and method [{method}]"})


    def _streams_matching(self, names: str) -> list[str] | None:
        """Data streams matching a comma list of names and wildcards; None when a literal name does not exist."""
        existing = sorted({stream for stream, _ in self.documents})
        found = []
        for name in names.split(","):
            matched = [s for s in existing if fnmatch.fnmatch(s, name)]
            if not matched and "*" not in name:
                return None
            found += [m for m in matched if m not in found]
        return found


    def _repository(self, request: Request, name: str) -> Reply:
        if request.method == "GET":
            repository = self.repositories.get(name)
            if repository is None:
                return _error(404, "repository_missing_exception", f"[{name}] missing")
            return Reply(200, {name: {"type": "fs", "uuid": "0JLknrXbSUiVPuLakHjBrQ", "settings": {
                "location": repository["location"], **({"readonly": "true"} if repository["readonly"] else {})}}})
        if request.method == "DELETE":
            if self.repositories.pop(name, None) is None:
                return _error(404, "repository_missing_exception", f"[{name}] missing")
            return Reply(200, {"acknowledged": True})
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        location = str((body.get("settings") or {}).get("location") or "")
        if body.get("type") != "fs" or not location:
            return _error(500, "repository_exception", f"[{name}] missing location")
        if not self.path_repo:
            detail = (f"[{name}] location [{location}] doesn't match any of the locations specified by path.repo because "
                      "this setting is empty")
            return Reply(500, {"error": {"root_cause": [{"type": "repository_exception", "reason": detail}],
                                         "type": "repository_exception", "reason": f"[{name}] failed to create repository",
                                         "caused_by": {"type": "repository_exception", "reason": detail}}, "status": 500})
        if not location.startswith("/"):
            location = f"{self.path_repo}/{location}"
        if not (location == self.path_repo or location.startswith(self.path_repo + "/")):
            return _error(500, "repository_exception", f"[{name}] location [{location}] doesn't match any of the "
                                                       "locations specified by path.repo")
        readonly = str((body.get("settings") or {}).get("readonly", "false")).lower() == "true"
        self.repositories[name] = {"location": location, "readonly": readonly}
        return Reply(200, {"acknowledged": True})


    def _read_snapshot(self, repository: dict, name: str) -> dict | None:
        for path in self.fs.listdir(repository["location"]):
            if path.rsplit("/", 1)[-1].startswith("snap-"):
                found = json.loads(self.fs.read(path))
                if found["info"]["snapshot"] == name:
                    return found
        return None


    def _create_snapshot(self, request: Request, repo: str, repository: dict, name: str) -> Reply:
        if name != name.lower() or not re.fullmatch(r"[a-z0-9._-]+", name):
            return _error(400, "invalid_snapshot_name_exception", f"[{repo}:{name}] Invalid snapshot name [{name}], must be "
                                                                  "lowercase")
        if repository["readonly"]:
            return _error(500, "repository_exception", f"[{repo}] cannot create snapshot in a readonly repository")
        if self._read_snapshot(repository, name) is not None:
            return _error(400, "invalid_snapshot_name_exception", f"[{repo}:{name}] Invalid snapshot name [{name}], "
                                                                  "snapshot with the same name already exists")
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        streams = self._streams_matching(str(body.get("indices") or "*")) or []
        snapshot_uuid = uuid.uuid4().hex[:22]
        info = {"snapshot": name, "uuid": snapshot_uuid, "repository": repo, "version_id": 9050099, "version": "9.5.1",
                "indices": [_backing_index(s) for s in streams], "data_streams": streams,
                "include_global_state": bool(body.get("include_global_state", True)), "feature_states": [],
                "metadata": body.get("metadata") or {}, "state": "SUCCESS", "start_time": "2026-08-20T10:00:28.850Z",
                "end_time": "2026-08-20T10:00:30.018Z", "duration_in_millis": 1168, "failures": [],
                "shards": {"total": len(streams), "failed": 0, "successful": len(streams)}}
        documents = {s: [doc for stream, doc in self.documents if stream == s] for s in streams}
        self.fs.write(f"{repository['location']}/snap-{snapshot_uuid}.dat",
                      json.dumps({"info": info, "documents": documents}).encode())
        self.fs.write(f"{repository['location']}/index.latest", b"\x00\x00\x00\x01")
        if (request.query.get("wait_for_completion") or ["false"])[0] != "true":
            return Reply(200, {"accepted": True})
        return Reply(200, {"snapshot": info})


    def _restore(self, request: Request, repo: str, repository: dict, name: str) -> Reply:
        found = self._read_snapshot(repository, name)
        if found is None:
            return _error(404, "snapshot_missing_exception", f"[{repo}:{name}] is missing")
        body = request.json or {}
        wanted = [p for p in str(body.get("indices") or "*").split(",")]
        streams = [s for s in found["info"]["data_streams"] if any(fnmatch.fnmatch(s, p) for p in wanted)]
        open_now = {stream for stream, _ in self.documents}
        for stream in streams:
            if stream in open_now:
                index = _backing_index(stream)
                reason = (f"[{repo}:{name}/{found['info']['uuid']}] cannot restore index [{index}] because an open index "
                          "with same name already exists in the cluster. Either close or delete the existing index or "
                          "restore the index under a different name by providing a rename pattern and replacement name")
                return _error(500, "snapshot_restore_exception", reason)
        for stream in streams:
            self.documents += [(stream, doc) for doc in found["documents"].get(stream, [])]
        indices = [_backing_index(s) for s in streams]
        return Reply(200, {"snapshot": {"snapshot": name, "indices": indices,
                                        "shards": {"total": len(indices), "failed": 0, "successful": len(indices)}}})


class FakeElasticsearch(_SnapshotApi, FakeServer):
    def __init__(self, elastic_password: str) -> None:
        super().__init__()
        self.users: dict[str, dict] = {"elastic": {"password": elastic_password, "roles": ["superuser"]}}
        for name in RESERVED_USERS[1:]:
            self.users[name] = {"password": None, "roles": [name]}  # bootstrap: no usable password until set
        self.roles: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        # The built-in `logs` template (priority 100) is there from the start, as in a real cluster.
        self.templates: dict[str, dict] = {
            "logs": {"index_patterns": ["logs-*-*"], "data_stream": {}, "priority": 100,
                     "composed_of": ["logs@mappings", "logs@settings"]},
        }
        self.failures: dict[tuple[str, str], Failure] = {}
        self.health = "green"
        self.documents: list[tuple[str, dict]] = []  # (data stream, document) in arrival order
        self.unhandled: list[str] = []
        self.component_templates: dict[str, dict] = {}
        self.path_repo: str | None = None  # path.repo, as the node was started with
        self.fs = None  # the node's filesystem (read/write/listdir/remove on absolute paths), from the fake engine
        self.repositories: dict[str, dict] = {}

    # --- test helpers ---------------------------------------------------------------------------------------

    def fail(self, method: str, path: str, status: int | None, times: int = 1, apply: bool = False) -> None:
        self.failures[(method, path)] = Failure(status, times, apply)

    def password_of(self, user: str) -> str | None:
        return self.users.get(user, {}).get("password")

    def state(self) -> dict:
        """Everything the setup job manages, for comparing runs."""
        return copy.deepcopy({"users": self.users, "roles": self.roles, "policies": self.policies,
                              "templates": self.templates, "component_templates": self.component_templates})

    def calls(self, method: str | None = None, prefix: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(prefix)]

    # --- the API ----------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        user = self._authenticate(request)
        if user is None:
            return _error(401, "security_exception",
                          f"unable to authenticate user [{request.user or ''}] for REST request [{request.path}]",
                          {"WWW-Authenticate": 'Basic realm="security", charset="UTF-8"'})
        failure = self.failures.get((request.method, request.path))
        if failure is not None and failure.times > 0:
            failure.times -= 1
            if failure.apply:
                self._route(request, user)
            if failure.status is None:
                raise DropConnection()
            return _error(failure.status, "exception", "injected failure")
        return self._route(request, user)

    def _authenticate(self, request: Request) -> str | None:
        if request.auth is None:
            return None
        name, password = request.auth
        known = self.users.get(name)
        if known is None or known["password"] is None or known["password"] != password:
            return None
        return name

    def _superuser(self, user: str) -> bool:
        return "superuser" in self.users[user]["roles"]

    def _route(self, request: Request, user: str) -> Reply:
        method, parts = request.method, request.path.strip("/").split("/")
        if parts == ["_security", "_authenticate"] and method == "GET":
            return Reply(200, {"username": user, "roles": self.users[user]["roles"], "enabled": True,
                               "authentication_realm": {"name": "reserved" if user in RESERVED_USERS else "default_native",
                                                        "type": "reserved" if user in RESERVED_USERS else "native"},
                               "authentication_type": "realm"})
        if len(parts) == 4 and parts[:2] == ["_security", "user"] and parts[3] == "_password" and method in ("POST", "PUT"):
            return self._change_password(request, user, parts[2])
        if parts == ["_cluster", "health"] and method == "GET":
            return self._cluster_health(request)
        if len(parts) == 2 and parts[1] in ("_search", "_delete_by_query", "_doc") and method == "POST":
            return {"_search": self._search, "_delete_by_query": self._delete_by_query,
                    "_doc": self._index}[parts[1]](request, parts[0])
        if parts[0] in ("_snapshot", "_data_stream") or (method in ("HEAD", "DELETE") and len(parts) == 1):
            if not self._superuser(user):
                return _error(403, "security_exception", f"action [{request.path}] is unauthorized for user [{user}]")
            return self._snapshots(request, parts)
        if not self._superuser(user):
            return _error(403, "security_exception",
                          f"action [{request.path}] is unauthorized for user [{user}] with effective roles "
                          f"[{','.join(self.users[user]['roles'])}]")
        if len(parts) == 3 and parts[:2] == ["_security", "user"]:
            return self._user(request, parts[2])
        if len(parts) == 3 and parts[:2] == ["_security", "role"]:
            return self._role(request, parts[2])
        if len(parts) == 3 and parts[:2] == ["_ilm", "policy"]:
            return self._policy(request, parts[2])
        if len(parts) == 2 and parts[0] == "_index_template":
            return self._template(request, parts[1])
        if len(parts) == 2 and parts[0] == "_component_template":
            return self._component_template(request, parts[1])
        self.unhandled.append(f"{method} {request.path}")
        return Reply(400, {"error": f"no handler found for uri [{request.path}] and method [{method}]"})

    def _body(self, request: Request) -> dict | Reply:
        try:
            body = request.json
        except ValueError as error:
            return _error(400, "parse_exception", f"request body is not valid JSON: {error}")
        if not isinstance(body, dict):
            return _error(400, "parse_exception", "request body is required")
        return body

    def _change_password(self, request: Request, user: str, target: str) -> Reply:
        if target != user and not self._superuser(user):
            return _error(403, "security_exception",
                          f"action [cluster:admin/xpack/security/user/change_password] is unauthorized for user [{user}]")
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        password = body.get("password")
        if not isinstance(password, str) or len(password) < 6:
            return _error(400, "validation_exception",
                          "Validation Failed: 1: passwords must be at least [6] characters long;")
        if target not in self.users:
            return _error(400, "validation_exception",
                          "Validation Failed: 1: user must exist in order to change password;")
        self.users[target]["password"] = password
        return Reply(200, {})

    def _user(self, request: Request, name: str) -> Reply:
        if request.method == "GET":
            if name not in self.users:
                return Reply(404, {})
            shown = {k: v for k, v in self.users[name].items() if k != "password"}
            return Reply(200, {name: {"username": name, "enabled": True, **shown}})
        if request.method not in ("PUT", "POST"):
            return Reply(405, {"error": "method not allowed"})
        if name in RESERVED_USERS:
            return _error(400, "validation_exception",
                          f"Validation Failed: 1: Username [{name}] is reserved and may not be used.;")
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        created = name not in self.users
        password = body.get("password")
        if created and not password:
            return _error(400, "validation_exception", "Validation Failed: 1: password must be specified unless "
                                                       "you are updating an existing user;")
        if password is not None and (not isinstance(password, str) or len(password) < 6):
            return _error(400, "validation_exception",
                          "Validation Failed: 1: passwords must be at least [6] characters long;")
        roles = body.get("roles")
        if not isinstance(roles, list):
            return _error(400, "parse_exception", "failed to parse user: [roles] must be a list of role names")
        record = {k: v for k, v in body.items() if k != "password"}
        record["password"] = password if password is not None else self.users[name]["password"]
        self.users[name] = record
        return Reply(200, {"created": created})

    def _role(self, request: Request, name: str) -> Reply:
        if request.method == "GET":
            return Reply(200, {name: self.roles[name]}) if name in self.roles else Reply(404, {})
        if request.method not in ("PUT", "POST"):
            return Reply(405, {"error": "method not allowed"})
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        for entry in body.get("indices", []):
            if not entry.get("names") or not entry.get("privileges"):
                return _error(400, "parse_exception", f"failed to parse indices privileges for role [{name}]")
        created = name not in self.roles
        self.roles[name] = body
        return Reply(200, {"role": {"created": created}})

    def _policy(self, request: Request, name: str) -> Reply:
        if request.method == "GET":
            if name not in self.policies:
                return _error(404, "resource_not_found_exception", f"Lifecycle policy not found: {name}")
            return Reply(200, {name: self.policies[name]})
        if request.method != "PUT":
            return Reply(405, {"error": "method not allowed"})
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        policy = body.get("policy")
        if not isinstance(policy, dict) or not isinstance(policy.get("phases"), dict):
            return _error(400, "x_content_parse_exception", "[put_lifecycle_request] policy with phases is required")
        for phase, spec in policy["phases"].items():
            if phase not in ILM_PHASES:
                return _error(400, "illegal_argument_exception", f"Timeseries lifecycle does not support phase [{phase}]")
            min_age = spec.get("min_age", "0ms")
            if not TIME_VALUE.match(str(min_age)):
                return _error(400, "illegal_argument_exception",
                              f"failed to parse setting [min_age] with value [{min_age}] as a time value")
            rollover = spec.get("actions", {}).get("rollover")
            if rollover is not None:
                if not rollover:
                    return _error(400, "illegal_argument_exception", "At least one rollover condition must be set.")
                if "max_age" in rollover and not TIME_VALUE.match(rollover["max_age"]):
                    return _error(400, "illegal_argument_exception", "invalid rollover max_age")
                for key in ("max_size", "max_primary_shard_size"):
                    if key in rollover and not BYTE_SIZE.match(rollover[key]):
                        return _error(400, "illegal_argument_exception", f"invalid rollover {key}")
        # An unchanged policy is a no-op in Elasticsearch: the version moves only when the definition changes.
        existing = self.policies.get(name)
        if existing is None or existing["policy"] != policy:
            version = existing["version"] + 1 if existing else 1
            self.policies[name] = {"version": version, "policy": policy}
        return Reply(200, {"acknowledged": True})

    def _component_template(self, request: Request, name: str) -> Reply:
        """PUT/GET /_component_template/<name>: a body with a `template` object (settings, mappings, aliases)."""
        if request.method == "GET":
            if name not in self.component_templates:
                return _error(404, "resource_not_found_exception", f"component template matching [{name}] not found")
            return Reply(200, {"component_templates": [{"name": name, "component_template": self.component_templates[name]}]})
        if request.method != "PUT":
            return Reply(405, {"error": "method not allowed"})
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        if not isinstance(body.get("template"), dict):
            return _error(400, "x_content_parse_exception", "[component_template] template is required")
        self.component_templates[name] = body
        return Reply(200, {"acknowledged": True})

    def _template(self, request: Request, name: str) -> Reply:
        if request.method == "GET":
            if name not in self.templates:
                return _error(404, "resource_not_found_exception", f"index template matching [{name}] not found")
            return Reply(200, {"index_templates": [{"name": name, "index_template": self.templates[name]}]})
        if request.method not in ("PUT", "POST"):
            return Reply(405, {"error": "method not allowed"})
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        patterns = body.get("index_patterns")
        if not isinstance(patterns, list) or not patterns:
            return _error(400, "action_request_validation_exception",
                          "Validation Failed: 1: index patterns are missing;")
        priority = body.get("priority", 0)
        if not isinstance(priority, int) or priority < 0:
            return _error(400, "action_request_validation_exception", "Validation Failed: 1: priority must be >= 0;")
        for component in body.get("composed_of", []):
            return _error(400, "invalid_index_template_exception",
                          f"index_template [{name}] invalid, cause [index template [{name}] specifies component "
                          f"templates [{component}] that do not exist]")
        for other, existing in self.templates.items():
            if other != name and existing.get("priority", 0) == priority and _overlap(patterns, existing["index_patterns"]):
                return _error(400, "illegal_argument_exception",
                              f"index template [{name}] has index patterns {patterns} matching patterns from existing "
                              f"templates [{other}] with patterns ({other} => {existing['index_patterns']}) that have "
                              f"the same priority [{priority}], multiple index templates may not match during index "
                              "creation, please use a different priority")
        mappings = (body.get("template") or {}).get("mappings") or {}
        problem = _check_mappings(mappings.get("properties") or {})
        if problem:
            return _error(400, "mapper_parsing_exception", problem)
        self.templates[name] = body
        return Reply(200, {"acknowledged": True})

    # --- documents (data streams), search, cluster health ------------------------------------------------------

    def _cluster_health(self, request: Request) -> Reply:
        body = {"cluster_name": "stackctl", "status": self.health, "timed_out": False, "number_of_nodes": 1,
                "number_of_data_nodes": 1, "active_primary_shards": 3, "active_shards": 3, "relocating_shards": 0,
                "initializing_shards": 0, "unassigned_shards": 0, "delayed_unassigned_shards": 0,
                "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0}
        wanted = (request.query.get("wait_for_status") or [None])[0]
        if wanted and _HEALTH_ORDER.index(self.health) < _HEALTH_ORDER.index(wanted):
            return Reply(408, {**body, "timed_out": True})
        return Reply(200, body)

    def _index(self, request: Request, stream: str) -> Reply:
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        if "@timestamp" not in body:
            return _error(400, "document_parsing_exception", "data stream timestamp field [@timestamp] is missing")
        self.documents.append((stream, body))
        return Reply(201, {"_index": _backing_index(stream), "_id": f"doc{len(self.documents)}", "_version": 1,
                           "result": "created", "_shards": {"total": 2, "successful": 1, "failed": 0},
                           "_seq_no": len(self.documents) - 1, "_primary_term": 1})

    def _selected(self, pattern: str, query: dict) -> list[tuple[str, dict]]:
        return [(stream, doc) for stream, doc in self.documents
                if any(fnmatch.fnmatch(stream, p) for p in pattern.split(",")) and _matches(doc, query)]

    def _search(self, request: Request, pattern: str) -> Reply:
        if "*" not in pattern and not any(stream == pattern for stream, _ in self.documents):
            return _error(404, "index_not_found_exception", f"no such index [{pattern}]")
        body = request.json or {}
        found = self._selected(pattern, body.get("query") or {"match_all": {}})
        hits = [{"_index": _backing_index(stream), "_id": f"doc{i}", "_score": 1.0, "_source": doc}
                for i, (stream, doc) in enumerate(found)][: body.get("size", 10)]
        return Reply(200, {"took": 1, "timed_out": False,
                           "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                           "hits": {"total": {"value": len(found), "relation": "eq"},
                                    "max_score": 1.0 if found else None, "hits": hits}})

    def _delete_by_query(self, request: Request, pattern: str) -> Reply:
        doomed = self._selected(pattern, (request.json or {}).get("query") or {})
        self.documents = [d for d in self.documents if d not in doomed]
        return Reply(200, {"took": 1, "timed_out": False, "total": len(doomed), "deleted": len(doomed), "batches": 1,
                           "version_conflicts": 0, "noops": 0, "failures": []})


def _overlap(a: list[str], b: list[str]) -> bool:
    """Could an index name match a pattern of both lists? (Literal prefixes compatible, as in Elasticsearch.)"""
    for x in a:
        for y in b:
            px, py = x.split("*")[0], y.split("*")[0]
            if fnmatch.fnmatch(x, y) or fnmatch.fnmatch(y, x) or px.startswith(py) or py.startswith(px):
                return True
    return False


def _check_mappings(properties: dict, prefix: str = "") -> str:
    for field_name, spec in properties.items():
        path = prefix + field_name
        if "properties" in spec:
            problem = _check_mappings(spec["properties"], path + ".")
            if problem:
                return problem
        elif spec.get("type") not in MAPPING_TYPES:
            return f"No handler for type [{spec.get('type')}] declared on field [{path}]"
    return ""


_HEALTH_ORDER = ("red", "yellow", "green")


def _field(document: dict, dotted: str):
    """A document's value at a dotted field name, whether stored nested or with a dotted key (OTel attributes)."""
    if dotted in document:
        return document[dotted]
    head, _, rest = dotted.partition(".")
    while rest:
        if isinstance(document.get(head), dict):
            return _field(document[head], rest)
        more, _, rest = rest.partition(".")
        head = f"{head}.{more}"
    return document.get(head)


def _matches(document: dict, query: dict) -> bool:
    if "match_all" in query:
        return True
    if "term" in query:
        ((name, value),) = query["term"].items()
        return _field(document, name) == (value.get("value") if isinstance(value, dict) else value)
    if "multi_match" in query:
        spec = query["multi_match"]
        words = str(spec["query"]).lower()
        return any(words in str(_field(document, name) or "").lower() for name in spec.get("fields") or [])
    if "bool" in query:
        clauses = [q for key in ("must", "filter") for q in query["bool"].get(key) or []]
        return all(_matches(document, q) for q in clauses)
    raise ValueError(f"the fake does not know the query {sorted(query)}")


def _backing_index(stream: str) -> str:
    return f".ds-{stream}-2026.08.20-000001"



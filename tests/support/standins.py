"""STAND-IN images for services that have no local image here (no registry, no Debian package): just enough of the
real service for stackctl's lifecycle to run against it on a real engine, not the service itself.

`grafana_standin` is Grafana as secret rotation sees it: it runs as Grafana's user (472:0) with its data in
/var/lib/grafana, takes the admin password from GF_SECURITY_ADMIN_PASSWORD__FILE on its first start only (kept in its
data volume afterwards, as Grafana keeps it in its database), and answers the calls stackctl makes, with the status
codes and messages of Grafana's HTTP API (tests/fakes/grafana.py documents them): GET /api/health, GET /api/user
(Basic auth; 401 "Invalid username or password") and PUT /api/user/password as the user with its old password
(`{"oldPassword", "newPassword", "confirmNew"}`; 401 "Invalid old password"). It is a shell script behind busybox's
nc, built on a local busybox-based image (tests.support.images); `curl` is a shim over busybox wget for the
catalog's healthcheck.
"""

from __future__ import annotations

import io
import tarfile

GRAFANA_TAG = "local/grafana-standin:12.4.10"  # a version the catalog renders Grafana's configs for

ENTRYPOINT = r"""#!/bin/sh
# Grafana stand-in (tests only): the admin password counts from the file on the first start only.
set -e
store=/var/lib/grafana/admin_password
[ -f "$store" ] || cat "$GF_SECURITY_ADMIN_PASSWORD__FILE" > "$store"
echo "grafana stand-in: listening on 3000 for $GF_SECURITY_ADMIN_USER"
exec busybox nc -ll -p 3000 -e /bin/sh /standin/handler.sh
"""

HANDLER = r"""#!/bin/sh
# One HTTP request on stdin, its answer on stdout.
store=/var/lib/grafana/admin_password
reply() {
  printf 'HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "$1" "${#2}" "$2"
  exit 0
}
read -r method path proto
length=0
auth=""
while IFS= read -r line; do
  line=$(printf '%s' "$line" | busybox tr -d '\r')
  [ -z "$line" ] && break
  case "$line" in
    [Cc]ontent-[Ll]ength:*) length=$(printf '%s' "${line#*:}" | busybox tr -d ' ') ;;
    [Aa]uthorization:\ Basic\ *) auth=${line#*Basic } ;;
  esac
done
body=""
[ "$length" -gt 0 ] && body=$(busybox head -c "$length")
credentials=$(printf '%s' "$auth" | busybox base64 -d 2>/dev/null || true)
user=${credentials%%:*}
password=${credentials#*:}
signed_in() { [ "$user" = "$GF_SECURITY_ADMIN_USER" ] && [ "$password" = "$(cat "$store")" ]; }
field() { printf '%s' "$body" | busybox sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p"; }
case "$method $path" in
  "GET /api/health") reply "200 OK" '{"database":"ok","version":"stand-in"}' ;;
  "GET /api/user")
    signed_in || reply "401 Unauthorized" '{"message":"Invalid username or password"}'
    reply "200 OK" "{\"id\":1,\"login\":\"$user\",\"isGrafanaAdmin\":true}" ;;
  "PUT /api/user/password")
    signed_in || reply "401 Unauthorized" '{"message":"Invalid username or password"}'
    [ "$(field oldPassword)" = "$(cat "$store")" ] || reply "401 Unauthorized" '{"message":"Invalid old password"}'
    new=$(field newPassword)
    [ "${#new}" -ge 4 ] || reply "400 Bad Request" '{"message":"New password is too short"}'
    printf '%s' "$new" > "$store" || reply "500 Internal Server Error" '{"message":"Failed to update user password"}'
    reply "200 OK" '{"message":"User password changed"}' ;;
esac
reply "404 Not Found" '{"message":"Not found"}'
"""

CURL = r"""#!/bin/sh
# curl stand-in for the catalog's healthcheck (curl -fsS -o /dev/null URL): fetches the last argument.
for last; do :; done
exec busybox wget -q -O /dev/null "$last"
"""


def _tar(entries: list[tuple[str, str | None, int, int]]) -> bytes:
    """A tar of (path, text or None for a directory, mode, uid) entries, gid 0."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, text, mode, uid in entries:
            info = tarfile.TarInfo(path)
            info.mode, info.uid, info.gid = mode, uid, 0
            if text is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = text.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def grafana_standin(client, base_image: str) -> str:
    """Build (or rebuild) the Grafana stand-in from a local busybox-based image; returns its tag."""
    container = client.containers.create(base_image)
    try:
        container.put_archive("/", _tar([
            ("standin", None, 0o755, 0), ("standin/grafana.sh", ENTRYPOINT, 0o755, 0),
            ("standin/handler.sh", HANDLER, 0o755, 0), ("usr/bin", None, 0o755, 0), ("usr/bin/curl", CURL, 0o755, 0),
            ("var/lib/grafana", None, 0o755, 472), ("etc/grafana", None, 0o755, 0)]))
        repository, tag = GRAFANA_TAG.split(":")
        container.commit(repository=repository, tag=tag, changes=[
            "USER 472:0", "WORKDIR /", 'ENTRYPOINT ["/bin/sh", "/standin/grafana.sh"]', "CMD []", "EXPOSE 3000",
            "LABEL org.stackctl.local-image=grafana-standin"])
    finally:
        container.remove()
    return GRAFANA_TAG

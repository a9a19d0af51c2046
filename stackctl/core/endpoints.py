"""Where the stack's services answer (pure): host URLs of published ports, external probe URLs, `stackctl urls`."""

from __future__ import annotations

from stackctl.core.config import ResolvedService, Stack
from stackctl.core.errors import StackError


def _host_address(bind_address: str) -> str:
    """The address to reach a published port from this machine: a wildcard bind is reached on loopback."""
    host = "127.0.0.1" if bind_address in ("0.0.0.0", "::") else bind_address
    return f"[{host}]" if ":" in host else host


def host_url(stack: Stack, key: str, port: str | None = None) -> str:
    """http://host:port of a service's published port as seen from this machine."""
    svc = stack.services.get(key)
    if svc is None:
        from stackctl.core.catalog import SERVICES

        raise StackError(f"{SERVICES[key].title} is not enabled in {stack.file}")
    name = port or (svc.spec.primary_port.name if svc.spec.primary_port else "")
    if name not in svc.host_ports:
        raise StackError(f"{svc.name} does not publish its {name or 'API'} port on the host, so stackctl cannot "
                         "reach its API")
    return f"http://{_host_address(stack.config.bind_address)}:{svc.host_ports[name]}"


def probe_url(stack: Stack, svc: ResolvedService) -> str | None:
    """The host URL of a service's external readiness probe (images without an HTTP client inside)."""
    probe = svc.spec.probe
    if probe is None or probe.port not in svc.host_ports:
        return None
    return host_url(stack, svc.key, probe.port) + probe.path


def urls(stack: Stack) -> list[dict]:
    """Where to open each UI and where to point apps, from the catalog's published ports."""
    host = stack.config.bind_address
    host = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host
    host = f"[{host}]" if ":" in host else host
    # On Swarm a published port listens on every interface (bind_address does not apply): of every node with the
    # routing mesh, of the node running the service with endpoint_mode dnsrr.
    open_on = ({"open_on": "every node" if stack.config.swarm.endpoint_mode == "vip" else "the node running it"}
               if stack.on_swarm else {})
    host = "localhost" if stack.on_swarm else host
    rows = []
    for svc in stack.services.values():
        for port in svc.spec.ports:
            if port.name in svc.host_ports:
                address = f"{host}:{svc.host_ports[port.name]}"
                rows.append({
                    "service": svc.name, "port": port.name, "description": port.description,
                    "url": f"{port.scheme}://{address}" if port.scheme in ("http", "https") else address,
                    **open_on,
                })
    return rows

"""`flower-superlink` with its Control and Runtime APIs answering the coordinator's machine only.

Flower 1.42 serves the Fleet API (where members' SuperNodes dial in), the Control API (runs,
node registration) and the Runtime API (the ServerApp's tasks and messages) on ONE HTTP port;
`--control-api-address` is deprecated and ignored. None of the three has accounts without
Flower's enterprise plugins, so anyone who reaches the port could register a SuperNode key or
start a run. This launcher runs Flower's own `flower-superlink` entry point with one more
middleware, outermost: a request to `/v1/control` or `/v1/runtime` from any address other
than the coordinator's own machine gets 403 before Flower sees it. The Fleet API stays open
on the public address (its callers prove themselves with their registered SuperNode key).

"The coordinator's own machine" is a loopback client, or a client whose address is the very
address the connection reached (a process on the same host dialling the host's public IP).
Another host cannot complete a TCP handshake from our own address.

Run as `python -m kumiai.adapters.flower.superlink_guard [flower-superlink flags]`.
"""

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

LOCAL_ONLY_PREFIXES = ("/v1/control", "/v1/runtime")
REFUSED = b"the Control and Runtime APIs answer only the coordinator's own machine"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _address(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address (IPv4-mapped IPv6, as a dual-stack socket reports, as IPv4), or None."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:  # not an IP (a test client's name, a UNIX socket): not local
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def same_machine(client_host: str | None, server_host: str | None) -> bool:
    """Whether a connection from `client_host` to `server_host` comes from this machine."""
    client = _address(client_host)
    if client is None:
        return False
    return client.is_loopback or client == _address(server_host)


def local_only(path: str) -> bool:
    """Whether `path` belongs to an API only the coordinator's machine may call."""
    return any(path == p or path.startswith(p + "/") for p in LOCAL_ONLY_PREFIXES)


class LocalControlOnly:
    """ASGI middleware: 403 for a Control/Runtime request from another machine."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and local_only(scope.get("path", "")):
            client = (scope.get("client") or (None, None))[0]
            server = (scope.get("server") or (None, None))[0]
            if not same_machine(client, server):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(REFUSED)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": REFUSED})
                return
        await self.app(scope, receive, send)


def install() -> None:
    """Put `LocalControlOnly` outermost in the SuperLink app Flower is about to create."""
    from flwr.superlink import main
    from starlette.middleware import Middleware

    flower_middleware = main._get_middleware

    def guarded() -> list[Middleware]:
        return [Middleware(LocalControlOnly), *flower_middleware()]

    main._get_middleware = guarded  # type: ignore[assignment]


def run() -> None:
    """`flower-superlink`, guarded (its arguments are this process' arguments)."""
    from flwr.superlink.cli.flower_superlink import flower_superlink

    install()
    flower_superlink()


if __name__ == "__main__":
    run()

"""`ablate serve`: a live, read-only dashboard over a store (`ablate serve --store runs.db`).

The page (`assets/`) polls small JSON views (`app`) built from the report's own frames (`data`,
`search_view`); downloads run the report writers into a temporary folder (`downloads`).
Safe by default: read-only store (`readonly`), GET only, bound to loopback; any other bind needs
a token on every request.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
import sys
from dataclasses import dataclass

from ablate.errors import AblateError

INSTALL = "pip install 'ablate[serve]'"


def check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise AblateError(f"--port must be in 0..65535 (0: any free port), got {port}")


def resolve_host(host: str) -> tuple[int, str, bool]:
    """(address family, address to bind, loopback?) of --host; AblateError if it names nothing."""
    text = host.strip("[]")
    if not text.strip():
        raise AblateError("--host is empty; use 127.0.0.1 (this machine only, the default) or 0.0.0.0 "
                          "(every interface, with a token)")
    try:
        infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise AblateError(f"--host '{host}' is neither an IP address nor a name this machine resolves; use "
                          f"127.0.0.1 (this machine only, the default) or 0.0.0.0 (every interface, with a "
                          f"token)") from None
    family, _, _, _, addr = infos[0]
    loopback = all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)
    return family, addr[0], loopback


def check_token(token: str | None) -> None:
    if token is None:
        return
    bad = sorted({c for c in token if not re.match(r"[A-Za-z0-9_.~-]", c)})
    if bad or not 16 <= len(token) <= 200:
        raise AblateError(f"--token must be 16 to 200 characters from A-Z a-z 0-9 _ . ~ - (it travels in a URL "
                          f"and a cookie); got {len(token)} character(s)"
                          + (f", with {' '.join(repr(c) for c in bad[:5])}" if bad else ""))


def bind(host: str, port: int) -> tuple[socket.socket, bool]:
    """The listening socket (bound here, so a port in use is a one-line error, not a traceback)."""
    check_port(port)
    family, address, loopback = resolve_host(host)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = {98: "the port is in use (another `ablate serve`?); give another with --port, or --port 0 for "
                   "any free one",
               13: "binding ports below 1024 needs root; use a port such as 8080",
               99: "that address is not one of this machine's"}.get(exc.errno, exc.strerror or str(exc))
        raise AblateError(f"cannot listen on {host} port {port}: {why}") from None
    sock.setblocking(False)
    return sock, loopback


@dataclass
class Prepared:
    """A checked, bound dashboard: the app, its listening socket, the URL to open and the token."""

    app: object
    sock: socket.socket
    url: str
    token: str | None
    store: object
    loopback: bool


def prepare(store_target: str, *, host: str = "127.0.0.1", port: int = 8080, token: str | None = None) -> Prepared:
    """Check every input (AblateError with one line each), open the store read-only, bind."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise AblateError(f"ablate serve needs {exc.name}, which is not installed; install it with: {INSTALL}") from None
    from ablate.serve.app import LOOPBACK_NAMES, build_app, plotly_js
    from ablate.serve.readonly import ReadOnlyStore

    check_port(port)
    check_token(token)
    _, _, loopback = resolve_host(host)
    if not loopback and token is None:
        token = secrets.token_urlsafe(24)
    plotly_js()
    store = ReadOnlyStore(store_target)
    try:
        sock, _ = bind(host, port)
    except AblateError:
        store.close()
        raise
    bound = sock.getsockname()[1]
    app = build_app(store, token=token, allowed_hosts=LOOPBACK_NAMES if loopback else None)
    shown = host if loopback or host not in ("0.0.0.0", "::") else socket.gethostname()
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
    return Prepared(app, sock, url, token, store, loopback)


def serve(store_target: str, *, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
          out=None) -> int:
    """Check everything, print the URL (with the token, once), and serve until interrupted."""
    import uvicorn

    out = out or sys.stdout
    ready = prepare(store_target, host=host, port=port, token=token)
    n = len(ready.store.experiment_names())
    print(f"ablate serve: {ready.store.label} ({n} experiment{'s' if n != 1 else ''}), read-only, at {ready.url}",
          file=out)
    print("every request needs the token in that URL (printed only now); Ctrl-C stops" if ready.token
          else "Ctrl-C stops", file=out)
    out.flush()
    server = uvicorn.Server(uvicorn.Config(ready.app, log_level="warning", access_log=False, lifespan="off"))
    try:
        server.run(sockets=[ready.sock])
    finally:
        ready.sock.close()
        ready.store.close()
    return 0


__all__ = ["serve", "prepare", "Prepared", "bind", "resolve_host", "check_token", "check_port"]

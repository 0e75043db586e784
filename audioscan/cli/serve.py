"""``audioscan serve``: the local page for listening, judging and retraining."""

from __future__ import annotations

import ipaddress
import secrets

import click

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_local(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but this machine's loopback requires the printed token.")
@click.pass_obj
def serve(obj, port: int, *, host: str) -> None:
    """Search by ear, judge hits with ✓/✗, train, rescore and export from a local web page.

    The store's vectors stay loaded, so a search takes milliseconds; builds keep the
    writer-lock rules (a second build is refused) and reads never wait for them.
    """
    import uvicorn

    from audioscan.web.app import allowed_hosts, create_app
    from audioscan.web.server import config

    token = None if is_local(host) else secrets.token_urlsafe(24)
    app = create_app(obj.library, token, hosts=allowed_hosts(host))
    obj.library.load()  # every set's vectors loaded (and a missing store said) before listening
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"audioscan is serving {obj.store} at {url}  (Ctrl-C stops it)")
    if token:
        click.echo("warning: this page has no TLS, so the token and everything you hear cross the network in "
                   "clear; on a network you do not trust, serve on 127.0.0.1 and reach it through an SSH tunnel: "
                   f"ssh -L {port}:127.0.0.1:{port} THIS_MACHINE", err=True)
    uvicorn.Server(config(app, host, port=port)).run()

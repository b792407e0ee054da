"""`bench serve`."""

from __future__ import annotations

from typing import Optional

import typer

from bench.cli.common import MATH_HELP, app, build_policy, canonical_policy, confirm_math, console, set_math
from bench.mathmode import DEFAULT_MODE


@app.command()
def serve(
    policy: str = typer.Option(..., "--policy", "-p", help="Policy name (bench list policies)."),
    checkpoint: Optional[str] = typer.Option(None, help="Policy checkpoint path."),
    policy_arg: list[str] = typer.Option([], "--policy-arg", help="NAME=VALUE for the policy (repeatable)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free one, printed)."),
    math: str = typer.Option(DEFAULT_MODE, "--math", help=MATH_HELP),
):
    """Serve a policy over openpi's websocket protocol (openpi-client, bench run --policy openpi)."""
    set_math(math)
    import asyncio

    from bench.serve import PolicyServer, server_metadata

    pol = build_policy(policy, checkpoint=checkpoint, policy_args=policy_arg)
    desc = confirm_math(math)
    name = canonical_policy(policy)
    server = PolicyServer(pol, server_metadata(name, pol, desc), host=host, port=port)

    def ready(srv) -> None:
        bound = srv.sockets[0].getsockname()[1]
        console.print(f"serving {name} on ws://{host}:{bound} (math {desc['id']}); GET /healthz; Ctrl-C stops",
                      highlight=False)

    try:
        asyncio.run(server.serve(ready))
    except KeyboardInterrupt:
        console.print(f"stopped after {server.calls} act calls ({server.rows} requests)")

"""`bench serve`."""

from __future__ import annotations

from typing import Optional

import typer

from bench.cli.common import MATH_HELP, app, console, fail, set_math
from bench.core.mathmode import DEFAULT_MODE


@app.command()
def serve(
    policy: str = typer.Option(..., "--policy", "-p", help="Policy name (bench list policies)."),
    checkpoint: Optional[str] = typer.Option(None, help="Policy checkpoint path."),
    policy_arg: list[str] = typer.Option([], "--policy-arg", help="NAME=VALUE for the policy (repeatable)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free one, printed)."),
    math: str = typer.Option(DEFAULT_MODE, "--math", help=MATH_HELP),
    max_message_mb: float = typer.Option(16.0, min=0.1, help="Refuse messages larger than this (MiB)."),
    threads: Optional[int] = typer.Option(None, min=1, help="Threads a batch's rows are shared among (default: the "
                                          "machine's cores; a trained policy computes each row on one)."),
):
    """Serve a policy over openpi's websocket protocol (openpi-client, bench run --policy openpi)."""
    set_math(math)
    import logging

    handler = logging.StreamHandler()  # one line per client arriving or leaving and per rejected request
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    served = logging.getLogger("bench.serve")
    served.addHandler(handler)
    served.setLevel(logging.INFO)
    from bench.eval import EvalError
    from bench.core.mathmode import MathModeError
    from bench.eval.serve import serve_policy

    try:
        server = serve_policy(policy, checkpoint=checkpoint, policy_args=policy_arg, host=host, port=port, math=math,
                              on_ready=lambda line: console.print(line, highlight=False),
                              max_message_bytes=int(max_message_mb * 2**20), threads=threads)
    except EvalError as exc:
        fail(str(exc))
    except MathModeError as exc:
        fail(str(exc), code=1)
    console.print(f"stopped after {server.calls} act calls ({server.rows} requests)")

"""Simulator side: headless GL set-up, the LIBERO environment wrapper, sim worker processes."""

import logging


class _DropMacroNag(logging.Filter):
    """robosuite warns on every import that no private macro file exists; we need none."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return "private macro file" not in msg and "setup_macros.py" not in msg


logging.getLogger("robosuite_logs").addFilter(_DropMacroNag())

"""Plain-data messages between the runner and sim workers.

A worker may run in another Python environment (RoboCasa GR1 needs numpy 2, LIBERO numpy 1),
so nothing is pickled: messages are msgpack maps, lists, strings and numbers, and numpy arrays
travel as (dtype, shape, raw bytes), which every numpy reads back bit for bit. Depends on numpy
and msgpack only, so a worker environment needs nothing else from this package's dependencies.
"""

from __future__ import annotations

from pathlib import PurePath

import msgpack
import numpy as np

_NDARRAY = 1  # msgpack extension type code of a numpy array


def _default(obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("cannot send an object array to a sim worker: plain data only")
        # tobytes() is C order whatever the layout (not ascontiguousarray: it makes 0-d arrays 1-d)
        return msgpack.ExtType(_NDARRAY, msgpack.packb([obj.dtype.str, list(obj.shape)]) + obj.tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, PurePath):
        return str(obj)
    raise TypeError(f"cannot send a {type(obj).__name__} to a sim worker: plain data only "
                    "(dicts, lists, str, numbers, numpy arrays)")


def _ext_hook(code: int, data: bytes):
    if code != _NDARRAY:
        return msgpack.ExtType(code, data)
    unpacker = msgpack.Unpacker()
    unpacker.feed(data)
    dtype, shape = unpacker.unpack()
    return np.frombuffer(data, dtype=np.dtype(dtype), offset=unpacker.tell()).reshape(tuple(shape)).copy()


def pack(message) -> bytes:
    return msgpack.packb(message, default=_default, use_bin_type=True)


def unpack(data: bytes):
    """Sequences come back as lists; maps may have non-string keys."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


class Channel:
    """One end of a runner-worker socket: whole messages in, whole messages out."""

    def __init__(self, conn):
        self.conn = conn  # a multiprocessing.connection.Connection (length-prefixed frames)

    def send(self, message) -> None:
        self.conn.send_bytes(pack(message))

    def recv(self):
        return unpack(self.conn.recv_bytes())

    def fileno(self) -> int:  # lets multiprocessing.connection.wait select on a channel
        return self.conn.fileno()

    def close(self) -> None:
        self.conn.close()

"""Hostile inputs, built here so every test that needs one makes it itself.

Each payload writes a marker file when it runs; a test proves that code did not run by showing
the marker is absent (and proves the input is really hostile by running it once on purpose).
"""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def payload(marker: Path) -> str:
    """Return Python source that creates ``marker`` when executed."""
    return f"open({str(marker)!r}, 'w').write('payload ran')"


def _json_str(value: str, node_id: int) -> dict[str, Any]:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True, "__id__": node_id}


def loss_node(code: str) -> dict[str, Any]:
    """Return a skops ``LossNode`` whose constructor is ``builtins.exec`` called with ``code``."""
    empty_list = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": [],
                  "__id__": 9005}
    return {"__class__": "exec", "__module__": "builtins", "__loader__": "LossNode",
            "__reduce__": {"args": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                                    "content": [_json_str(code, 9002)], "__id__": 9003}},
            "content": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": {},
                        "key_types": empty_list, "__id__": 9004},
            "__id__": 9001}


def _zip(schema: dict[str, Any], others: zipfile.ZipFile | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name in (others.namelist() if others is not None else []):
            if name != "schema.json":
                out.writestr(name, others.read(name))
        out.writestr("schema.json", json.dumps(schema))
    return buf.getvalue()


def skops_exec_alone(marker: Path) -> bytes:
    """Return a .skops file whose whole schema is one LossNode calling ``exec``."""
    import skops

    return _zip({**loss_node(payload(marker)), "protocol": 2, "_skops_version": skops.__version__})


def skops_exec_nested(marker: Path, X: Any = None, y: Any = None) -> bytes:
    """Return a real fitted LogisticRegression whose attributes hide a LossNode calling ``exec``."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    if X is None:
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(40, 2)), np.tile([0, 1], 20)
    archive = zipfile.ZipFile(io.BytesIO(sio.dumps(LogisticRegression().fit(X, y))))
    schema = json.loads(archive.read("schema.json"))
    attrs = schema["content"]
    attrs["content"]["calibration_"] = loss_node(payload(marker))
    attrs["key_types"]["content"].append(dict(attrs["key_types"]["content"][-1]))
    return _zip(schema, archive)


class _Exec:
    """Unpickles as ``exec(code)``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (self.code,)


def pickle_exec(marker: Path) -> bytes:
    """Return pickle bytes that run a payload when loaded (by pickle or joblib)."""
    return pickle.dumps(_Exec(payload(marker)))


def declaring_sizes(data: bytes, sizes: dict[str, int]) -> bytes:
    """Return the zip ``data`` with the uncompressed size its central directory declares for each member
    named in ``sizes`` set to that many bytes (the member's bytes are unchanged: a small archive that
    says it unpacks to far more than it holds)."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at != -1:
        name_len = int.from_bytes(out[at + 28:at + 30], "little")
        name = out[at + 46:at + 46 + name_len].decode()
        if name in sizes:
            out[at + 24:at + 28] = sizes[name].to_bytes(4, "little")
        at = out.find(b"PK\x01\x02", at + 46)
    return bytes(out)

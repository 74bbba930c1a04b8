"""What a policy trusts when it loads a model, and what a model file may contain before it is loaded.

:class:`Trust` is the policy's part: the skops types ``model.trusted_types`` lists, and pickles
when ``model.trust_pickle`` says so. A registry, an MLflow MLmodel file or a model's own metadata
never add to it.

A ``.skops`` file is a schema of typed nodes; loading it builds those types and may call them. skops
keeps a default list of types it knows to be safe to build and reports every other type in the
file (:func:`skops.io.get_untrusted_types`). We load a file only when each type that audit lists
is named in the policy's ``model.trusted_types`` (:func:`audit_skops`): no trust by module prefix
(``builtins.exec`` is a ``builtins`` type), none from the registry a file came from. Pickle-based
formats cannot be audited at all, so they load only when the policy says ``trust_pickle: true``
(see docs/security.md).
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zipfile import ZipFile

from gates.errors import UserError, first_line

MSG_PICKLE = (
    "'{path}' is a pickle file, which can run arbitrary code when loaded; save the model with "
    "skops (.skops) or set model.trust_pickle: true if you trust its origin"
)
MSG_SKOPS_UNTRUSTED = (
    "the model file contains {n} type(s) that skops does not trust by default: {types}; review each "
    "(docs/security.md) and, if you trust this file, set under model: {line}"
)
MSG_SKOPS_UNREADABLE = "cannot audit the .skops file: {problem}"
MSG_SKOPS_TOO_BIG = ("the .skops file declares {what} of {size:,} bytes uncompressed, over the {limit:,}-byte "
                     "limit: refused before skops reads it (a small zip can declare members far larger than itself)")
#: the most a ``.skops`` zip may declare uncompressed, in all and per member, checked before skops reads it
MAX_SKOPS_TOTAL = 4 << 30
MAX_SKOPS_MEMBER = 2 << 30
MSG_RUNS_CODE = " ({types} can run code or touch the system: no model needs that; never trust this file)"

#: callables and modules that are never part of a model: naming them in a file is an attack
RUNS_CODE_NAMES = frozenset({"exec", "eval", "compile", "open", "__import__", "getattr", "setattr", "delattr",
                             "globals", "locals", "vars", "input", "breakpoint", "execfile"})
RUNS_CODE_MODULES = ("os", "posix", "nt", "subprocess", "sys", "importlib", "pickle", "marshal", "shutil",
                     "socket", "ctypes", "runpy", "code", "pty", "webbrowser", "builtins.__import__")

#: a type name that is safe to write unquoted in a YAML flow list
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


@dataclass(frozen=True)
class Trust:
    """The policy's trust: skops types it vouches for, and whether pickles may load."""

    trust_pickle: bool = False
    trusted_types: tuple[str, ...] = ()


def pickle_refused(name: str) -> str:
    """Return the message refusing a pickle-based model without ``trust_pickle``."""
    return MSG_PICKLE.format(path=name)


def audit_skops(data: bytes, trusted_types: Iterable[str], where: str) -> list[str]:
    """Return the types skops' audit lists in ``data`` once every one is in ``trusted_types``.

    Pass the result as ``skops.io.loads(data, trusted=...)``: it is exactly what the file needs
    beyond skops' defaults, each type vouched for by the policy. Raises UserError (at ``where``)
    naming each type that is not trusted and the ``trusted_types:`` line that would accept it,
    or when the file is not a readable skops archive. Nothing in the file is built or called.
    :func:`load_skops` audits and loads from one parse of the file.

    Examples
    --------
    >>> import skops.io as sio
    >>> from sklearn.linear_model import LogisticRegression
    >>> audit_skops(sio.dumps(LogisticRegression()), (), "model.skops")
    []
    """
    import skops.io as sio

    check_sizes(data, where)
    try:
        listed = [str(t) for t in sio.get_untrusted_types(data=data)]
    except Exception as exc:  # a malformed archive or schema is the file's problem, never ours
        raise UserError(MSG_SKOPS_UNREADABLE.format(problem=first_line(exc, 300)), location=where) from None
    return require_trusted(listed, trusted_types, where)


def load_skops(data: bytes, trusted_types: Iterable[str], where: str) -> Any:
    """Return the object in the ``.skops`` bytes ``data`` once skops' audit lists only ``trusted_types``.

    The same rule as :func:`audit_skops` followed by ``skops.io.loads(data, trusted=listed)``, from
    one parse of the file: skops builds its tree of typed nodes once (nothing in it is built or
    called yet), its audit lists that tree's untrusted types (what ``get_untrusted_types`` returns),
    each must be in ``trusted_types`` (else UserError, as :func:`audit_skops`), skops' own
    ``audit_tree`` checks the tree against exactly those types, and only then is the tree built.
    Where skops does not offer these steps (another version), the file is audited and loaded by
    the public functions, parsing it twice.
    """
    try:
        from skops.io._audit import audit_tree, get_tree
        from skops.io._utils import read_schema
    except ImportError:
        import skops.io as sio

        return sio.loads(data, trusted=audit_skops(data, trusted_types, where))
    try:
        archive = ZipFile(io.BytesIO(data), "r")
    except Exception as exc:  # not a zip archive: the file's problem
        raise UserError(MSG_SKOPS_UNREADABLE.format(problem=first_line(exc, 300)), location=where) from None
    with archive:
        check_zip_sizes(archive, where)
        try:
            schema, context = read_schema(archive)
            tree = get_tree(schema, context, trusted=None)
            listed = sorted(str(t) for t in tree.get_unsafe_set())
        except Exception as exc:  # a malformed archive or schema is the file's problem, never ours
            raise UserError(MSG_SKOPS_UNREADABLE.format(problem=first_line(exc, 300)), location=where) from None
        audit_tree(tree, trusted=require_trusted(listed, trusted_types, where))
        return tree.construct()


def check_sizes(data: bytes, where: str) -> None:
    """Raise UserError when the ``.skops`` bytes ``data`` declare more than skops may unpack (see
    :func:`check_zip_sizes`); bytes that are not a zip are left to skops to refuse."""
    try:
        archive = ZipFile(io.BytesIO(data), "r")
    except Exception:  # noqa: BLE001 -- not a zip: skops' own reader says so
        return
    with archive:
        check_zip_sizes(archive, where)


def check_zip_sizes(archive: ZipFile, where: str) -> None:
    """Raise UserError when ``archive`` declares a member over :data:`MAX_SKOPS_MEMBER` or members
    over :data:`MAX_SKOPS_TOTAL` in all, uncompressed: read from its directory, nothing is inflated."""
    total = 0
    for info in archive.infolist():
        if info.file_size > MAX_SKOPS_MEMBER:
            raise UserError(MSG_SKOPS_TOO_BIG.format(what=f"member '{info.filename}'", size=info.file_size,
                                                     limit=MAX_SKOPS_MEMBER), location=where)
        total += info.file_size
    if total > MAX_SKOPS_TOTAL:
        raise UserError(MSG_SKOPS_TOO_BIG.format(what=f"{len(archive.infolist())} members", size=total,
                                                 limit=MAX_SKOPS_TOTAL), location=where)


def require_trusted(listed: list[str], trusted_types: Iterable[str], where: str) -> list[str]:
    """Return ``listed`` (the types skops' audit found) when each is in ``trusted_types``, else raise
    UserError naming the others, the ``trusted_types:`` line that would accept them, and any that runs code."""
    trusted = tuple(trusted_types)
    missing = sorted(t for t in set(listed) if t not in trusted)
    if missing:
        message = MSG_SKOPS_UNTRUSTED.format(n=len(missing), types=", ".join(missing),
                                             line=trusted_types_line([*trusted, *missing]))
        dangerous = [m for m in missing if runs_code(m)]
        if dangerous:
            message += MSG_RUNS_CODE.format(types=", ".join(dangerous))
        raise UserError(message, location=where)
    return listed


def runs_code(type_name: str) -> bool:
    """True for a name no model needs: a builtin that runs code or reaches the system, or such a module's."""
    module, _, name = type_name.rpartition(".")
    if module == "builtins" and name in RUNS_CODE_NAMES:
        return True
    return any(module == m or module.startswith(m + ".") for m in RUNS_CODE_MODULES)


def trusted_types_line(types: Iterable[str]) -> str:
    """Return the ``trusted_types: [...]`` line listing ``types`` (sorted, each once, quoted when needed)."""
    names = sorted(set(types))
    return "trusted_types: [" + ", ".join(n if _PLAIN.fullmatch(n) else _quoted(n) for n in names) + "]"


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"

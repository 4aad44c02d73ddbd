"""Replacing an output folder without ever losing it.

The new output is written to a hidden sibling first. Then the old one is moved aside, the new one
moved in, and the old one removed only once the new one is in place: a failure at any step leaves
exactly one complete output at the target, old or new (a failed move in puts the old one back).
Only a crash of the driver between the two moves (milliseconds) leaves the old one at its aside
name, which the error messages and the log name.

The steps use three operations of a file system (:class:`Folders`), so they run the same on
Hadoop's FileSystem (local, ``hdfs://``, ``s3a://``) in the Spark engine and on plain folders.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Protocol

from carnn_pyfunc.batch.outcome import BatchError

logger = logging.getLogger(__name__)


class Folders(Protocol):
    """What the swap needs of a file system; each operation raises OSError when it fails."""

    def sibling(self, path: str, name: str) -> str:
        """The path named ``name`` in the folder that holds ``path``."""

    def exists(self, path: str) -> bool: ...

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, which does not exist."""

    def delete(self, path: str) -> None:
        """Remove the folder ``path`` and all it holds."""


def write_then_replace(folders: Folders, target: str, write: Callable[[str], None]) -> None:
    """``write(path)`` the new output to a hidden sibling of ``target``, then swap it in
    (:func:`replace_folder`); the sibling is removed whatever happens."""
    stem = f".{target.rstrip('/').rsplit('/', 1)[-1]}.{uuid.uuid4().hex[:8]}"
    partial = folders.sibling(target, f"{stem}.partial")
    try:
        write(partial)
        replace_folder(folders, partial, target, folders.sibling(target, f"{stem}.previous"))
    finally:
        if folders.exists(partial):
            folders.delete(partial)


def replace_folder(folders: Folders, new: str, target: str, aside: str) -> None:
    """Put the complete folder ``new`` at ``target``, replacing what is there. ``aside`` (a free
    sibling name) holds the previous output while the new one moves in. BatchError when the new
    one could not be put in place: the previous one is then at ``target`` again."""
    if not folders.exists(target):
        _move(folders, new, target, f"{target}: could not move the finished output into place")
        return
    _move(folders, target, aside, f"{target}: could not move the previous output aside")
    try:
        _move(folders, new, target, f"{target}: could not move the finished output into place")
    except BaseException:
        _put_back(folders, aside, target)
        raise
    try:
        folders.delete(aside)
    except OSError as err:  # the new output is in place: only the old one's space is lost
        logger.warning("%s: replaced; the previous output is left at %s (%s)", target, aside, err)


def _move(folders: Folders, source: str, target: str, failed: str) -> None:
    try:
        folders.rename(source, target)
    except OSError as err:
        raise BatchError(f"{failed} ({err}); the previous output, if any, is kept") from None


def _put_back(folders: Folders, aside: str, target: str) -> None:
    try:
        folders.rename(aside, target)
    except OSError as err:
        raise BatchError(
            f"{target}: the finished output could not be moved into place, nor the previous one "
            f"back ({err}); the previous output is at {aside}"
        ) from None

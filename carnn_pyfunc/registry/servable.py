"""Refuse to move a version the running code cannot serve, before any gate scores it.

:func:`carnn_pyfunc.formats.servable` reads the version's model format (its MLmodel file and
format marker, never the model); a version this code cannot serve here (a format it refuses, a
newer one, or a Keras-only one where TensorFlow is not installed) is refused with that one line,
recorded on the version as a ``refusal.NNN`` tag like the production gates' refusals. Promotion
checks it first; rollback checks the version it would put back; rollout calls it too.
"""

from __future__ import annotations

import contextlib

from carnn_pyfunc.formats import servable
from carnn_pyfunc.registry.stages import CANDIDATE, PRODUCTION, STAGING, PromotionRefused, Refusal


def version_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"


def refuse_unservable(store, version: str, stage: str, to: str, lock=None) -> None:
    """PromotionRefused, recorded on the version, if this code cannot serve it.

    ``store``: the model's RegistryStore; ``to``: staging, production or auto; ``lock``: the
    registry lock to take for the write (None: the caller holds it already).
    """
    ok, why = servable(version_uri(store.name, version))
    if ok:
        return
    target = to if to in (STAGING, PRODUCTION) else STAGING if stage == CANDIDATE else PRODUCTION
    refusal = Refusal(version, stage, target, f"this carnn cannot serve it: {why}")
    with lock.held() if lock is not None else contextlib.nullcontext():
        store.apply([], refusal)
    raise PromotionRefused(why)

"""Status conditions: build them with a clock passed in, keep transition times stable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from . import models


def rfc3339(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(
    previous: Sequence[models.Condition],
    wanted: Sequence[models.Condition],
    *,
    now: dt.datetime,
) -> list[models.Condition]:
    """The wanted conditions; lastTransitionTime stays when a condition's status is unchanged."""
    before = {c.type: c for c in previous}
    out = []
    for cond in wanted:
        old = before.get(cond.type)
        if old is not None and old.status == cond.status and old.last_transition_time:
            stamp = old.last_transition_time
        else:
            stamp = rfc3339(now)
        out.append(cond.model_copy(update={"last_transition_time": stamp}))
    return out


def make(
    type_: str, ok: bool, reason: str, message: str, *, generation: int = 0
) -> models.Condition:
    """A condition per the Kubernetes API conventions: CamelCase reason, a message for
    humans, and the generation it was decided from."""
    return models.Condition(
        type=type_,
        status="True" if ok else "False",
        reason=reason,
        message=message,
        observed_generation=generation,
    )

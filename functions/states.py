"""A model's legal states and transitions, written down once.

A model is in exactly one state:
- active: offered to clients (`getActiveModels`, quotes, recommendations);
- inactive: kept, not offered;
- deleted: soft deleted (deprecated): inactive, kept with its history, restorable.
and carries two flags:
- locked: refuses every transition but lock and unlock;
- default: only ever on an active model. Whenever any model is active, exactly one active
  model is the default; that is checked at the end of each mutation, a whole import
  included (models.invariants), not after each of its steps.

The table below says, for each transition, the states it starts from, the state it ends in,
and who may make it. Every path that changes a model asks `check` first: the mutations,
revert, the catalog plan and apply, bulk actions, duplicate (and the console, which calls
them). A transition from a state the table does not list is refused with INACTIVE, one on a
locked model with LOCKED, and one the caller may not make with FORBIDDEN: the same
authorization as the function the transition stands for, whichever path makes it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from engine.errors import FunctionError
from engine.runtime import Identity, missing_grant

ACTIVE, INACTIVE, DELETED = "active", "inactive", "deleted"
STATES = frozenset({ACTIVE, INACTIVE, DELETED})


class Facts(Protocol):
    """What the table reads of a model: a row, or a model as a plan sees it."""

    model_id: str
    is_active: bool
    is_deprecated: bool
    is_locked: bool


def state_of(model: Facts) -> str:
    if model.is_deprecated:
        return DELETED
    return ACTIVE if model.is_active else INACTIVE


def contradiction(asked: dict) -> tuple[str, str] | None:
    """A state asked for (a new model, a catalog file's entry) that no model can be in: the
    field at fault and why; None when there is none."""
    if asked.get("isDeprecated") and asked.get("isActive"):
        return "isActive", "a deleted model (isDeprecated) cannot be active"
    return None


@dataclass(frozen=True)
class Transition:
    name: str
    function: str  # the function that stands for it: its scope and role are the transition's
    sources: frozenset[str]  # the states it starts from
    target: str | None  # the state it ends in; None: the state is kept (a flag or fields change)
    scope: str = "catalog:write"
    admin_only: bool = False  # signed-in users also need the admin role
    while_locked: bool = False  # allowed on a locked model
    refused: str = "cannot do that in this state"  # why the other states are refused


CREATE = Transition("create", "models:createModel", frozenset(), None)
ENABLE = Transition("enable", "models:setModelsActive", frozenset({INACTIVE}), ACTIVE,
                    refused="is deleted; restore it first (models:restoreModel)")
DISABLE = Transition("disable", "models:setModelsActive", frozenset({ACTIVE}), INACTIVE,
                     refused="is deleted, so already off")
DELETE = Transition("delete", "models:deleteModel", frozenset({ACTIVE, INACTIVE}), DELETED)
RESTORE = Transition("restore", "models:restoreModel", frozenset({DELETED, INACTIVE}), ACTIVE)
LOCK = Transition("lock", "models:lockModel", STATES, None, admin_only=True, while_locked=True)
UNLOCK = Transition("unlock", "models:unlockModel", STATES, None, admin_only=True,
                    while_locked=True)
SET_DEFAULT = Transition("set-default", "models:setDefaultModel", frozenset({ACTIVE}), None,
                         refused="is not active; activate or restore it first")
EDIT = Transition("edit", "models:updateModel", STATES, None)

TRANSITIONS = (CREATE, ENABLE, DISABLE, DELETE, RESTORE, LOCK, UNLOCK, SET_DEFAULT, EDIT)


def permit(identity: Identity, transition: Transition, model_id: str) -> None:
    """FORBIDDEN unless `identity` may make the transition (whichever path it takes)."""
    missing = missing_grant(identity, transition.scope, transition.admin_only)
    if missing is not None:
        raise FunctionError(
            "FORBIDDEN",
            f"{transition.name} on {model_id} needs {missing}, as {transition.function} does",
            field="modelId",
        )


def writable(model: Facts) -> None:
    if model.is_locked:
        raise FunctionError(
            "LOCKED", f"{model.model_id} is locked; unlock it before changing it",
            field="modelId",
        )


def check(identity: Identity, model: Facts, transition: Transition) -> str:
    """The state `model` is in after `transition` (its own state when it is already there);
    refused when the caller, the lock or the table does not allow it."""
    permit(identity, transition, model.model_id)
    if not transition.while_locked:
        writable(model)
    state = state_of(model)
    if state == transition.target:
        return state
    if state not in transition.sources:
        raise FunctionError("INACTIVE", f"{model.model_id} {transition.refused}",
                            field="modelId")
    return transition.target or state


def route(start: str, end: str) -> list[Transition]:
    """The fewest transitions of the table that lead from one state to another."""
    paths = deque([(start, [])])
    seen = {start}
    while paths:
        state, path = paths.popleft()
        if state == end:
            return path
        for transition in TRANSITIONS:
            after = transition.target
            if after is not None and state in transition.sources and after not in seen:
                seen.add(after)
                paths.append((after, [*path, transition]))
    raise AssertionError(f"the table has no way from {start} to {end}")


def move(model, state: str, now: int) -> None:
    """Put a row in `state`. A model that is not active is never the default."""
    model.is_active = state == ACTIVE
    if state == DELETED:
        if not model.is_deprecated:
            model.is_deprecated, model.deprecated_at = True, now
    else:
        model.is_deprecated, model.deprecated_at = False, None
    if state != ACTIVE:
        model.is_default = False

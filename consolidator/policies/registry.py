"""One explicit registration of the planner policies: name -> builder with typed, validated arguments."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from consolidator.domain.errors import UserError
from consolidator.policies.aware import AwarePolicy
from consolidator.policies.base import Policy
from consolidator.policies.baselines import IdealFirstFit, NoConsolidation
from consolidator.policies.paper import PaperPolicy

BUILDERS: dict[str, Callable[..., Policy]] = {
    "paper": PaperPolicy,
    "aware": AwarePolicy,
    "ideal": IdealFirstFit,
    "none": NoConsolidation,
}


def policy_names() -> list[str]:
    return sorted(BUILDERS)


def make_policy(name: str, **args: Any) -> Policy:
    """Build a policy by name; unknown names and arguments, or wrong types, raise UserError."""
    builder = BUILDERS.get(name)
    if builder is None:
        raise UserError(f"unknown policy {name!r} (known: {', '.join(policy_names())})", field="policy")
    fields: dict[str, dataclasses.Field[Any]] = (
        {f.name: f for f in dataclasses.fields(builder)} if dataclasses.is_dataclass(builder) else {}
    )
    for key, value in args.items():
        if key not in fields or fields[key].type not in ("float", "int", float, int):
            raise UserError(f"policy {name!r} takes no argument {key!r}", field=f"policy.{key}")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError(f"must be a number, got {value!r}", field=f"policy.{key}")
    try:
        return builder(**{k: float(v) for k, v in args.items()})
    except ValueError as exc:
        raise UserError(str(exc), field="policy") from exc

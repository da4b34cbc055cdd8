"""Loading a ``state_dict`` into an optimizer: every check first, then every change.

The layout is written by :meth:`fastopt.Optimizer.state_dict`; dicts from fastopt 0.1.0
(one group, no hyperparameters, the rule's scalar state at the top level) load too.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from ._checks import is_live
from .kernels._blockwise import ABSMAX, blocks
from .kernels._precision import widen
from .schedules import Schedule, from_state, to_state

STATE_KEY = re.compile(r"^(\d+)\.(\w+)$")


def plain(v: Any) -> Any:
    """A Python value from a value or a 0-d/1-d array (as ``np.load`` returns them)."""
    if isinstance(v, np.ndarray):
        return v.item() if v.ndim == 0 else tuple(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    return v


def encode(kind: str, value: Any) -> Any:
    """A hyperparameter as ``np.savez`` stores it without pickling: None as NaN."""
    if kind == "eps_pair":
        return tuple(encode("optional_nonnegative", v) for v in value)
    if kind == "choice" and value is None:
        return "None"
    return math.nan if kind == "optional_nonnegative" and value is None else value


def decode(kind: str, value: Any) -> Any:
    value = plain(value)
    if kind == "eps_pair" and isinstance(value, (tuple, list)):
        return tuple(decode("optional_nonnegative", v) for v in value)
    if kind == "choice" and value == "None":
        return None
    if kind == "optional_nonnegative" and isinstance(value, float) and math.isnan(value):
        return None
    return value


def lr_entries(key: str, lr: Any) -> dict[str, Any]:
    """A group's lr as entries of numbers and strings: a float; a built-in schedule's
    kind under ``key`` and its numbers under "key.*" (fastopt.schedules.to_state); for a
    function of the user's, "callable" and its name under "key.name": a function is not
    stored, and loading asks for it again."""
    if isinstance(lr, Schedule):
        return {f"{key}.{k}" if k else key: v for k, v in to_state(lr).items()}
    if is_live(lr):
        return {key: lr.item()}
    if callable(lr):
        return {key: "callable", f"{key}.name": getattr(lr, "__qualname__", repr(lr))}
    return {key: lr}


def _loaded_lr(owner: str, sd: Mapping[str, Any], key: str, current: Any) -> Any:
    """The lr ``lr_entries`` stored under ``key``: a float, a schedule rebuilt from its
    numbers, or for a function of the user's the group's current lr if it is one (else
    an error saying to give it); a schedule pickled by an older release as it is."""
    value = plain(sd[key])
    if not isinstance(value, str):
        return value
    if value == "callable":
        if callable(current):
            return current
        name = plain(sd.get(f"{key}.name", "a function"))
        raise ValueError(f"{owner}: {key} was a function of your own ({name}), which a "
                         f"state_dict does not store; build the optimizer with it as that "
                         f"group's lr (got {current!r}), then load")
    try:
        return from_state({k[len(key) + 1:] if k != key else "": v for k, v in sd.items()
                           if k == key or k.startswith(key + ".")})
    except ValueError as exc:
        raise ValueError(f"{owner}: {key}: {exc}") from None


def whole_number(owner: str, key: str, value: Any) -> int:
    value = plain(value)
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{owner}: {key} must be an integer >= 0, got {value!r}")
    return int(value)


def _groups_given(owner: str, opt: Any, sd: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per group: its param indices, step, hyperparameter overrides and scalar state."""
    extra_names = list(opt.rule.extra)
    if "n_groups" not in sd:                       # fastopt 0.1.0: one group
        if len(opt.param_groups) != 1:
            raise ValueError(f"{owner}: state_dict has one param group (fastopt 0.1.0), this "
                             f"optimizer has {len(opt.param_groups)}")
        overrides = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
        return [dict(params=opt._groups[0].positions,
                     step=whole_number(owner, "step", sd["step"]), overrides=overrides,
                     extra={k: sd.get(k) for k in extra_names})]
    n_groups = whole_number(owner, "n_groups", sd["n_groups"])
    if n_groups != len(opt.param_groups):
        raise ValueError(f"{owner}: state_dict has {n_groups} param groups, this optimizer has "
                         f"{len(opt.param_groups)}")
    groups = []
    for j in range(n_groups):
        prefix = f"groups.{j}."
        missing = [k for k in ("params", "step", *extra_names) if prefix + k not in sd]
        if missing:
            raise ValueError(f"{owner}: state_dict lacks {[prefix + k for k in missing]}")
        current = opt.param_groups[j]          # keywords newer than the dict keep theirs
        kinds = {h.name: h.kind for h in opt.rule.hyperparams}
        indices = sd[prefix + "params"]
        if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
            raise ValueError(f"{owner}: {prefix}params must be an integer array of param "
                             f"indices, got {indices!r:.60}")
        overrides = {k: decode(kinds[k], sd[prefix + k]) if prefix + k in sd else current[k]
                     for k in opt._keys() if k != "lr"}
        overrides["lr"] = _loaded_lr(owner, sd, prefix + "lr", current["lr"]) \
            if prefix + "lr" in sd else current["lr"]
        groups.append(dict(
            params=[int(i) for i in indices.ravel()],
            step=whole_number(owner, prefix + "step", sd[prefix + "step"]),
            overrides=overrides, extra={k: sd[prefix + k] for k in extra_names}))
    return groups


def load(opt: Any, state_dict: Mapping[str, Any], apply: bool = True) -> None:
    """Check ``state_dict`` against ``opt`` completely, then (with ``apply``) restore it."""
    name = type(opt).__name__
    owner = f"{name}.load_state_dict"
    sd = dict(state_dict)
    for key in ("rule", "step", "n_params"):
        if key not in sd:
            raise ValueError(f"{owner}: state_dict has no {key!r}; is it a state_dict()?")
    rule = plain(sd["rule"])
    if rule != name:
        raise ValueError(f"{owner}: state_dict is for rule {rule!r}, not {name!r}")
    if any(not isinstance(k, str) for k in sd):
        raise ValueError(f"{owner}: state_dict keys are strings; got "
                         f"{[k for k in sd if not isinstance(k, str)]}")
    n_params = whole_number(owner, "n_params", sd["n_params"])
    if n_params != len(opt._arrays):
        raise ValueError(f"{owner}: state_dict holds {n_params} params, this optimizer has "
                         f"{len(opt._arrays)}")
    step = whole_number(owner, "step", sd["step"])
    plans = []
    expected: dict[str, Any] = {}
    for j, (given, group) in enumerate(zip(_groups_given(owner, opt, sd), opt._groups)):
        if given["params"] != group.positions:
            raise ValueError(f"{owner}: param group {j} holds params {given['params']} in the "
                             f"state_dict, {group.positions} here")
        lr, hp = opt._checked_group(f"{owner}: param_groups[{j}]", given["overrides"],
                                    group.dtype)
        extra = opt.rule.checked_extra(f"{owner}: param_groups[{j}]",
                                       {k: plain(v) for k, v in given["extra"].items()})
        opt.rule.check_loaded_extra(f"{owner}: param_groups[{j}]", hp, given["step"], extra)
        for i in group.positions:
            for s in opt._state_names(hp, i):
                size, shape = opt._arrays[i].size, opt._arrays[i].shape
                expected[f"{i}.{s}"] = (blocks(size),) if s.endswith(ABSMAX) else \
                    shape if s == "master" else opt.rule.state_shape(s, shape)
        plans.append((group, given, lr, hp, extra))
    group_keys = {f"groups.{j}.{k}" for j in range(len(plans))
                  for k in ("params", "step", *opt._keys(), *opt.rule.extra)}
    unknown = sorted(k for k in sd if k.startswith("groups.") and k not in group_keys
                     and not re.match(r"groups\.\d+\.lr\.", k))     # a schedule's numbers
    if unknown:
        raise ValueError(f"{owner}: state_dict has keys this optimizer does not know: "
                         f"{unknown[:8]}")
    given_keys = {k for k in sd if STATE_KEY.match(k)}
    for key in [k for k in expected if k.endswith(".master") and k not in given_keys]:
        sd[key] = widen(opt._arrays[int(key.split(".")[0])])   # a dict saved without one
        given_keys.add(key)
    if given_keys != set(expected):
        missing, unexpected = sorted(set(expected) - given_keys), sorted(given_keys - set(expected))
        raise ValueError(f"{owner}: state arrays do not match this optimizer "
                         f"(missing {missing}, unexpected {unexpected})")
    for key, shape in expected.items():
        v = sd[key]
        if isinstance(v, np.ndarray):
            sd[key] = v = v.copy()      # as if read before writing (it may view our state)
        if not isinstance(v, np.ndarray):
            raise TypeError(f"{owner}: {key} must be a numpy.ndarray, got {type(v).__name__}")
        kept = opt._state_dtype_of(int(key.split(".")[0]), key.split(".", 1)[1])
        if v.dtype != kept and v.dtype.itemsize == kept.itemsize and v.dtype.kind in "uV":
            sd[key] = v = v.view(kept)    # bfloat16 bits, as np.load gives them back (|V2)
        if v.shape != shape or v.dtype != kept:
            param = opt._arrays[int(key.split(".")[0])]
            why = f"its param: {param.dtype}, state_dtype={opt._precision.state_dtype!r}"
            raise ValueError(f"{owner}: {key} has shape {v.shape} and dtype {v.dtype}; this "
                             f"optimizer keeps it as {shape} {kept} ({why})")
        name = key.split(".", 1)[1]
        if (name in opt.rule.nonnegative_state or name.endswith(ABSMAX)) and (v < 0).any():
            raise ValueError(f"{owner}: {key} has negative entries (smallest {float(v.min())!r}); "
                             "this state is a sum of squares or a norm, never negative")
    if apply:
        _restore(opt, plans, sd, step)


def _restore(opt: Any, plans: list, sd: Mapping[str, Any], step: int) -> None:
    rebuilt = False
    for values, (group, given, lr, hp, extra) in zip(opt.param_groups, plans):
        dict.update(values, opt._as_given(lr, hp))
        rebuilt |= opt._set_hyperparams(group, hp)
        group.lr, group.t, group.extra = lr, given["step"], extra
    if rebuilt:
        opt._rebuild_resolver()
    for i, st in enumerate(opt.state):
        for k, view in st.items():
            opt._backend.copy_from_numpy(view, sd[f"{i}.{k}"])
    opt._changes.clear()
    opt._steps.value = step
    if opt.rule.switch_state:       # where the params are: the mode they were saved in
        opt._evaluating = not bool(plain(sd.get("train_mode", True)))

"""Param groups as PyTorch has them: what ``params`` may be, and the live group dicts.

``params`` is one array, any iterable of arrays (a generator included), or a list of
dicts ``{"params": ..., "lr": ..., ...}`` in which any hyperparameter of the rule may be
set per group, the constructor's keywords being the defaults. ``opt.param_groups`` holds
one :class:`ParamGroup` per group: a dict whose changes the optimizer applies at its next
step.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from typing import Any


def is_one_array(x: Any) -> bool:
    """Whether ``x`` is a single array (NumPy, CuPy, or anything exposing an array
    interface) rather than a collection of arrays."""
    return any(hasattr(x, a) for a in ("__array_interface__", "__cuda_array_interface__",
                                       "__array__"))


def _type_name(x: Any) -> str:
    return type(x).__name__


def _arrays(owner: str, what: str, params: Any) -> list:
    """``params`` (one array or an iterable of them) as a non-empty list."""
    if is_one_array(params):
        return [params]
    if isinstance(params, (set, frozenset, Mapping)) or isinstance(params, (str, bytes)):
        raise TypeError(f"{owner}: {what} must be an array or an ordered iterable of arrays "
                        f"(a list, a tuple, a generator), got a {_type_name(params)}")
    if not isinstance(params, Iterable):
        return [params]          # the array checks say what is wrong with it
    arrays = list(params)
    if not arrays:
        raise ValueError(f"{owner}: {what} is empty; give an array or a list of arrays")
    return arrays


def group_specs(owner: str, params: Any, keys: tuple[str, ...]
                ) -> tuple[str, list[tuple[list, dict[str, Any]]]]:
    """(form, [(arrays, the group's own hyperparameters)]) from ``params``; form is "array"
    (one array: grads are one array too), "arrays" or "groups". ``keys`` are the rule's
    hyperparameters; any other key in a group dict is an error naming it."""
    if is_one_array(params):
        return "array", [([params], {})]
    items = _arrays(owner, "params", params)
    dicts = [isinstance(x, Mapping) for x in items]
    if not any(dicts):
        return "arrays", [(items, {})]
    if not all(dicts):
        raise TypeError(f"{owner}: params must be all arrays or all param group dicts, got "
                        f"{[_type_name(x) for x in items]}")
    return "groups", [group_spec(f"{owner}: param_groups[{j}]", d, keys)
                      for j, d in enumerate(items)]


def group_spec(owner: str, group: Mapping[str, Any], keys: tuple[str, ...]
               ) -> tuple[list, dict[str, Any]]:
    """(arrays, overrides) of one param group dict, or an error naming the key."""
    if "params" not in group:
        raise ValueError(f"{owner} has no 'params' key; a param group is a dict "
                         "{'params': [arrays], <hyperparameter>: value, ...}")
    unknown = sorted(set(group) - {"params", *keys}, key=str)
    if unknown:
        raise ValueError(f"{owner} has unknown keys {unknown}; a group may set "
                         f"{list(keys)}")
    overrides = {k: v for k, v in group.items() if k != "params"}
    return _arrays(owner, "params", group["params"]), overrides


class Changes:
    """Which groups of one optimizer were changed since its last step; ``lock`` is the
    optimizer's (a change from another thread waits for a step to end)."""

    def __init__(self, lock: Any = None) -> None:
        self.groups: set[int] = set()
        self.keys: set[str] = set()     # the keys set in them (cleared with the last group)
        self.lock = lock

    def __getstate__(self) -> dict:
        return {"groups": set(self.groups), "keys": set(self.keys),
                "lock": None}           # the copy gets its own lock

    def __setstate__(self, state: dict) -> None:
        """(A pickle without ``keys``: its pending groups take the full checks.)"""
        self.__dict__.update(state)
        if "keys" not in state:
            self.keys = {"unknown"} if self.groups else set()

    def clear(self) -> None:
        self.groups.clear()
        self.keys.clear()


class ParamGroup(dict):
    """One param group: ``params`` (a tuple, fixed) and the group's hyperparameters.

    Setting a hyperparameter (``group["lr"] = 1e-4``) takes effect at the optimizer's next
    step, which validates it first; an unknown key, a removed key or new ``params`` is an
    error at once (use ``add_param_group`` for new params)."""

    def __init__(self, values: Mapping[str, Any], index: int, keys: tuple[str, ...],
                 changes: Changes) -> None:
        super().__init__(values)
        self._index, self._keys, self._changes = index, keys, changes

    def __reduce__(self) -> tuple:
        return ParamGroup, (dict(self), self._index, self._keys, self._changes)

    def _check_key(self, key: Any) -> None:
        if key == "params":
            raise KeyError("a param group's params are fixed; add params with "
                           "optimizer.add_param_group({'params': [...], ...})")
        if key not in self._keys:
            raise KeyError(f"{key!r} is not a hyperparameter of this rule; a group has "
                           f"{list(self._keys)}")

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_key(key)
        with self._changes.lock or nullcontext():    # none while being unpickled
            super().__setitem__(key, value)
            self._changes.groups.add(self._index)
            self._changes.keys.add(key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Every key checked first: an unknown one changes nothing."""
        changes = dict(*args, **kwargs)
        for key in changes:
            self._check_key(key)
        for key, value in changes.items():
            self[key] = value

    def __ior__(self, other: Any) -> ParamGroup:
        self.update(other)
        return self

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def _no_removal(self, *args: Any) -> Any:
        raise KeyError("param group keys cannot be removed; set a value instead")

    __delitem__ = pop = popitem = clear = _no_removal


class ParamGroups(list):
    """``opt.param_groups``: the group dicts, in order. Their values may change; the list
    may not (a replaced, added, removed or reordered dict would not reach the kernels):
    use ``add_param_group``."""

    def _add(self, group: ParamGroup) -> None:
        list.append(self, group)

    def _fixed(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("param_groups cannot be changed as a list: change values in its "
                        "dicts (param_groups[0]['lr'] = ...), or add a group with "
                        "add_param_group")

    __delitem__ = __iadd__ = __imul__ = append = extend = insert = pop = remove = clear = \
        sort = reverse = _fixed

    def __setitem__(self, index: Any, value: Any) -> None:
        """Only what ``param_groups[j] |= {...}`` does: the same dict back in its place
        (its values were set, and are checked at the next step)."""
        if isinstance(index, slice) or value is not list.__getitem__(self, index):
            self._fixed()

    def __reduce__(self) -> tuple:
        return _param_groups, (list(self),)


def _param_groups(groups: list) -> ParamGroups:
    out = ParamGroups()
    for g in groups:
        out._add(g)
    return out

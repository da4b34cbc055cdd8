"""The one optimizer API every rule shares: construction, ``step``, ``state_dict``."""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, Sequence, Union

import numpy as np

from .kernels import _checks
from .backends import FLOAT_DTYPES, HostBackend, resolve_backend

Schedule = Callable[[int], float]
LearningRate = Union[float, Schedule]
Arrays = Union[Any, Sequence[Any]]


def _as_list(x: Arrays, single: bool, what: str, count: int) -> list:
    """``x`` as a list of arrays, structured like the params (one array or a sequence)."""
    if single:
        if isinstance(x, (list, tuple)):
            raise TypeError(f"{what} must be a single array like params, got a "
                            f"{type(x).__name__} of {len(x)}")
        return [x]
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"{what} must be a list or tuple of {count} arrays like params, "
                        f"got {type(x).__name__}")
    if len(x) != count:
        raise ValueError(f"{what} must hold {count} arrays (one per param), got {len(x)}")
    return list(x)


def checked_params(owner: str, params: Arrays, backend_name: str
                   ) -> tuple[bool, HostBackend, list]:
    """(single?, backend, arrays) for ``params``: one array or a list of arrays the
    resolved backend can update in place (float32/float64, C-contiguous, writeable, not
    sharing memory); a clear error otherwise, before anything is allocated."""
    single = not isinstance(params, (list, tuple))
    plist = [params] if single else list(params)
    if not plist:
        raise ValueError(f"{owner}: params is empty; give an array or a list of arrays")
    backend = resolve_backend(backend_name, plist)
    arrays = []
    for i, p in enumerate(plist):
        what = f"{owner}: " + ("params" if single else f"params[{i}]")
        a = backend.check_array(p, what)
        if a.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{what} must have dtype float32 or float64, got {a.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{what} must be C-contiguous (it is updated in place); "
                             f"got strides {a.strides} for shape {a.shape}")
        if not backend.writeable(a):
            raise ValueError(f"{what} is read-only; params are updated in place")
        arrays.append(a)
    spans = sorted((backend.address(a), backend.address(a) + a.nbytes, i)
                   for i, a in enumerate(arrays) if a.nbytes)
    for (_, end, i), (start, _, j) in zip(spans, spans[1:]):
        if start < end:
            raise ValueError(f"{owner}: params[{i}] and params[{j}] share memory; each "
                             "param must be updated once per step")
    return single, backend, arrays


class Optimizer:
    """Base class: holds the params, the state and the bound step function of one rule.

    The classes in :mod:`fastopt.optimizers` set ``rule`` (a :class:`fastopt.kernels.Rule`)
    and pass the hyperparameters it validated.
    """

    rule: ClassVar[Any]

    def __init__(self, params: Arrays, lr: LearningRate, backend: str,
                 hyperparams: Mapping[str, Any]) -> None:
        self._single, self._backend, arrays = checked_params(type(self).__name__, params,
                                                             backend)
        self._lr = self._checked_lr(lr)
        self._hp = dict(hyperparams)
        self._params = params
        self._arrays = arrays
        self._flat = [a.reshape(-1) for a in arrays]
        used = self.rule.state_used(self._hp)
        self._state = [{s: self._backend.zeros(a.size, a.dtype, self.rule.state_fill(s, self._hp))
                        for s in used} for a in arrays]
        self._slots = [tuple(st.get(s, flat) for s in self.rule.state)
                       for st, flat in zip(self._state, self._flat)]
        self._dtypes = tuple(dict.fromkeys(a.dtype for a in arrays))
        self._dtype_index = [self._dtypes.index(a.dtype) for a in arrays]
        self._kernels = [self._backend.kernel(self.rule, self._hp, a) for a in arrays]
        self._t = 0
        self._extra = dict(self.rule.extra)

    # -- checks --------------------------------------------------------------------------
    def _checked_lr(self, lr: Any) -> LearningRate:
        return _checks.learning_rate_or_schedule(type(self).__name__, "lr", lr)

    def _lr_at(self, t: int) -> float:
        lr = self._lr
        if callable(lr):
            return _checks.learning_rate(type(self).__name__, lr(t), step=t)
        return lr

    def _checked_grads(self, grads: Arrays) -> list:
        """The grads, flat, after checking each matches its param; nothing is modified."""
        ok = self._backend.grad_matches
        if self._single:
            if ok(grads, self._arrays[0]):
                return [grads if grads.ndim == 1 else grads.reshape(-1)]
        elif (isinstance(grads, (list, tuple)) and len(grads) == len(self._arrays)
              and all(map(ok, grads, self._arrays))):
            return [g if g.ndim == 1 else g.reshape(-1) for g in grads]
        return self._converted_grads(grads)

    def _converted_grads(self, grads: Arrays) -> list:
        """The slow path: view other libraries' device arrays (e.g. torch CUDA tensors) as
        the backend's arrays, or raise the error that says what is wrong with ``grads``."""
        name = type(self).__name__
        glist = _as_list(grads, self._single, f"{name}: grads", len(self._arrays))
        flat = []
        for i, (g, p) in enumerate(zip(glist, self._arrays)):
            what = f"{name}: grads" if self._single else f"{name}: grads[{i}]"
            g = self._backend.check_array(g, what)
            if g.shape != p.shape:
                raise ValueError(f"{what} has shape {g.shape}, its param has {p.shape}")
            if g.dtype != p.dtype:
                raise TypeError(f"{what} has dtype {g.dtype}, its param has {p.dtype}")
            if not g.flags.c_contiguous:
                raise ValueError(f"{what} must be C-contiguous, got strides {g.strides}")
            if not self._backend.grad_matches(g, p):
                raise ValueError(f"{what} is on another device than its param "
                                 f"({self._backend.device_of(g)} vs {self._backend.device_of(p)})")
            flat.append(g.reshape(-1))
        return flat

    # -- the step ------------------------------------------------------------------------
    def step(self, grads: Arrays) -> None:
        """One fused update of every param in place, from ``grads`` (structured like params)."""
        flat_grads = self._checked_grads(grads)
        t = self._t + 1
        scalars, extra = self.rule.host_scalars(self._hp, t, self._lr_at(t), self._extra)
        casts = [np.array(scalars, dtype=dt) for dt in self._dtypes]   # once per dtype
        for kernel, p, g, slots, k in zip(self._kernels, self._flat, flat_grads, self._slots,
                                          self._dtype_index):
            kernel(p, g, slots, casts[k])
        self._t = t
        self._extra = extra

    # -- introspection -------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The backend the optimizer runs on: "numpy", "numba" or "cupy"."""
        return self._backend.name

    @property
    def params(self) -> Arrays:
        """The arrays this optimizer updates, as given."""
        return self._params

    @property
    def step_count(self) -> int:
        """How many steps have been taken (t of the last step)."""
        return self._t

    @property
    def hyperparams(self) -> dict:
        """The keyword arguments in force (the rule's fixed ones left out)."""
        hp = {k: v for k, v in self._hp.items() if k not in self.rule.fixed}
        return dict(lr=self._lr, **hp)

    @property
    def state(self) -> list[dict]:
        """Per param, its state arrays (views, shaped like the param)."""
        return [{k: v.reshape(a.shape) for k, v in st.items()}
                for st, a in zip(self._state, self._arrays)]

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams.items())
        return f"{type(self).__name__}({hp}, backend={self.backend!r}, step={self._t})"

    # -- state_dict ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as a flat dict of NumPy arrays and Python scalars.

        Keys: ``rule``, ``step``, ``n_params``, the rule's scalar state (e.g. Nadam's
        ``mu_product``) and ``"{i}.{name}"`` for each state array of param i. It can be
        saved with ``np.savez(file, **sd)`` and loaded into an optimizer of the same rule
        and param shapes on any backend.
        """
        sd: dict[str, Any] = {"rule": type(self).__name__, "step": self._t,
                              "n_params": len(self._arrays), **self._extra}
        for i, (st, a) in enumerate(zip(self._state, self._arrays)):
            for k, v in st.items():
                sd[f"{i}.{k}"] = self._backend.to_numpy(v).reshape(a.shape)
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; every check runs before anything is changed."""
        name = type(self).__name__
        sd = dict(state_dict)
        scalar = {k: _plain_scalar(sd.get(k)) for k in ("rule", "step", "n_params", *self._extra)}
        if scalar["rule"] != name:
            raise ValueError(f"{name}.load_state_dict: state_dict is for rule "
                             f"{scalar['rule']!r}, not {name!r}")
        if scalar["n_params"] != len(self._arrays):
            raise ValueError(f"{name}.load_state_dict: state_dict holds {scalar['n_params']} "
                             f"params, this optimizer has {len(self._arrays)}")
        step = scalar["step"]
        if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 0:
            raise ValueError(f"{name}.load_state_dict: step must be an integer >= 0, got {step!r}")
        for k in self._extra:
            if not isinstance(scalar[k], (float, int)) or isinstance(scalar[k], bool):
                raise ValueError(f"{name}.load_state_dict: {k} must be a number, got {scalar[k]!r}")
        expected = {f"{i}.{k}": (k, a) for i, (st, a) in enumerate(zip(self._state, self._arrays))
                    for k in st}
        given = set(sd) - set(scalar)
        if given != set(expected):
            missing, unexpected = sorted(set(expected) - given), sorted(given - set(expected))
            raise ValueError(f"{name}.load_state_dict: state arrays do not match this optimizer "
                             f"(missing {missing}, unexpected {unexpected})")
        arrays = {}
        for key, (_, a) in expected.items():
            v = sd[key]
            if not isinstance(v, np.ndarray):
                raise TypeError(f"{name}.load_state_dict: {key} must be a numpy.ndarray, got "
                                f"{type(v).__name__}")
            if v.shape != a.shape or v.dtype != a.dtype:
                raise ValueError(f"{name}.load_state_dict: {key} has shape {v.shape} and dtype "
                                 f"{v.dtype}, its param has {a.shape} {a.dtype}")
            arrays[key] = v
        for key, (k, _) in expected.items():
            i = int(key.split(".", 1)[0])
            self._backend.copy_from_numpy(self._state[i][k], arrays[key])
        self._t = int(step)
        self._extra = {k: float(scalar[k]) for k in self._extra}


def _plain_scalar(v: Any) -> Any:
    """A Python scalar from a value or a 0-d array (as ``np.load`` returns them)."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, np.generic):
        return v.item()
    return v

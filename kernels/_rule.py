"""The description every update rule module exports as ``RULE``: the single source of truth.

A rule is one fused, elementwise update over flat arrays, declared once in its module:

* ``hyperparams``: each keyword with its default, kind (which fixes its validation) and a
  one-line doc, in signature order; ``lr`` first. The public optimizer class, its
  signature and docstring, the validation and the test tables are derived from them.
* ``flags``: the boolean hyperparameters that change which arrays a step touches (amsgrad,
  nesterov, centered, momentum on/off), computed from the hyperparameters by ``variant``.
  Each backend builds one kernel per combination it meets, so a disabled branch costs
  nothing and a state slot the variant does not use (still passed, aliased to ``p``) is
  never touched.
* ``state``: the per-element state arrays, those a variant uses (``state_used``) and
  their initial fill (``state_fill``); ``extra``: scalar state carried between steps
  (Nadam's mu product).
* ``scalars`` and ``host_scalars(hp, t, lr, extra)``: the per-step scalars, computed in
  float64 once per step so bias corrections and schedules live in one place for every
  backend, and passed to the kernels as one small array in the parameter's dtype.
* the common start of every update, owned here once for the three implementations
  (``START``): ``g = g*gscale``, where ``gscale`` is the scalar every kernel call takes
  after the rule's own (the clip coefficient of ``max_grad_norm``, times 1/grad_scale
  under torch's amp; 1 otherwise, which changes no bit); then a rule whose ``scalars`` name
  ``decay``, ``sign`` or ``wd`` gets ``p = p*decay`` (decoupled decay), ``g = sign*g``
  (maximize) and ``g = g + wd*p`` (coupled decay, where wd != 0), in that order, before its
  own formula sees p and g;
* three implementations of the rest of the formula with one calling convention:
  ``reference(p, g, *state, scalars, **flags)`` (NumPy, whole arrays, in place; p and g
  after the start); ``cpu_element(i, pi, gi, p, state, s, flags)`` (element ``i``: ``pi``
  and ``gi`` its param and grad after the start, ``p[i]`` where it writes the param;
  ``state`` and ``s`` are tuples, ``flags`` the variant's values in ``flags`` order;
  kernels/_cpu.py builds the compiled loops around it); ``cuda_body`` (C++ for one
  element, after the start's ``T pi``, ``T gi``; kernels/_gpu.py builds the CuPy kernel
  around it).
* ``tuned_lr``: the learning rate per demo/test problem with which the rule converges
  ("digits": the demo's MLP, reaching >= 95% test accuracy);
* ``demo_variants``: other keyword sets the demo trains too (label, keywords, lr included).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .. import _checks

START = ("decay", "sign", "wd")      # the scalars of the common start, in its order
GSCALE = "gscale"                    # the grad's scale: the last scalar of every kernel call

HostScalars = Callable[[Mapping[str, Any], int, float, Mapping[str, float]],
                       tuple[tuple[float, ...], dict[str, float]]]

# kind -> the check every value of that kind gets: check(owner, name, value) -> value
KINDS: dict[str, Callable[[str, str, Any], Any]] = {
    "lr": _checks.learning_rate_or_schedule,
    "nonnegative": _checks.nonnegative,
    "optional_nonnegative": _checks.optional_nonnegative,
    "unit_interval": _checks.in_unit_interval,
    "unit_interval_closed": _checks.unit_interval_closed,
    "betas": _checks.betas,
    "betas3": _checks.betas3,
    "etas": _checks.etas,
    "step_sizes": _checks.step_sizes,
    "flag": _checks.boolean,
    "nonpositive": _checks.nonpositive,
    "at_least_one": _checks.at_least_one,
    "eps_pair": _checks.eps_pair,
    "triple": _checks.triple,
    "iterations": _checks.iterations,
    "choice": lambda owner, name, value: _checks.choice(owner, name, value, CHOICES[name]),
}
# the values a "choice" hyperparameter takes, by keyword (None among them where allowed)
CHOICES: dict[str, tuple] = {"adjust_lr_fn": (None, "original", "match_rms_adamw")}


@dataclass(frozen=True)
class Hyper:
    """One hyperparameter: keyword, default, kind (see KINDS) and a one-line doc."""

    name: str
    default: Any
    kind: str
    doc: str

    def check(self, owner: str, value: Any) -> Any:
        """``value`` validated and normalised, or an error naming ``owner`` and the keyword."""
        return KINDS[self.kind](owner, self.name, value)


def lr(default: float) -> Hyper:
    return Hyper("lr", default, "lr", "learning rate: a number >= 0 or a schedule t -> lr")


def betas(default: tuple[float, float], doc: str = "decay rates of the moment estimates") -> Hyper:
    return Hyper("betas", default, "betas", doc)


def nonnegative(name: str, default: float, doc: str) -> Hyper:
    return Hyper(name, default, "nonnegative", doc)


def unit_interval(name: str, default: float, doc: str, *, closed: bool = False) -> Hyper:
    return Hyper(name, default, "unit_interval_closed" if closed else "unit_interval", doc)


def flag(name: str, default: bool, doc: str) -> Hyper:
    return Hyper(name, default, "flag", doc)


def maximize() -> Hyper:
    """torch's ``maximize``: the rule steps along +g (the host scalar ``sign`` = -1 turns
    g into -g before anything else, exactly)."""
    return flag("maximize", False, "maximise the objective: use -g for g")


def weight_decay(default: float = 0.0, *, decoupled: bool = False) -> Hyper:
    doc = ("decoupled decay: p *= 1 - lr*weight_decay before the update" if decoupled
           else "L2 penalty: g += weight_decay*p")
    return nonnegative("weight_decay", default, doc)


def lerp(a: Any, b: Any, w: Any) -> Any:
    """torch's lerp of arrays ``a``, ``b`` with a scalar weight ``w`` of their dtype:
    a + w*(b - a) for w < 0.5, else b - (b - a)*(1 - w)."""
    return a + w * (b - a) if w < 0.5 else b - (b - a) * (1 - w)


@dataclass(frozen=True)
class PerTensor:
    """A rule whose update needs norms of whole params (LAMB's and LARS's trust ratios):
    a first pass takes, per param, the L2 norms of ``norms`` element values (in
    kernels/_reduce.py's fixed order, in float64), ``host`` turns them into per-param
    scalars, and the element pass reads those after the rule's own scalars (its ``s``
    ends with them; in C++ they are ``T`` variables of their names).

    * ``reference(p, g, *state, scalars, **flags)``: the values as whole arrays (NumPy; p
      and g after the common start; nothing written);
    * ``cpu_values(i, pi, gi, state, s, flags)``: the values of element i (numba);
    * ``cuda_values``: C++ after the common start setting ``T value0``, ``T value1``, ...;
    * ``host(hp, norms, ndims)``: from the norms, shape (params, len(norms)), float64,
      and each param's number of dimensions, the per-param ``scalars``, shape (params,
      len(scalars)), float64.
    """

    norms: tuple[str, ...]
    scalars: tuple[str, ...]
    reference: Callable[..., tuple]
    cpu_values: Callable[..., tuple]
    cuda_values: str
    host: Callable[[Mapping[str, Any], Any, Any], Any]
    reads_state: bool = True        # whether the values read the state (or p and g alone)


@dataclass(frozen=True)
class WholeParam:
    """A rule whose update sees each param whole (Adafactor's row and column means and
    RMS norms): state arrays shaped as the rule says, and a step per param instead of the
    element body (the Rule's ``reference(p, g, *state, scalars)`` updates one param in
    place: p and g shaped like it, g after the common start, its state shaped and None
    where it keeps none; its ``cpu_element`` and ``cuda_body`` are unused).

    * ``streams``: the arrays of the param's size a step reads or writes, for the bytes a
      step moves (Adafactor: g four times, p twice, p written);
    * ``cuda_sources(ctype)``: its CUDA kernels (kernels/_gpu_precision.py's
      StorageSource), and ``device``, what runs them over a bucket: ``device(launches,
      xp, param addresses, shapes, state by name, dtype, stage)(grad addresses, scalars)``;
    * ``shape(name, shape)``: the shape of state ``name`` for a param of ``shape``; None
      where the param keeps none (None: every state array shaped like its param);
    * ``cpu(p, g, state, dims, s, gscale, flags)``: numba, one param: p and g flat, g as
      given (the function reads g*gscale and does the rest of the start), ``state`` the
      flat views (empty where none), ``s`` the rule's scalars; ``dims(shape)``, the
      integers it gets for a param of ``shape`` (a tuple, of one length for every shape);
    * ``host``: instead of ``cpu``, a step driven from Python per param (Muon's BLAS
      products between its fused elementwise parts): ``host(p, g, *state, s, gscale,
      ops)``, p, g and the state shaped, ``ops`` the backend's elementwise parts
      (``ops[backend]``);
    * ``ndims``: the numbers of dimensions a param may have (None: any).
    """

    streams: int
    cuda_sources: Callable[[str], list]
    device: Callable[..., Callable[[Any, Any], None]]
    shape: Callable[[str, tuple], tuple | None] | None = None
    cpu: Callable[..., None] | None = None
    dims: Callable[[tuple], tuple] | None = None
    host: Callable[..., None] | None = None
    ops: Mapping[str, Any] = field(default_factory=dict)
    ndims: tuple[int, ...] | None = None


def _no_check(owner: str, hp: Mapping[str, Any]) -> None:
    """Rules whose hyperparameters are independent of each other need no joint check."""


@dataclass(frozen=True)
class Rule:
    name: str                       # lower case; names compiled kernels and cache files
    class_name: str                 # the public optimizer class
    summary: str                    # one line for the class docstring
    formula: str                    # the rule module's docstring
    hyperparams: tuple[Hyper, ...]
    state: tuple[str, ...]
    scalars: tuple[str, ...]
    host_scalars: HostScalars
    reference: Callable[..., None]
    cpu_element: Callable[..., None]
    cuda_body: str
    tuned_lr: Mapping[str, float]
    flags: tuple[str, ...] = ()
    variant_of: Callable[[Mapping[str, Any]], dict[str, bool]] | None = None
    state_used_by: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = None
    state_fill: Callable[[str, Mapping[str, Any]], float] = lambda name, hp: 0.0
    extra: Mapping[str, float] = field(default_factory=dict)
    extra_kinds: Mapping[str, str] = field(default_factory=dict)   # KINDS that check them
    check: Callable[[str, Mapping[str, Any]], None] = _no_check
    # state arrays that are never negative (sums of squares, norms): a loaded one that is
    # would make sqrt NaN; and the check of loaded scalar state against the step count
    nonnegative_state: tuple[str, ...] = ()
    check_loaded_extra: Callable[[str, Mapping[str, Any], int, Mapping[str, float]], None] = \
        lambda owner, hp, t, extra: None
    fixed: Mapping[str, Any] = field(default_factory=dict)   # not keywords (AdamW: decoupled)
    derived_from: str | None = None     # the class this rule's class subclasses (AdamW: Adam)
    # fastopt.torch: the torch.optim class of this rule (None: torch has none) and the keys
    # of its per-param state, by this rule's state names (scalar state included); whether
    # torch keeps a per-param "step" (SGD does not)
    demo_variants: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    torch_class: str | None = None
    torch_state: Mapping[str, str] = field(default_factory=dict)
    torch_step: bool = True
    # a full-batch method (Rprop: its step sizes follow the grad's sign from one step to
    # the next, which mini-batch noise flips at random): the demo trains it on whole batches
    full_batch: bool = False
    # two sequences (schedule-free): the params hold one while training and another for
    # evaluation; the classes gain eval() and train(), which move every param to the other,
    # p = lerp(p, state[switch_state], switch_weight(hp, to_eval)) (torch's lerp)
    switch_state: str | None = None
    switch_weight: Callable[[Mapping[str, Any], bool], float] | None = None
    # norms of whole params, read by the element pass (LAMB, LARS): see PerTensor
    per_tensor: PerTensor | None = None
    # a step per whole param, with state of its own shapes (Adafactor): see WholeParam
    whole: WholeParam | None = None

    def __post_init__(self) -> None:
        """A rule that is incomplete fails here, at import, by name: fastopt.torch needs a
        torch name for every state array and scalar state, and the kernels take exactly
        ``scalars`` host scalars (a mismatch was a numba TypingError at the first step)."""
        missing = [s for s in (*self.state, *self.extra) if s not in self.torch_state]
        if missing:
            raise TypeError(f"rule {self.class_name}: torch_state has no torch name for "
                            f"{missing} (fastopt.torch's state_dict needs one per state)")
        hp = self.checked(f"rule {self.class_name}", self.defaults)
        lr = self.defaults.get("lr")
        given, _ = self.host_scalars(hp, 1, lr if isinstance(lr, float) else 1e-3,
                                     dict(self.extra))
        if len(given) != len(self.scalars):
            raise TypeError(f"rule {self.class_name}: host_scalars gives {len(given)} scalars "
                            f"for the {len(self.scalars)} of SCALARS {self.scalars}")

    @property
    def passes(self) -> bool:
        """Whether a step needs more than the one element pass (the grads resolved first)."""
        return self.per_tensor is not None or self.whole is not None

    @property
    def takes_any_shape(self) -> bool:
        """Whether params of any number of dimensions are this rule's (Muon's: matrices)."""
        return self.whole is None or self.whole.ndims is None

    def state_shape(self, name: str, shape: tuple) -> tuple | None:
        """The shape of state ``name`` for a param of ``shape`` (None: it keeps none)."""
        if self.whole is None or self.whole.shape is None:
            return shape
        return self.whole.shape(name, tuple(shape))

    # -- the common start ---------------------------------------------------------------
    @functools.cached_property
    def start(self) -> tuple[int, int, int]:
        """Where ``decay``, ``sign`` and ``wd`` are in ``scalars`` (-1: the rule has none);
        found once per rule (the NumPy step reads it for every param)."""
        return tuple(self.scalars.index(n) if n in self.scalars else -1 for n in START)

    def kernel_scalars(self, values: Any, dtype: Any, gscale: float = 1.0) -> np.ndarray:
        """What a kernel call takes: the rule's ``scalars`` ``values`` and ``gscale``, in
        ``dtype`` (a PerTensor rule's step appends each param's scalars after them)."""
        return np.array((*values, gscale), dtype=dtype)

    def reference_start(self, p: Any, g: Any, scalars: Any, in_place: bool = False
                        ) -> tuple[Any, Any]:
        """(p, g) after the common start, with ``scalars`` as ``kernel_scalars`` gives
        them; the decoupled decay changes p itself only ``in_place`` (the update's)."""
        n = len(self.scalars)
        if scalars[n] != 1:
            g = g * scalars[n]
        decay_at, sign_at, wd_at = self.start
        if decay_at >= 0 and scalars[decay_at] != 1:
            if in_place:
                p *= scalars[decay_at]
            else:
                p = p * scalars[decay_at]
        if sign_at >= 0:
            g = scalars[sign_at] * g
        if wd_at >= 0 and scalars[wd_at] != 0:
            g = g + scalars[wd_at] * p
        return p, g

    def reference_update(self, p: Any, g: Any, *state: Any, scalars: Any,
                         **flags: bool) -> None:
        """The whole NumPy update (``scalars``: ``kernel_scalars``' then, for a PerTensor
        rule, this param's): the common start, then the rule's ``reference``."""
        p, g = self.reference_start(p, g, scalars, in_place=True)
        n = len(self.scalars)
        self.reference(p, g, *state, np.concatenate((scalars[:n], scalars[n + 1:])), **flags)

    def reference_norms(self, p: Any, g: Any, *state: Any, scalars: Any,
                        **flags: bool) -> list[float]:
        """A PerTensor rule's sums of squares of its norm values for one param (NumPy;
        kernels/_reduce.py's order), nothing written."""
        from ._reduce import sum_of_squares

        p, g = self.reference_start(p, g, scalars)
        values = self.per_tensor.reference(p, g, *state, scalars=scalars[:len(self.scalars)],
                                           **flags)
        return [sum_of_squares([v]) for v in values]

    def cuda_start(self) -> str:
        """The common start in C++: ``T pi`` and ``T gi`` for the rule's ``cuda_body``."""
        decay_at, sign_at, wd_at = self.start
        return (("T pi = p * decay;\n" if decay_at >= 0 else "T pi = p;\n") +
                ("T g0 = sign * (g * gscale);\n" if sign_at >= 0 else
                 "T g0 = g * gscale;\n") +
                ("T gi = wd != 0 ? g0 + wd * pi : g0;\n" if wd_at >= 0 else "T gi = g0;\n"))

    # -- hyperparameters ------------------------------------------------------------------
    @property
    def defaults(self) -> dict[str, Any]:
        return {h.name: h.default for h in self.hyperparams}

    def checked(self, owner: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every hyperparameter but ``lr`` validated (each alone, then jointly), plus the
        rule's fixed ones; an error naming ``owner`` and the keyword otherwise."""
        hp = {h.name: h.check(owner, values[h.name]) for h in self.hyperparams if h.name != "lr"}
        self.check(owner, hp)
        return dict(hp, **self.fixed)

    def derive(self, name: str, class_name: str, summary: str, *replaced: Hyper,
               **changes: Any) -> Rule:
        """Another public rule over the same kernels: some hyperparameters replaced (same
        keyword, e.g. another default) and other fields changed (e.g. ``fixed``)."""
        new = {h.name: h for h in replaced}
        dropped = changes.pop("dropped", ())
        hyperparams = tuple(new.get(h.name, h) for h in self.hyperparams
                            if h.name not in dropped)
        return dataclasses.replace(self, name=name, class_name=class_name, summary=summary,
                                   hyperparams=hyperparams, derived_from=self.class_name,
                                   **changes)

    # -- variants -------------------------------------------------------------------------
    def variant(self, hp: Mapping[str, Any]) -> dict[str, bool]:
        """The compile-time flags of ``hp``, in ``flags`` order (the element bodies unpack
        them by position)."""
        if self.variant_of is None:
            return {f: bool(hp[f]) for f in self.flags}
        flags = self.variant_of(hp)
        assert tuple(flags) == self.flags, (self.class_name, tuple(flags), self.flags)
        return flags

    def state_used(self, hp: Mapping[str, Any]) -> tuple[str, ...]:
        return self.state if self.state_used_by is None else self.state_used_by(hp)

    def signed(self, name: str) -> bool:
        """Whether state ``name`` can be negative (8-bit state: the signed map, else the
        unsigned one)."""
        return name not in self.nonnegative_state

    def checked_extra(self, owner: str, values: Mapping[str, Any]) -> dict[str, float]:
        """The scalar state (as a state_dict holds it) validated: each a finite number, of
        its kind where the rule gives one (Nadam's mu_product: in [0, 1])."""
        out = {}
        for name, value in values.items():
            if name in self.extra_kinds:
                out[name] = KINDS[self.extra_kinds[name]](owner, name, value)
            else:
                out[name] = _checks.finite(owner, name, value)
        return out

    def bytes_per_element(self, hp: Mapping[str, Any], itemsize: int,
                          state_itemsize: int | None = None) -> int:
        """Bytes a step must move per element: read p, g, each used state; write p, each
        state (the state's items ``state_itemsize`` bytes, if not the params'); a PerTensor
        rule's first pass reads p and g, and the state where its values need it, once more."""
        if self.whole is not None:
            return self.whole.streams * itemsize
        state = itemsize if state_itemsize is None else state_itemsize
        used = len(self.state_used(hp))
        first = 0 if self.per_tensor is None else \
            2 * itemsize + state * used * self.per_tensor.reads_state
        return 3 * itemsize + 2 * state * used + first

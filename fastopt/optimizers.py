"""The optimizer classes, one per registered rule (``fastopt.kernels.REGISTRY``).

Each class is derived from its rule's description: the signature (PyTorch's keyword
names, order and defaults, then the keyword-only ``backend``), the docstring (formula,
defaults) and the validation. ``params`` is one array, an iterable of arrays or a list of
param group dicts, updated in place; ``lr`` a float or a schedule from
:mod:`fastopt.schedules`; ``step(grads)`` applies one fused update per bucket.
"""
from __future__ import annotations

import dataclasses
import inspect
import textwrap
from typing import Any, Callable

from . import _checks
from .kernels import REGISTRY, Rule
from .optimizer import Optimizer, Precision

_PARAMS = inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Arrays")
_BACKEND = inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default="auto",
                             annotation=str)
# for 16-bit params (fastopt.optimizer.Precision)
_PRECISION = [inspect.Parameter("master_weights", inspect.Parameter.KEYWORD_ONLY, default=False,
                                annotation=bool),
              inspect.Parameter("stochastic_rounding", inspect.Parameter.KEYWORD_ONLY,
                                default=False, annotation=bool),
              inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=0,
                                annotation=int),
              inspect.Parameter("state_dtype", inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation="str | None"),
              inspect.Parameter("min_8bit_size", inspect.Parameter.KEYWORD_ONLY, default=4096,
                                annotation=int)]
_CLIP = inspect.Parameter("max_grad_norm", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation="float | None")
_TYPES = {"lr": "LearningRate", "betas": tuple[float, float], "etas": tuple[float, float],
          "step_sizes": tuple[float, float], "betas3": tuple[float, float, float],
          "flag": bool, "triple": tuple[float, float, float], "iterations": int,
          "choice": "str | None", "eps_pair": "tuple[float | None, float]",
          "optional_nonnegative": "float | None"}


def signature(rule: Rule) -> inspect.Signature:
    """``(params, <the rule's hyperparameters with defaults>, *, backend="auto",
    max_grad_norm=None, master_weights=False, stochastic_rounding=False, seed=0, state_dtype=None,
    min_8bit_size=4096)``."""
    hyper = [inspect.Parameter(h.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=h.default,
                               annotation=_TYPES.get(h.kind, _TYPES.get(h.name, float)))
             for h in rule.hyperparams]
    return inspect.Signature([_PARAMS, *hyper, _BACKEND, _CLIP, *_PRECISION],
                             return_annotation=None)


# what the keyword-only options do (their types and defaults: the Parameters above)
_OPTION_DOCS = {
    "backend": '"numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)',
    "max_grad_norm": "clip the grads to this norm, taken over all of a step's grads: each is "
                     "read times min(1, max_grad_norm / (norm + 1e-6)) (torch's "
                     "clip_grad_norm_, without writing the grads; ``opt.grad_norm`` is the "
                     "norm)",
    "master_weights": "keep float32 copies of bfloat16/float16 params, the params written "
                      "from them rounded to nearest",
    "stochastic_rounding": "write bfloat16 params (without master copies) rounded "
                           "stochastically",
    "seed": "the stochastic rounding's random bits (counter-based: the same on every "
            "backend)",
    "state_dtype": "the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded "
                   "to nearest at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps "
                   "it: codes and one absmax a block of 256)",
    "min_8bit_size": "with state_dtype='int8', params with fewer elements keep float32 state "
                     "(as bitsandbytes' optimizers)",
}


def type_text(annotation: Any) -> str:
    """A signature annotation as numpydoc writes a type: ``float or None``."""
    if annotation == "LearningRate":
        return "float or schedule"
    if isinstance(annotation, str):
        text = annotation
    elif getattr(annotation, "__args__", None):       # tuple[float, float]
        text = str(annotation)
    else:
        text = annotation.__name__
    return text.replace(" | ", " or ")


def _described(head: str, doc: str) -> str:
    """``head`` (``name : type``) and ``doc`` indented below it, as numpydoc lists a
    parameter."""
    return f"{head}\n{textwrap.indent(textwrap.fill(doc, 84), '    ')}"


def _entry(param: inspect.Parameter, doc: str) -> str:
    return _described(f"{param.name} : {type_text(param.annotation)}, default "
                      f"{param.default!r}", doc)


def docstring(rule: Rule) -> str:
    """The class docstring (numpydoc): the rule's summary, its formula, and each argument
    with its type, default and meaning."""
    sig = signature(rule).parameters
    formula = textwrap.dedent(rule.formula.split("\n\n", 1)[-1]).strip("\n")  # title dropped
    docs = {h.name: h.doc for h in rule.hyperparams} | _OPTION_DOCS
    entries = "\n".join(
        [_described("params : array, iterable of arrays, or list of dict",
                    "one array, an iterable of arrays (float32/float64, bfloat16/float16; "
                    "C-contiguous) or a list of param group dicts ``{'params': [...], "
                    "<keyword>: value}``, updated in place")]
        + [_entry(param, docs[name]) for name, param in sig.items() if name != "params"])
    return (f"{rule.summary}\n\nThe update (t counts from 1)::\n\n"
            f"{textwrap.indent(formula, '    ')}\n\nParameters\n----------\n{entries}\n\n"
            f"Notes\n-----\nThe rule and its kernels: ``{rule.reference.__module__}``.\n")


def bound_arguments(name: str, sig: inspect.Signature, args: tuple, kwargs: dict
                    ) -> dict[str, Any]:
    """``args`` and ``kwargs`` bound to ``sig``, defaults filled in; a TypeError naming the
    class ``name`` otherwise."""
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def optimizer_class(rule: Rule, base: type[Optimizer] = Optimizer) -> type[Optimizer]:
    """The public optimizer class of ``rule`` (a subclass of ``base``)."""
    sig = signature(rule)
    init_sig = sig.replace(parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY),
                                       *sig.parameters.values()])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        name = type(self).__name__
        values = bound_arguments(name, sig, args, kwargs)
        hp = rule.checked(name, values)
        lr = _checks.learning_rate_or_schedule(name, "lr", values["lr"])
        defaults = {h.name: lr if h.name == "lr" else hp[h.name] for h in rule.hyperparams}
        Optimizer.__init__(self, values["params"], defaults, values["backend"],
                           Precision(**{f.name: values[f.name]
                                        for f in dataclasses.fields(Precision)}),
                           values["max_grad_norm"])

    __init__.__signature__ = init_sig
    __init__.__qualname__ = f"{rule.class_name}.__init__"
    methods = switch_methods(rule.class_name, _switch) if rule.switch_state else {}
    return type(rule.class_name, (base,),
                {"rule": rule, "__init__": __init__, "__doc__": docstring(rule),
                 "__module__": __name__, "__qualname__": rule.class_name, **methods})


def switch_methods(name: str, switch: Callable[[Any, bool], None]) -> dict[str, Any]:
    """``eval()`` and ``train()`` of class ``name`` (a rule with two sequences:
    schedule-free), each ``switch(self, to_eval)``."""
    def eval(self) -> None:
        """Move the params to the point to evaluate (the average of the iterates)."""
        switch(self, True)

    def train(self) -> None:
        """Move the params back to where the grads are taken (before stepping again)."""
        switch(self, False)
    eval.__qualname__, train.__qualname__ = f"{name}.eval", f"{name}.train"
    return {"eval": eval, "train": train}


def _switch(opt: Optimizer, to_eval: bool) -> None:
    opt._exclusive(opt._switch, to_eval, "eval" if to_eval else "train",
                   "switch between steps")


CLASSES: dict[str, type[Optimizer]] = {}
for _rule in REGISTRY:       # in registry order, so a derived rule's base class exists already
    CLASSES[_rule.class_name] = optimizer_class(
        _rule, CLASSES[_rule.derived_from] if _rule.derived_from else Optimizer)
del _rule
globals().update(CLASSES)
__all__ = list(CLASSES)

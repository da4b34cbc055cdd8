# Written by `python -m fastopt._stubs` from the rule registry (fastopt/kernels); do not edit.
import inspect
from typing import Any

from .optimizer import Arrays, LearningRate, Optimizer

__all__ = ['SGD', 'Adagrad', 'RMSprop', 'Adadelta', 'Adam', 'AdamW', 'Adamax', 'Nadam', 'Lion', 'RAdam', 'Rprop', 'ASGD', 'AdEMAMix', 'AdamWScheduleFree', 'Lamb', 'LARS', 'Adafactor', 'Muon']

CLASSES: dict[str, type[Optimizer]]

def signature(rule: Any) -> inspect.Signature: ...
def docstring(rule: Any) -> str: ...
def optimizer_class(rule: Any) -> type[Optimizer]: ...

class SGD(Optimizer):
    """
    Stochastic gradient descent with optional (Nesterov) momentum.

    The update (t counts from 1)::

            g   = -g                        (maximize=True)
            g   = g + wd*p
            buf = g                              (t = 1)
            buf = momentum*buf + (1-dampening)*g (t > 1)
            d   = g + momentum*buf if nesterov else buf      (d = g when momentum = 0)
            p  -= lr*d

        The host folds the t = 1 case into two scalars: keep = 0, gain = 1 at t = 1, else
        keep = momentum, gain = 1 - dampening, so every step runs buf = keep*buf + gain*g.

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.001
        learning rate: a number >= 0 or a schedule t -> lr
    momentum : float, default 0.0
        momentum of buf (0: plain SGD)
    dampening : float, default 0.0
        buf = momentum*buf + (1-dampening)*g
    weight_decay : float, default 0.0
        L2 penalty: g += weight_decay*p
    nesterov : bool, default False
        Nesterov momentum
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.sgd``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.001, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Adagrad(Optimizer):
    """
    Adagrad with learning-rate decay.

    The update (t counts from 1)::

        g   = -g                        (maximize=True)
        g    = g + wd*p
        clr  = lr / (1 + (t-1)*lr_decay)
        sum += g^2                     (sum starts at initial_accumulator_value)
        p   -= clr * g / (sqrt(sum) + eps)

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.01
        learning rate: a number >= 0 or a schedule t -> lr
    lr_decay : float, default 0.0
        lr / (1 + (t-1)*lr_decay)
    weight_decay : float, default 0.0
        L2 penalty: g += weight_decay*p
    initial_accumulator_value : float, default 0.0
        the sum's starting value
    eps : float, default 1e-10
        added to sqrt(sum)
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.adagrad``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class RMSprop(Optimizer):
    """
    RMSprop, optionally centered and with momentum.

    The update (t counts from 1)::

        g   = -g                        (maximize=True)
        g   = g + wd*p
        sq  = alpha*sq + (1-alpha)*g^2
        avg = sqrt(sq - ga^2) + eps,  ga = alpha*ga + (1-alpha)*g   (centered; inf where sq
                                      is: sq - ga^2 is inf - inf there, which torch's fused
                                      multiply-add never forms)
        avg = sqrt(sq) + eps                                         (otherwise)
        buf = momentum*buf + g/avg;  p -= lr*buf                     (momentum > 0)
        p  -= lr * g/avg                                             (otherwise)

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.01
        learning rate: a number >= 0 or a schedule t -> lr
    alpha : float, default 0.99
        decay rate of sq
    eps : float, default 1e-08
        added to the root
    weight_decay : float, default 0.0
        L2 penalty: g += weight_decay*p
    momentum : float, default 0.0
        momentum of buf (0: none)
    centered : bool, default False
        divide by the centered (variance) estimate
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.rmsprop``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.01, alpha: float = 0.99, eps: float = 1e-08, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Adadelta(Optimizer):
    """
    Adadelta (Zeiler 2012).

    The update (t counts from 1)::

        g   = -g                        (maximize=True)
        g   = g + wd*p
        sq  = rho*sq + (1-rho)*g^2
        d   = sqrt(acc + eps) / sqrt(sq + eps) * g
        acc = rho*acc + (1-rho)*d^2
        p  -= lr*d

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 1.0
        learning rate: a number >= 0 or a schedule t -> lr
    rho : float, default 0.9
        decay rate of both averages
    eps : float, default 1e-06
        added inside both square roots
    weight_decay : float, default 0.0
        L2 penalty: g += weight_decay*p
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.adadelta``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 1.0, rho: float = 0.9, eps: float = 1e-06, weight_decay: float = 0.0, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Adam(Optimizer):
    """
    Adam with coupled (L2) weight decay, amsgrad optional.

    The update (t counts from 1)::

        g   = -g                        (maximize=True)
        p   = p*(1 - lr*wd)             (AdamW, decoupled_weight_decay: wd not added to g)
        g   = g + wd*p                  (Adam: coupled decay)
        m   = b1*m + (1-b1)*g
        v   = b2*v + (1-b2)*g^2
        vmax = max(vmax, v); use vmax for v   (amsgrad)
        p  -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.001
        learning rate: a number >= 0 or a schedule t -> lr
    betas : tuple[float, float], default (0.9, 0.999)
        decay rates of the moment estimates
    eps : float, default 1e-08
        added to sqrt(v)
    weight_decay : float, default 0.0
        L2 penalty: g += weight_decay*p
    amsgrad : bool, default False
        use the running maximum of v
    maximize : bool, default False
        maximise the objective: use -g for g
    decoupled_weight_decay : bool, default False
        AdamW's decay (torch's keyword)
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.adam``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08, weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False, decoupled_weight_decay: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class AdamW(Adam):
    """
    Adam with decoupled weight decay.

    The update (t counts from 1)::

        g   = -g                        (maximize=True)
        p   = p*(1 - lr*wd)             (AdamW, decoupled_weight_decay: wd not added to g)
        g   = g + wd*p                  (Adam: coupled decay)
        m   = b1*m + (1-b1)*g
        v   = b2*v + (1-b2)*g^2
        vmax = max(vmax, v); use vmax for v   (amsgrad)
        p  -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.001
        learning rate: a number >= 0 or a schedule t -> lr
    betas : tuple[float, float], default (0.9, 0.999)
        decay rates of the moment estimates
    eps : float, default 1e-08
        added to sqrt(v)
    weight_decay : float, default 0.01
        decoupled decay: p *= 1 - lr*weight_decay before the update
    amsgrad : bool, default False
        use the running maximum of v
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.adam``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08, weight_decay: float = 0.01, amsgrad: bool = False, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Adamax(Optimizer):
    """
    Adamax, Adam's infinity-norm variant.

    The update (t counts from 1)::

        g   = -g                        (maximize=True)
        g  = g + wd*p
        m  = b1*m + (1-b1)*g
        u  = max(b2*u, |g| + eps)        (NaN propagates, as numpy.maximum)
        p -= lr/(1-b1^t) * m/u

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.002
        learning rate: a number >= 0 or a schedule t -> lr
    betas : tuple[float, float], default (0.9, 0.999)
        decay rates of the moment estimates
    eps : float, default 1e-08
        added to |g|
    weight_decay : float, default 0.0
        L2 penalty: g += weight_decay*p
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.adamax``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.002, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08, weight_decay: float = 0.0, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Nadam(Optimizer):
    """
    Nadam: Adam with Nesterov momentum.

    The update (t counts from 1)::

            g   = -g                        (maximize=True)
            p   = p*(1 - lr*wd)          (decoupled_weight_decay: wd not added to g)
            g   = g + wd*p
            m   = b1*m + (1-b1)*g;   v = b2*v + (1-b2)*g^2
            den = sqrt(v/(1-b2^t)) + eps
            p  -= cg*g/den + cm*m/den

        PyTorch (momentum_decay = psi):  mu_t = b1*(1 - 0.5*0.96^(t*psi)), mu_next at t+1,
            mu_product *= mu_t,  cg = lr*(1-mu_t)/(1-mu_product),
            cm = lr*mu_next/(1-mu_product*mu_next).
        Textbook / optax (momentum_decay = None):  cg = lr*(1-b1)/(1-b1^t),
            cm = lr*b1/(1-b1^(t+1)).

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.002
        learning rate: a number >= 0 or a schedule t -> lr
    betas : tuple[float, float], default (0.9, 0.999)
        decay rates of the moment estimates
    eps : float, default 1e-08
        added to the denominator
    weight_decay : float, default 0.0
        L2 penalty: g += weight_decay*p
    momentum_decay : float or None, default 0.004
        psi of the momentum schedule; None: the textbook (optax) form
    decoupled_weight_decay : bool, default False
        p *= 1 - lr*weight_decay (AdamW's decay) instead of g += weight_decay*p
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.nadam``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.002, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08, weight_decay: float = 0.0, momentum_decay: float | None = 0.004, decoupled_weight_decay: bool = False, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Lion(Optimizer):
    """
    Lion (Chen et al. 2023): the sign of an interpolated momentum.

    The update (t counts from 1)::

            c  = b1*m + (1-b1)*g
            p  = p*(1 - lr*wd) - lr*sign(c)      sign(0) = 0; NaN propagates
            m  = b2*m + (1-b2)*g

        sign is NumPy's in every implementation: +0 for either zero, so a zero c leaves p as it is.

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.0001
        learning rate: a number >= 0 or a schedule t -> lr
    betas : tuple[float, float], default (0.9, 0.99)
        b1 mixes the update direction, b2 decays the momentum
    weight_decay : float, default 0.0
        decoupled decay: p *= 1 - lr*weight_decay before the update
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.lion``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.0001, betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class RAdam(Optimizer):
    """
    RAdam: Adam with the variance of its adaptive step rectified.

    The update (t counts from 1)::

        g   = -g                        (maximize=True)
        p   = p*(1 - lr*wd)             (decoupled_weight_decay: wd not added to g)
        g   = g + wd*p
        m   = b1*m + (1-b1)*g;   v = b2*v + (1-b2)*g^2
        rho_inf = 2/(1-b2) - 1;  rho_t = rho_inf - 2t*b2^t/(1-b2^t)
        rho_t > 5:  p -= (m/(1-b1^t))*lr * (sqrt(1-b2^t)/(sqrt(v) + eps)) * r_t,
                    r_t = sqrt((rho_t-4)(rho_t-2)rho_inf / ((rho_inf-4)(rho_inf-2)rho_t))
        otherwise:  p -= (m/(1-b1^t))*lr                (the first steps: SGD with momentum)

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.001
        learning rate: a number >= 0 or a schedule t -> lr
    betas : tuple[float, float], default (0.9, 0.999)
        decay rates of the moment estimates
    eps : float, default 1e-08
        added to sqrt(v)
    weight_decay : float, default 0.0
        L2 penalty: g += weight_decay*p
    decoupled_weight_decay : bool, default False
        p *= 1 - lr*weight_decay (AdamW's decay) instead of g += weight_decay*p
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.radam``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08, weight_decay: float = 0.0, decoupled_weight_decay: bool = False, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Rprop(Optimizer):
    """
    Rprop: a step size per coordinate, grown while the grad's sign holds and cut when it flips.

    The update (t counts from 1)::

        g    = -g                                  (maximize=True)
        s    = sign(g * prev)
        f    = etaplus (s > 0), etaminus (s < 0), 1 (s = 0)
        size = clamp(size * f, step_min, step_max)  (each coordinate's step; it starts at lr)
        g    = 0 where f = etaminus                (the sign flipped: no move, and no flip next)
        p   -= sign(g) * size;   prev = g

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.01
        learning rate: a number >= 0 or a schedule t -> lr
    etas : tuple[float, float], default (0.5, 1.2)
        (etaminus, etaplus): step size factors when the grad's sign flips / holds
    step_sizes : tuple[float, float], default (1e-06, 50.0)
        (smallest, largest) step size
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.rprop``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.01, etas: tuple[float, float] = (0.5, 1.2), step_sizes: tuple[float, float] = (1e-06, 50.0), maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class ASGD(Optimizer):
    """
    ASGD: SGD with a decaying step size and the average of its iterates.

    The update (t counts from 1)::

            g   = -g                        (maximize=True)
            g   = g + wd*p
            p   = p*(1 - lambd*eta) - eta*g
            ax  = ax + (p - ax)*mu          (ax = p while mu = 1)
        then, for the next step:  eta = lr / (1 + lambd*lr*t)^alpha,  mu = 1 / max(1, t - t0)
        (eta starts at lr, mu at 1; ``ax``, the average of the iterates from step t0 on, is what
        to evaluate the model with).

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.01
        learning rate: a number >= 0 or a schedule t -> lr
    lambd : float, default 0.0001
        decay term of the step size
    alpha : float, default 0.75
        power of the step size's decay
    t0 : float, default 1000000.0
        the step from which the iterates are averaged
    weight_decay : float, default 0.0
        L2 penalty: g += weight_decay*p
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.asgd``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.01, lambd: float = 0.0001, alpha: float = 0.75, t0: float = 1000000.0, weight_decay: float = 0.0, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class AdEMAMix(Optimizer):
    """
    AdEMAMix: Adam with a slow first moment mixed in.

    The update (t counts from 1)::

            p   = p*(1 - lr*wd)                      (decoupled decay)
            m1  = b1*m1 + (1-b1)*g                   (the fast first moment)
            m2  = b3*m2 + (1-b3)*g                   (the slow one)
            nu  = b2*nu + (1-b2)*g^2
            p  -= lr * (m1/(1-b1^t) + alpha*m2) / (sqrt(nu)/sqrt(1-b2^t) + eps)

        with the warm-ups of the paper where asked: alpha_t = min(t*alpha/t_alpha, alpha) and
        b3_t = min(exp(ln b1 ln b3 / ((1-s) ln b3 + s ln b1)), b3), s = t/t_beta3.

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.001
        learning rate: a number >= 0 or a schedule t -> lr
    betas : tuple[float, float, float], default (0.9, 0.999, 0.9999)
        (b1, b2, b3): decay rates of the fast moment, of nu, of the slow moment
    alpha : float, default 5.0
        weight of the slow moment
    t_alpha : float or None, default None
        steps alpha warms up over (None: none)
    t_beta3 : float or None, default None
        steps b3 warms up over (None: none)
    eps : float, default 1e-08
        added to the denominator
    weight_decay : float, default 0.01
        decoupled decay: p *= 1 - lr*weight_decay before the update
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.ademamix``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.001, betas: tuple[float, float, float] = (0.9, 0.999, 0.9999), alpha: float = 5.0, t_alpha: float | None = None, t_beta3: float | None = None, eps: float = 1e-08, weight_decay: float = 0.01, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class AdamWScheduleFree(Optimizer):
    """
    Schedule-free AdamW: no lr schedule, the average of its iterates evaluated.

    The update (t counts from 1)::

        The params hold y, the point where grads are taken, while training; z is the base
        sequence; x, their weighted average, is what to evaluate (``opt.eval()`` moves the params
        to x, ``opt.train()`` back to y). Step k = t - 1:

            lr_t   = lr * min(1, (k+1)/warmup_steps)
            w      = (k+1)^r * max(lr_1..lr_t)^weight_lr_power;   c = w / (sum of the w so far)
            v      = b2*v + (1-b2)*g^2
            d      = g / (sqrt(v/(1-b2^t)) + eps) + wd*y
            y      = lerp(y, z, c) + lr_t*(b1*(1-c) - 1)*d
            z      = z - lr_t*d                            (z starts at y)
            eval:  p = lerp(p, z, 1 - 1/b1);   train:  p = lerp(p, z, 1 - b1)

        lerp is torch's: a + w*(b - a) for w < 0.5, else b - (b - a)*(1 - w).

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.0025
        learning rate: a number >= 0 or a schedule t -> lr
    betas : tuple[float, float], default (0.9, 0.999)
        decay rates of the moment estimates
    eps : float, default 1e-08
        added to the root
    weight_decay : float, default 0.0
        d += weight_decay*y (after the normalisation)
    warmup_steps : float, default 0
        steps of a linear lr warm-up
    r : float, default 0.0
        power of k in the average's weights
    weight_lr_power : float, default 2.0
        power of the largest lr in them
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.schedulefree``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.0025, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08, weight_decay: float = 0.0, warmup_steps: float = 0, r: float = 0.0, weight_lr_power: float = 2.0, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Lamb(Optimizer):
    """
    LAMB (You et al. 2020): Adam's direction with a trust ratio per param.

    The update (t counts from 1)::

            g   = -g                             (maximize=True)
            p   = p*(1 - lr*wd)                  (decoupled decay)
            m   = b1*m + (1-b1)*g
            v   = b2*v + (1-b2)*g^2
            u   = m / (sqrt(v) + eps)
            trust = min(||p||, clamp) / (||u|| + eps)     per param (1 where a norm is 0)
            p  -= lr/(1-b1^t) * trust*u

        The norms are a first pass over each param (kernels/_rule.py: PerTensor; in float64, in
        kernels/_reduce.py's order); the update then recomputes m, v and u as it writes them.

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.001
        learning rate: a number >= 0 or a schedule t -> lr
    betas : tuple[float, float], default (0.9, 0.999)
        decay rates of the moment estimates
    weight_decay : float, default 0.0
        decoupled decay: p *= 1 - lr*weight_decay before the update
    eps : float, default 1e-06
        added to sqrt(v) and to the update's norm
    clamp : float, default 10.0
        the largest weight norm a trust ratio uses
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.lamb``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.001, betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0, eps: float = 1e-06, clamp: float = 10.0, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class LARS(Optimizer):
    """
    LARS (You et al. 2017): SGD with a trust ratio per param.

    The update (t counts from 1)::

            g   = -g                                  (maximize=True)
            trust = tc*||p|| / (||g|| + wd*||p||)     per param of 2+ dimensions (1 where ||p|| or
                                                       the denominator is 0)
            g   = (g + wd*p) * trust                  (params of 2+ dimensions)
            buf = momentum*buf + (1-dampening)*g      (buf starts at 0)
            d   = g + momentum*buf if nesterov else buf      (d = g when momentum = 0)
            p  -= lr*d

        The norms are a first pass over each param (kernels/_rule.py: PerTensor; in float64, in
        kernels/_reduce.py's order).

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.001
        learning rate: a number >= 0 or a schedule t -> lr
    weight_decay : float, default 0.0
        g += weight_decay*p, before the trust ratio (params of 2+ dimensions)
    momentum : float, default 0.9
        momentum of buf (0: none)
    dampening : float, default 0.0
        buf = momentum*buf + (1-dampening)*g
    trust_coefficient : float, default 0.001
        tc in the trust ratio
    nesterov : bool, default False
        Nesterov momentum
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.lars``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.001, weight_decay: float = 0.0, momentum: float = 0.9, dampening: float = 0.0, trust_coefficient: float = 0.001, nesterov: bool = False, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Adafactor(Optimizer):
    """
    Adafactor (Shazeer & Stern 2018): factored second moments, m + n numbers of state for an (m, n) matrix.

    The update (t counts from 1)::

            g     = -g                                          (maximize=True)
            w     = t^beta2_decay;   rho = min(lr, 1/sqrt(t))
            alpha = max(eps2, RMS(p)) * rho                     (p before the decay)
            p     = p*(1 - lr*wd)
            matrix: row_var = lerp(row_var, mean_j g^2, w);  col_var = lerp(col_var, mean_i g^2, w)
                    v = row_var*col_var / max(mean(row_var), eps1)
            vector: v = variance = lerp(variance, g^2, w)
            u     = g / sqrt(max(v, eps1^2))                    (rsqrt(.)*g)
            p    -= alpha / max(1, RMS(u)/d) * u                (eps1=None: the dtype's epsilon)

        A whole-param rule (kernels/_rule.py: WholeParam): each param's sums are float64 in one
        fixed order for every backend: a row's sum in ``ROW_LANES`` lanes (element j to lane
        j % 8, each in turn) then ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)); a whole param's: its
        rows' sums (a vector's elements) in chunks of ``TOTAL_CHUNK``, each chunk in the same
        eight lanes, the chunks' sums one after another from 0 (so a vector's chunks can run on
        different threads); a column's one row after another.

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.01
        learning rate: a number >= 0 or a schedule t -> lr
    beta2_decay : float, default -0.8
        the second moments' weight decays as t^beta2_decay
    eps : tuple[float or None, float], default (None, 0.001)
        (eps1, eps2): eps1 bounds v below (None: the dtype's epsilon), eps2 bounds RMS(p)
        below
    d : float, default 1.0
        the update's RMS is clipped to d
    weight_decay : float, default 0.0
        decoupled decay: p *= 1 - lr*weight_decay before the update
    maximize : bool, default False
        maximise the objective: use -g for g
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.adafactor``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.01, beta2_decay: float = -0.8, eps: tuple[float | None, float] = (None, 0.001), d: float = 1.0, weight_decay: float = 0.0, maximize: bool = False, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

class Muon(Optimizer):
    """
    Muon (Jordan et al. 2024): momentum orthogonalised by Newton-Schulz iterations, for matrices.

    The update (t counts from 1)::

            buf = lerp(buf, g, 1 - momentum)                      (buf starts at 0)
            u   = lerp(g, buf, momentum) if nesterov else buf
            X   = u (its transpose if m > n);   X = X / max(||X||_F, eps)
            ns_steps times:   A = X Xᵀ;   X = a X + (b A + c A²) X
            p   = p*(1 - lr*wd) - lr*ratio * X                   (X transposed back)
            ratio = sqrt(max(1, m/n))   (adjust_lr_fn None or "original")
                    0.2*sqrt(max(m, n)) ("match_rms_adamw")

        The iteration's matrix products are BLAS's (NumPy's matmul on the CPU, cuBLAS through CuPy
        on the GPU) in the params' dtype; the elementwise steps around them are fused kernels
        (numba, CUDA). torch runs the iteration in bfloat16 (on a CPU without bfloat16 arithmetic,
        slowly): the two differ by bfloat16's rounding (under 5% of the params' movement over five
        steps, tests/test_muon.py).
        ||X||_F is float64.

    Parameters
    ----------
    params : array, iterable of arrays, or list of dict
        one array, an iterable of arrays (float32/float64, bfloat16/float16; C-contiguous)
        or a list of param group dicts ``{'params': [...], <keyword>: value}``, updated in
        place
    lr : float or schedule, default 0.001
        learning rate: a number >= 0 or a schedule t -> lr
    weight_decay : float, default 0.1
        decoupled decay: p *= 1 - lr*weight_decay before the update
    momentum : float, default 0.95
        buf = lerp(buf, g, 1 - momentum)
    nesterov : bool, default True
        step along lerp(g, buf, momentum) rather than buf
    ns_coefficients : tuple[float, float, float], default (3.4445, -4.775, 2.0315)
        (a, b, c) of the iteration X = aX + (bA + cA²)X, A = XXᵀ
    eps : float, default 1e-07
        X is divided by max(||X||, eps)
    ns_steps : int, default 5
        Newton-Schulz iterations (0-99)
    adjust_lr_fn : str or None, default None
        the lr's scale per shape: None or 'original' sqrt(max(1, m/n)), 'match_rms_adamw'
        0.2*sqrt(max(m, n))
    backend : str, default 'auto'
        "numpy", "numba", "cupy" or "auto" (cupy for GPU arrays, numba for NumPy ones)
    max_grad_norm : float or None, default None
        clip the grads to this norm, taken over all of a step's grads: each is read times
        min(1, max_grad_norm / (norm + 1e-6)) (torch's clip_grad_norm_, without writing the
        grads; ``opt.grad_norm`` is the norm)
    master_weights : bool, default False
        keep float32 copies of bfloat16/float16 params, the params written from them rounded
        to nearest
    stochastic_rounding : bool, default False
        write bfloat16 params (without master copies) rounded stochastically
    seed : int, default 0
        the stochastic rounding's random bits (counter-based: the same on every backend)
    state_dtype : str or None, default None
        the state's dtype: the arithmetic's, 'bfloat16' (half the bytes; rounded to nearest
        at each step) or 'int8' (8-bit blockwise as bitsandbytes keeps it: codes and one
        absmax a block of 256)
    min_8bit_size : int, default 4096
        with state_dtype='int8', params with fewer elements keep float32 state (as
        bitsandbytes' optimizers)

    Notes
    -----
    The rule and its kernels: ``fastopt.kernels.muon``.
    """
    def __init__(self, params: Arrays, lr: LearningRate = 0.001, weight_decay: float = 0.1, momentum: float = 0.95, nesterov: bool = True, ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315), eps: float = 1e-07, ns_steps: int = 5, adjust_lr_fn: str | None = None, *, backend: str = 'auto', max_grad_norm: float | None = None, master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0, state_dtype: str | None = None, min_8bit_size: int = 4096) -> None: ...

"""Training quality with fewer bytes a param: two small torch models trained by
fastopt.torch in float32 and in each precision mode, same seeds, same batches.

* the digits MLP (64 -> 64 tanh -> 10 on scikit-learn's bundled 8x8 digits, the demo's
  network and split): test accuracy and final training loss;
* a character-level language model (16 characters of context, embedded, one tanh layer,
  next-character softmax) on NumPy's docstrings (no download): the loss on held-out text
  after training.

Used by benchmarks/quick/test_quick_quality.py (every rule, every mode: the figures) and
tests/test_precision_training.py (one rule, as a test). torch is imported where used.
"""
from __future__ import annotations

import functools
from typing import Any

# mode -> (params' dtype, the precision keywords)
MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "float32": ("float32", {}),
    "bfloat16 params, stochastic": ("bfloat16", dict(stochastic_rounding=True)),
    "bfloat16 state": ("float32", dict(state_dtype="bfloat16")),
    "int8 state": ("float32", dict(state_dtype="int8")),
    "bfloat16 params, int8 state, stochastic": ("bfloat16", dict(stochastic_rounding=True,
                                                                 state_dtype="int8")),
}
CONTEXT, EMBED, HIDDEN = 16, 16, 128


def _optimizer(rule: str, params: Any, options: dict) -> Any:
    """fastopt.torch's class of ``rule`` (a registry name) at the rule's tuned lr for the
    digits (SGD with momentum 0.9)."""
    import fastopt.torch as ft
    from fastopt.kernels import RULES

    extra = dict(momentum=0.9) if rule == "SGD" else {}
    return getattr(ft, RULES[rule].torch_class or rule)(
        params, lr=RULES[rule].tuned_lr["digits"], **extra, **options)


def digits_run(rule: str, mode: str, epochs: int = 20, seed: int = 0) -> dict[str, float]:
    """The digits MLP trained by ``rule`` in ``mode``: test accuracy (%) and loss (the
    training loss of such a small net goes to ~0, where 2% says nothing)."""
    import torch

    from fastopt.digits import load_split

    dtype, options = MODES[mode]
    dtype = getattr(torch, dtype)
    split = load_split(0, dtype="float32")
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train).long()
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(),
                              torch.nn.Linear(64, 10)).to(dtype)
    opt = _optimizer(rule, net.parameters(), options)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=gen).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[batch].to(dtype)).float(),
                                              y[batch]).backward()
            opt.step()
    with torch.no_grad():
        logits = net(torch.from_numpy(split.x_test).to(dtype)).float()
        labels = torch.from_numpy(split.y_test).long()
        loss = torch.nn.functional.cross_entropy(logits, labels).item()
        accuracy = 100 * (logits.argmax(1) == labels).float().mean()
    return dict(accuracy=float(accuracy), loss=loss)


@functools.lru_cache(maxsize=1)
def corpus() -> tuple[Any, int]:
    """NumPy's docstrings (its top-level names, in order: ~1 MB of English and code) as
    character ids, and the number of distinct characters."""
    import numpy as np

    docs = (getattr(np, name, None).__doc__ for name in sorted(dir(np)))
    text = "\n".join(d for d in docs if isinstance(d, str))
    chars, ids = np.unique(np.frombuffer(text.encode("utf-32-le"), np.uint32),
                           return_inverse=True)
    return ids, len(chars)


def charlm_run(rule: str, mode: str, steps: int = 1500, seed: int = 0, held: int = 0
               ) -> dict[str, float]:
    """The character model trained by ``rule`` in ``mode`` for ``steps`` batches of 64
    windows: its mean loss on the last tenth of the text (never trained on; its first
    ``held`` windows only, if given)."""
    import torch

    codes, n_chars = corpus()
    ids = torch.from_numpy(codes)
    cut = len(ids) * 9 // 10
    train, rest = ids[:cut], ids[cut:]
    dtype, options = MODES[mode]
    dtype = getattr(torch, dtype)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Embedding(n_chars, EMBED), torch.nn.Flatten(),
                              torch.nn.Linear(CONTEXT * EMBED, HIDDEN), torch.nn.Tanh(),
                              torch.nn.Linear(HIDDEN, n_chars)).to(dtype)
    opt = _optimizer(rule, net.parameters(), options)
    gen = torch.Generator().manual_seed(seed)

    def windows(source: Any, starts: Any) -> tuple[Any, Any]:
        index = starts[:, None] + torch.arange(CONTEXT)
        return source[index], source[starts + CONTEXT]

    for _ in range(steps):
        x, y = windows(train, torch.randint(0, cut - CONTEXT - 1, (64,), generator=gen))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x).float(), y).backward()
        opt.step()
    with torch.no_grad():
        x, y = windows(rest, torch.arange(0, held or len(rest) - CONTEXT - 1))
        loss = torch.nn.functional.cross_entropy(net(x).float(), y).item()
    return dict(loss=loss)

"""Cross-check against torch.optim where PyTorch is installed (the rules promise its
semantics). Skipped when torch is absent; the scalar-loop tests are the contract."""
import numpy as np
import pytest
from cases import CASES, case_id
from conftest import make_optimizer

from fastopt.kernels import RULES

torch = pytest.importorskip("torch")

# The schedule-free Nadam (momentum_decay=None) is optax's form; torch has no such option.
# Rules torch.optim lacks (Lion) are checked against the scalar oracle only.
TORCH_CASES = [c for c in CASES if c[1].get("momentum_decay", 0.0) is not None
               and RULES[c[0]].torch_class is not None]


@pytest.mark.parametrize("rule,hp", TORCH_CASES, ids=[case_id(c) for c in TORCH_CASES])
def test_matches_torch_optim(rule, hp, rng):
    p0 = rng.standard_normal(32)
    grads = [rng.standard_normal(32) for _ in range(30)]
    p = p0.copy()
    opt = make_optimizer(rule, p, hp)
    tp = torch.tensor(p0, requires_grad=True)
    topt = getattr(torch.optim, RULES[rule].torch_class)([tp], **hp)
    for g in grads:
        opt.step(g)
        tp.grad = torch.tensor(g)
        topt.step()
    # torch keeps Nadam's mu_product and ASGD's eta and mu as float32 tensors; fastopt keeps
    # them in float64, so there the two differ by float32 rounding of a scalar (~1e-9
    # relative here).
    rtol = 1e-7 if rule in ("Nadam", "ASGD") else 1e-12
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=rtol, atol=rtol / 10)

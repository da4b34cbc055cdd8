"""Schedule-free AdamW: against the ``schedulefree`` package (its steps, and its eval()
and train() moving the params between the two sequences), and the modes' own contract."""
import copy

import numpy as np
import pytest

import fastopt

BACKENDS = ["numpy"] + ["numba"] * ("numba" in fastopt.available_backends())
CASES = [dict(lr=0.01), dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, warmup_steps=5,
                             r=0.5, weight_lr_power=1.0)]


@pytest.mark.parametrize("hp", CASES, ids=["defaults", "warmup-r-decay"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_follows_the_schedulefree_package_through_eval_and_train(backend, hp):
    """float64 (its arithmetic then rounds as fastopt's, but for torch's fused
    multiply-adds): within 1e-14 of it after every step and every switch."""
    torch = pytest.importorskip("torch")
    schedulefree = pytest.importorskip("schedulefree")
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(40)
    ours = p0.copy()
    opt = fastopt.AdamWScheduleFree(ours, backend=backend, **hp)
    theirs = torch.tensor(p0, requires_grad=True)
    reference = schedulefree.AdamWScheduleFree([theirs], foreach=False, **hp)
    reference.train()
    for step in range(30):
        g = rng.standard_normal(40)
        opt.step(g)
        theirs.grad = torch.tensor(g)
        reference.step()
        if step % 10 == 9:
            for mine, other in ((opt.eval, reference.eval), (opt.train, reference.train)):
                mine()
                other()
                np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(opt.state[0]["z"], reference.state[theirs]["z"].numpy(),
                               rtol=0, atol=1e-14)


def test_eval_moves_to_the_average_and_steps_wait_for_train():
    rng = np.random.default_rng(1)
    p = rng.standard_normal(10)
    opt = fastopt.AdamWScheduleFree(p, lr=0.1)
    opt.eval()                                   # before any step: nothing to move
    with pytest.raises(RuntimeError, match=r"call opt.train\(\) before stepping"):
        opt.step(np.ones(10))
    opt.train()
    for _ in range(5):
        opt.step(rng.standard_normal(10))
    y, z = p.copy(), opt.state[0]["z"].copy()
    opt.eval()
    opt.eval()                                   # a second eval() changes nothing
    np.testing.assert_allclose(p, y + (1 - 1 / 0.9) * (z - y), rtol=1e-12)
    before = p.copy()
    with pytest.raises(RuntimeError, match="call opt.train"):
        opt.step(np.ones(10))
    np.testing.assert_array_equal(p, before)
    opt.train()
    np.testing.assert_allclose(p, y, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_mode_travels_with_state_dicts_and_copies(backend):
    rng = np.random.default_rng(2)
    p = rng.standard_normal(10)
    opt = fastopt.AdamWScheduleFree(p, lr=0.1, backend=backend)
    for _ in range(3):
        opt.step(rng.standard_normal(10))
    opt.eval()
    sd = opt.state_dict()
    assert sd["train_mode"] is False
    again = fastopt.AdamWScheduleFree(p.copy(), lr=0.1, backend=backend)
    again.load_state_dict(sd)
    twin = copy.deepcopy(opt)
    for other in (again, twin):
        with pytest.raises(RuntimeError, match="call opt.train"):
            other.step(np.ones(10))
        other.train()
    opt.train()
    g = rng.standard_normal(10)
    for other in (opt, again, twin):
        other.step(g)
    np.testing.assert_array_equal(again.params, p)
    np.testing.assert_array_equal(twin.params, p)


def test_16bit_params_step_but_do_not_switch_yet():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    p = np.ones(8, ml_dtypes.bfloat16)
    opt = fastopt.AdamWScheduleFree(p, lr=0.1)
    opt.step(np.full(8, 0.5, ml_dtypes.bfloat16))
    before = p.copy()
    with pytest.raises(NotImplementedError, match="16-bit or keep narrower state"):
        opt.eval()
    np.testing.assert_array_equal(p.view(np.uint16), before.view(np.uint16))


def test_torch_layer_follows_schedulefree_and_checkpoints_in_eval_mode():
    torch = pytest.importorskip("torch")
    schedulefree = pytest.importorskip("schedulefree")
    ft = pytest.importorskip("fastopt.torch")

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(),
                                   torch.nn.Linear(16, 2))
    x, y = torch.randn(32, 8), torch.randn(32, 2)
    ours, theirs = model(), model()
    opt = ft.AdamWScheduleFree(ours.parameters(), lr=0.01)
    reference = schedulefree.AdamWScheduleFree(theirs.parameters(), lr=0.01, foreach=False)
    opt.train()
    reference.train()
    for _ in range(10):
        for net, o in ((ours, opt), (theirs, reference)):
            o.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            o.step()
    opt.eval()
    reference.eval()
    for a, b in zip(ours.parameters(), theirs.parameters()):     # float32; their FMAs
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert opt.param_groups[0]["train_mode"] is False
    saved, weights = copy.deepcopy(opt.state_dict()), copy.deepcopy(ours.state_dict())
    again = model()
    again.load_state_dict(weights)
    loaded = ft.AdamWScheduleFree(again.parameters(), lr=0.01)
    loaded.load_state_dict(saved)
    torch.nn.functional.mse_loss(again(x), y).backward()
    with pytest.raises(RuntimeError, match="call opt.train"):
        loaded.step()
    for net, o in ((ours, opt), (again, loaded)):
        o.train()
        o.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        o.step()
    for a, b in zip(ours.parameters(), again.parameters()):
        assert torch.equal(a, b)

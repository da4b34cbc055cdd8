"""fastopt.torch's 8-bit state against bitsandbytes' 8-bit optimizers: the same state
layout both ways (their state_dict loads here and ours loads there), and from the same
state one step of each lands within one quantization step of the other."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")
ft = pytest.importorskip("fastopt.torch")
from fastopt.kernels import _blockwise as B  # noqa: E402

# (fastopt.torch class, bitsandbytes class, keywords, (torch state names: state1, state2))
PAIRS = {
    "AdamW": (ft.AdamW, bnb.optim.AdamW8bit, dict(lr=1e-2, weight_decay=1e-2),
              ("exp_avg", "exp_avg_sq")),
    "Adam": (ft.Adam, bnb.optim.Adam8bit, dict(lr=1e-2), ("exp_avg", "exp_avg_sq")),
    "Lion": (ft.Lion, bnb.optim.Lion8bit, dict(lr=1e-3, weight_decay=1e-2), ("exp_avg",)),
}


def model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(40, 120), torch.nn.Tanh(),
                               torch.nn.Linear(120, 7))


def train(opt, net, steps, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(16, 40, generator=gen), torch.randint(0, 7, (16,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()


def twin(net):
    other = model()
    other.load_state_dict(net.state_dict())
    return other


def values(codes, absmax, signed):
    return B.dequantize(codes.numpy(), absmax.numpy(), signed)


def assert_within_one_step(ours, theirs, names, signed):
    """Every state value within one code of the other's, in the other's block scale."""
    for n, name in enumerate(names, 1):
        a, b = ours[name], theirs[f"state{n}"]
        assert int((a.numpy().astype(int) - b.numpy()).__abs__().max()) <= 1, name
        gap = np.diff(B.QMAPS[int(signed[n - 1])]).max() * theirs[f"absmax{n}"].numpy().max()
        assert np.abs(values(a, ours[name + "_absmax"], signed[n - 1])
                      - values(b, theirs[f"absmax{n}"], signed[n - 1])).max() <= gap


@pytest.mark.parametrize("name", list(PAIRS))
def test_our_8bit_state_loads_into_bitsandbytes_and_both_step_alike(name):
    ours_class, their_class, kw, names = PAIRS[name]
    net = model()
    opt = ours_class(net.parameters(), **kw, state_dtype="int8", min_8bit_size=0)
    train(opt, net, 4)
    their_net, our_net = twin(net), twin(net)
    theirs = their_class(their_net.parameters(), **kw, min_8bit_size=0)
    theirs.load_state_dict(opt.bitsandbytes_state_dict())
    again = ours_class(our_net.parameters(), **kw, state_dtype="int8", min_8bit_size=0)
    again.load_state_dict(opt.state_dict())
    train(theirs, their_net, 1, seed=2)
    train(again, our_net, 1, seed=2)
    for a, b in zip(our_net.parameters(), their_net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    signed = [n != "exp_avg_sq" for n in names]
    for p, q in zip(our_net.parameters(), their_net.parameters()):
        assert_within_one_step(again.state[p], theirs.state[q], names, signed)


@pytest.mark.parametrize("name", list(PAIRS))
def test_bitsandbytes_8bit_state_loads_here_and_training_goes_on(name):
    """Their state_dict (8-bit state wrapped as their FSDP layout has it; the float32
    state they keep for params under min_8bit_size, as this optimizer does) loads, and
    from it one step of each lands within one quantization step of the other."""
    ours_class, their_class, kw, names = PAIRS[name]
    net = model()
    theirs = their_class(net.parameters(), **kw)            # default min_8bit_size: 4096
    train(theirs, net, 4)
    saved = theirs.state_dict()
    our_net = twin(net)
    opt = ours_class(our_net.parameters(), **kw, state_dtype="int8")
    opt.load_state_dict(saved)
    for p, q in zip(our_net.parameters(), net.parameters()):
        st, ref = opt.state[p], theirs.state[q]
        assert float(st.get("step", 4)) == 4 and st[names[0]].dtype == ref["state1"].dtype
        assert torch.equal(st[names[0]], ref["state1"])     # codes, or float32 state
    train(theirs, net, 1, seed=2)
    train(opt, our_net, 1, seed=2)
    for a, b in zip(our_net.parameters(), net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list(PAIRS))
def test_their_float32_state_loads_as_8bit_where_we_keep_8bit(name):
    """min_8bit_size=0 here, bitsandbytes' default there: their float32 state of the
    small params is quantized on loading, and training goes on close to theirs."""
    ours_class, their_class, kw, names = PAIRS[name]
    net = model()
    theirs = their_class(net.parameters(), **kw)
    train(theirs, net, 4)
    our_net = twin(net)
    opt = ours_class(our_net.parameters(), **kw, state_dtype="int8", min_8bit_size=0)
    opt.load_state_dict(theirs.state_dict())
    small = [(p, q) for p, q in zip(our_net.parameters(), net.parameters())
             if theirs.state[q]["state1"].dtype == torch.float32]
    assert small
    for p, q in small:
        codes, _ = B.quantize(theirs.state[q]["state1"].numpy(), names[0] != "exp_avg_sq")
        np.testing.assert_array_equal(opt.state[p][names[0]].numpy(), codes)
    train(theirs, net, 1, seed=2)
    train(opt, our_net, 1, seed=2)
    for a, b in zip(our_net.parameters(), net.parameters()):   # (a coarser step than theirs)
        torch.testing.assert_close(a, b, rtol=0, atol=0.05 * kw["lr"])


def test_bitsandbytes_layout_needs_8bit_state():
    opt = ft.AdamW(model().parameters())
    with pytest.raises(ValueError, match="build it with state_dtype='int8'"):
        opt.bitsandbytes_state_dict()


@pytest.mark.parametrize("hp", [dict(lr=0.01), dict(lr=0.01, betas=(0.8, 0.99, 0.999), alpha=3.0,
                                                     t_alpha=20, t_beta3=20, weight_decay=0.0)],
                         ids=["defaults", "warm-ups"])
def test_ademamix_follows_bitsandbytes_32bit_ademamix(hp):
    """Same formula and order of operations; torch's CPU kernels (under theirs) contract
    a*x + y into fused multiply-adds where fastopt rounds each operation, so after 60
    steps the two stay within a few float32 ulps: params (~1) within 1e-6, each state
    within 1e-6 of its largest value."""
    import fastopt

    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(5000).astype(np.float32)
    ours = p0.copy()
    opt = fastopt.AdEMAMix(ours, **hp)
    theirs = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    reference = bnb.optim.AdEMAMix([theirs], optim_bits=32, **hp)
    for _ in range(60):
        g = rng.standard_normal(5000).astype(np.float32)
        opt.step(g)
        theirs.grad = torch.from_numpy(g)
        reference.step()
    assert np.abs(ours - p0).max() > 0.1
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-6)
    st = reference.state[theirs]
    for name, value in (("m1", st["state1"][0]), ("m2", st["state1"][1]), ("nu", st["state2"])):
        value = value.numpy()
        assert np.abs(opt.state[0][name] - value).max() <= 1e-6 * np.abs(value).max(), name

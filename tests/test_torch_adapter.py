"""fastopt.torch: torch.optim drop-ins. Trained side by side with torch.optim on a small
MLP in float64 (torch's default dtype float64, so that torch keeps its scalar state in
float64 too), with schedulers, checkpoints both ways, params without grads, and the edges."""
import copy
import io
import math
import subprocess
import sys

import numpy as np
import pytest
from cases import CASES, case_id

torch = pytest.importorskip("torch")
import fastopt  # noqa: E402
import fastopt.torch as ft  # noqa: E402
from fastopt.kernels import RULES  # noqa: E402

TORCH_CASES = [(rule, hp) for rule, hp in CASES if RULES[rule].torch_class
               and hp.get("momentum_decay", 0.0) is not None]
STEPS = 30


@pytest.fixture(autouse=True)
def float64_default():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def data(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(64, 8, generator=g), torch.randn(64, 3, generator=g)


def train(model, opt, steps=STEPS, scheduler=None):
    """Fit the MLP (with maximize=True, by maximising minus the loss)."""
    x, y = data()
    sign = -1.0 if opt.param_groups[0].get("maximize") else 1.0
    for _ in range(steps):
        opt.zero_grad()
        (sign * torch.nn.functional.mse_loss(model(x), y)).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()


def worst(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def pair(rule, hp, **kw):
    """(torch model and optimizer, fastopt model and optimizer), same start."""
    name = RULES[rule].torch_class
    a, b = mlp(), mlp()
    return a, getattr(torch.optim, name)(a.parameters(), **hp, **kw), \
        b, getattr(ft, name)(b.parameters(), **hp, **kw)


# -- parity with torch.optim ---------------------------------------------------------------
@pytest.mark.parametrize("rule,hp", TORCH_CASES, ids=[case_id(c) for c in TORCH_CASES])
def test_trains_as_torch_optim(rule, hp):
    a, oa, b, ob = pair(rule, hp)
    train(a, oa)
    train(b, ob)
    assert worst(a, b) <= 1e-10


@pytest.mark.parametrize("make", [
    lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
    lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS),
    lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=STEPS),
], ids=["StepLR", "CosineAnnealingLR", "OneCycleLR"])
@pytest.mark.parametrize("rule,hp", [("Adam", dict(lr=0.01)), ("SGD", dict(lr=0.05,
                                                                            momentum=0.9))])
def test_torch_schedulers_drive_it_unchanged(rule, hp, make):
    a, oa, b, ob = pair(rule, hp)
    train(a, oa, scheduler=make(oa))
    train(b, ob, scheduler=make(ob))
    assert worst(a, b) <= 1e-10
    assert [g["lr"] for g in oa.param_groups] == [g["lr"] for g in ob.param_groups]


FASTOPT_ONLY_CASES = [(rule, hp) for rule, hp in CASES if not RULES[rule].torch_class]


@pytest.mark.parametrize("rule,hp", FASTOPT_ONLY_CASES,
                         ids=[case_id(c) for c in FASTOPT_ONLY_CASES])
def test_rules_torch_lacks_train_as_fastopts_numpy_reference(rule, hp):
    """A rule with no torch.optim class (Lion) against fastopt's own reference."""
    model = mlp()
    ref = [p.detach().numpy().copy() for p in model.parameters()]
    opt = getattr(ft, rule)(model.parameters(), **hp)
    core = getattr(fastopt, rule)(ref, **hp, backend="numpy")
    x, y = data()
    for _ in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        opt.step()
        core.step(grads)
        for r, p in zip(ref, model.parameters()):
            np.testing.assert_allclose(r, p.detach().numpy(), rtol=0, atol=1e-14)


def test_param_groups_with_their_own_hyperparameters():
    def groups(model):
        decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
        no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
        return [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "lr": 0.02}]
    a, b = mlp(), mlp()
    oa = torch.optim.AdamW(groups(a), lr=0.01)
    ob = ft.AdamW(groups(b), lr=0.01)
    train(a, oa)
    train(b, ob)
    assert worst(a, b) <= 1e-10


def test_add_param_group_starts_fresh_state_as_torch():
    a, oa, b, ob = pair("Adam", dict(lr=0.01))
    extra_a, extra_b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    train(a, oa, steps=5)
    train(b, ob, steps=5)
    oa.add_param_group({"params": [extra_a], "lr": 0.1})
    ob.add_param_group({"params": [extra_b], "lr": 0.1})
    for model, opt, extra in ((a, oa, extra_a), (b, ob, extra_b)):
        for _ in range(5):
            opt.zero_grad()
            (model(data()[0]).sum() + (extra ** 2).sum()).backward()
            opt.step()
    assert worst(a, b) <= 1e-10
    assert (extra_a - extra_b).abs().max().item() <= 1e-12


# -- params without grads ------------------------------------------------------------------
def test_params_without_a_grad_are_skipped_and_keep_their_step():
    """The last layer's grads are dropped on every other step: torch leaves those params
    and their state alone, so their step counts fall behind the others'."""
    a, oa, b, ob = pair("Adam", dict(lr=0.01))
    x, y = data()
    for step in range(STEPS):
        for model, opt in ((a, oa), (b, ob)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            if step % 2:
                for p in model[2].parameters():
                    p.grad = None
            opt.step()
    assert worst(a, b) <= 1e-10
    steps_a = [oa.state[p]["step"].item() for p in a.parameters()]
    steps_b = [ob.state[p]["step"].item() for p in b.parameters()]
    assert steps_a == steps_b == [30, 30, 15, 15]


@pytest.mark.parametrize("rule,key,value", [("Adam", "step", 10.0),
                                            ("NAdam", "mu_product", 0.5)])
def test_a_step_or_scalar_state_changed_in_place_is_followed(rule, key, value):
    """opt.state[p]['step'].fill_(10) before a step, on one param: as in torch (the 0-d
    tensors are rebuilt each step, not fastopt's own count); a bad value is named and
    nothing moves."""
    name = "NAdam" if rule == "NAdam" else rule
    a, oa, b, ob = pair("Nadam" if rule == "NAdam" else rule, dict(lr=0.01))
    x, y = data()

    def step(model, opt):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    for k in range(4):
        for model, opt in ((a, oa), (b, ob)):
            if k == 2:
                opt.state[model[0].weight][key].fill_(value)
            step(model, opt)
    assert type(ob).__name__ == name and worst(a, b) <= 1e-10
    assert [oa.state[p][key].item() for p in a.parameters()] == \
        [ob.state[p][key].item() for p in b.parameters()]
    if key == "step":
        ob.state[b[2].bias]["step"].fill_(2.5)
        before = [p.detach().clone() for p in b.parameters()]
        with pytest.raises(ValueError, match=r"has step 2.5.*changed in place"):
            step(b, ob)
        assert all(torch.equal(p, q) for p, q in zip(b.parameters(), before))


def test_frozen_layers_are_skipped_then_stepped_from_their_unfreezing():
    """Fine-tuning: the first layer frozen (requires_grad=False) when the optimizer is
    built, unfrozen after 3 steps, frozen again after 6: as torch, step counts included."""
    a, b = mlp(), mlp()
    a[0].requires_grad_(False), b[0].requires_grad_(False)
    oa, ob = torch.optim.AdamW(a.parameters(), lr=0.01), ft.AdamW(b.parameters(), lr=0.01)
    x, y = data()
    for k in range(10):
        for model, opt in ((a, oa), (b, ob)):
            model[0].requires_grad_(3 <= k < 6 or k == 9)
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    assert worst(a, b) <= 1e-10
    assert [ob.state[p]["step"].item() for p in b.parameters()] == \
        [oa.state[p]["step"].item() for p in a.parameters()] == [4, 4, 10, 10]


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_autograd_sees_the_step_change_params_in_place(name):
    """A graph that saved a param before the step raises on backward after it, as with
    torch's optimizers (the kernels write through NumPy views, which autograd cannot see:
    the step bumps the params' version counters)."""
    for opt_class in (getattr(torch.optim, name), getattr(ft, name)):
        w = torch.nn.Parameter(torch.ones(3))
        opt = opt_class([w], lr=0.1)
        loss = (w ** 3).sum()
        loss.backward(retain_graph=True)
        opt.step()
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            loss.backward()


def test_param_groups_edited_directly_are_followed_as_torch_follows_them():
    """param_groups reversed, a group dict appended, a params list replaced, a group
    popped, between steps: each param keeps its own hyperparameters and state, as in
    torch (a reversed list stepped each group with the other's lr; an appended group was
    never stepped; a param taken out was still stepped)."""
    def edits(opt, extra):
        yield
        opt.param_groups.reverse()
        yield
        opt.param_groups.append({**opt.defaults, "params": [extra], "lr": 0.02})
        yield
        opt.param_groups[0]["params"] = opt.param_groups[0]["params"][:1]
        yield
        opt.param_groups.pop()
        yield
    runs = []
    for module in (torch.optim, ft):
        model, extra = mlp(), torch.nn.Parameter(torch.ones(5))
        opt = module.Adam([{"params": model[0].parameters(), "lr": 0.01},
                           {"params": model[2].parameters(), "lr": 0.03}])
        x, y = data()
        seen = []
        for _ in edits(opt, extra):
            for _ in range(2):
                opt.zero_grad()
                (torch.nn.functional.mse_loss(model(x), y) + extra.sum()).backward()
                opt.step()
            seen.append([p.detach().clone() for p in (*model.parameters(), extra)])
        runs.append((seen, [opt.state[p].get("step", torch.tensor(0.)).item()
                            for p in (*model.parameters(), extra)]))
    (seen_a, steps_a), (seen_b, steps_b) = runs
    for a, b in zip(seen_a, seen_b):
        assert max((p - q).abs().max().item() for p, q in zip(a, b)) <= 1e-10
    assert steps_a == steps_b
    opt = ft.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    opt.param_groups.append({"params": torch.ones(2)})
    with pytest.raises(TypeError, match=r"param_groups\[1\] must be a dict with a list of "
                                        "params, got dict of params Tensor"):
        opt.step()


def test_loaded_states_are_taken_or_refused_as_torch_takes_them():
    """From the third hunt: a state at step 0 keeps its moments; SGD's momentum_buffer of
    None starts afresh; a NAdam state without mu_product, a step that is not one number and
    torch.optim.Adam's groups in AdamW are refused by name (torch raises KeyError or runs
    Adam); a complex lr set between steps is refused."""
    def both(make, edit):
        out = []
        for module in (torch.optim, ft):
            p = torch.nn.Parameter(torch.ones(3))
            opt = make(module, p)
            p.grad = torch.full((3,), 0.5)
            opt.step()
            sd = opt.state_dict()
            edit(sd)
            q = torch.nn.Parameter(torch.ones(3))
            again = make(module, q)
            again.load_state_dict(sd)
            q.grad = torch.full((3,), 0.5)
            again.step()
            out.append(q.detach().clone())
        assert torch.allclose(*out, rtol=0, atol=1e-12), out

    both(lambda m, p: m.Adam([p], lr=0.1), lambda sd: sd["state"][0].update(step=0.0))
    shown = []                   # before that step, the loaded state shows and saves
    for module in (torch.optim, ft):
        p = torch.nn.Parameter(torch.ones(3))
        opt = module.Adam([p], lr=0.1)
        p.grad = torch.full((3,), 0.5)
        opt.step()
        sd = opt.state_dict()
        sd["state"][0]["step"] = torch.tensor(0.0)
        again = module.Adam([p], lr=0.1)
        again.load_state_dict(sd)
        shown.append(again.state_dict()["state"][0])
    assert shown[0].keys() == shown[1].keys() and all(
        torch.equal(torch.as_tensor(v), torch.as_tensor(shown[1][k]))
        for k, v in shown[0].items())
    both(lambda m, p: m.SGD([p], lr=0.1, momentum=0.9),
         lambda sd: sd["state"][0].update(momentum_buffer=None))
    p = torch.nn.Parameter(torch.ones(3))
    nadam = ft.NAdam([p])
    p.grad = torch.ones(3)
    nadam.step()
    sd = nadam.state_dict()
    del sd["state"][0]["mu_product"]
    with pytest.raises(ValueError, match=r"\['params'\]\[0\] lacks 'mu_product'"):
        ft.NAdam([p]).load_state_dict(sd)
    sd = nadam.state_dict()
    sd["state"][0]["step"] = torch.tensor([3.0, 3.0])
    with pytest.raises(ValueError, match=r"\['params'\]\[0\]'s 'step' must be a number"):
        ft.NAdam([p]).load_state_dict(sd)
    with pytest.raises(ValueError, match="decoupled_weight_decay=False, which AdamW never"):
        ft.AdamW([p]).load_state_dict(torch.optim.Adam([p]).state_dict())
    opt = ft.Adam([p], lr=0.1)
    opt.param_groups[0]["lr"] = 0.1 + 0j
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got \(0.1\+0j\)"):
        opt.step()


def test_a_param_that_never_gets_a_grad_has_no_state():
    model = mlp()
    opt = ft.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, _ = data()
    model[0](x).sum().backward()             # the last layer gets no grad
    before = [p.detach().clone() for p in model[2].parameters()]
    opt.step()
    assert all(torch.equal(p, q) for p, q in zip(model[2].parameters(), before))
    assert set(opt.state) == set(model[0].parameters())


# -- checkpoints in torch's layout ---------------------------------------------------------
CHECKPOINT_CASES = [c for c in TORCH_CASES if c[0] in ("Adam", "SGD", "RMSprop", "Nadam",
                                                         "Adagrad")]


@pytest.mark.parametrize("rule,hp", CHECKPOINT_CASES, ids=[case_id(c) for c in CHECKPOINT_CASES])
def test_checkpoints_cross_between_fastopt_and_torch(rule, hp):
    a, oa, b, ob = pair(rule, hp)
    train(a, oa, steps=10)
    train(b, ob, steps=10)
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    assert all(sa["state"][i].keys() == sb["state"][i].keys() for i in sa["state"])
    buffer = io.BytesIO()
    torch.save(sb, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    # swap: torch continues from fastopt's checkpoint and fastopt from torch's
    with torch.no_grad():
        for p, q in zip(a.parameters(), b.parameters()):
            p_copy = p.clone()
            p.copy_(q)
            q.copy_(p_copy)
    name = RULES[rule].torch_class
    oa2 = getattr(torch.optim, name)(a.parameters(), **hp)
    oa2.load_state_dict(saved)
    ob2 = getattr(ft, name)(b.parameters(), **hp)
    ob2.load_state_dict(sa)
    reference = mlp()
    with torch.no_grad():
        for r, p in zip(reference.parameters(), a.parameters()):
            r.copy_(p)
    train(a, oa2, steps=10)
    train(b, ob2, steps=10)
    # each side now runs the other's history: compare with the uninterrupted runs
    a_cont, oa_cont, b_cont, ob_cont = pair(rule, hp)
    train(a_cont, oa_cont, steps=20)
    train(b_cont, ob_cont, steps=20)
    assert worst(a, b_cont) <= 1e-10 and worst(b, a_cont) <= 1e-10


def test_a_failed_load_changes_nothing():
    a, oa, b, ob = pair("Adam", dict(lr=0.01))
    train(b, ob, steps=3)
    sd = ob.state_dict()
    del sd["state"][1]["exp_avg_sq"]
    before = {k: v for k, v in ob.param_groups[0].items() if k != "params"}
    state_before = {i: {k: v.clone() for k, v in st.items()}
                    for i, st in enumerate(ob.state.values())}
    sd["param_groups"][0]["lr"] = 0.5
    with pytest.raises(ValueError, match="lacks 'exp_avg_sq'"):
        ob.load_state_dict(sd)
    assert {k: v for k, v in ob.param_groups[0].items() if k != "params"} == before
    for i, st in enumerate(ob.state.values()):
        assert all(torch.equal(v, state_before[i][k]) for k, v in st.items())


# -- the edges -----------------------------------------------------------------------------
def test_errors_name_the_param():
    with pytest.raises(TypeError, match=r"\['params'\]\[0\] has dtype torch.complex128"):
        ft.Adam([torch.nn.Parameter(torch.ones(2, dtype=torch.complex128))])
    with pytest.raises(TypeError, match="dtype torch.int64 on cpu; fastopt updates float32"):
        ft.SGD([torch.ones(2, dtype=torch.int64)])
    p = torch.nn.Parameter(torch.ones(4, 3))
    opt = ft.SGD([p], lr=0.1)
    p.grad = torch.ones(3, 4).t()
    with pytest.raises(ValueError, match=r"\['params'\]\[0\] has a grad with strides"):
        opt.step()
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = ft.Adam(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match=r"\['params'\]\[0\] has a sparse grad"):
        opt.step()


def test_bad_hyperparameters_name_the_torch_group():
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match=r"NAdam: param_groups\[1\]: lr must be"):
        ft.NAdam([{"params": [p]}, {"params": [q], "lr": -1.0}])


@pytest.mark.parametrize("option", ["differentiable", "capturable"])
def test_options_fastopt_cannot_honour_are_refused(option):
    with pytest.raises(ValueError, match=f"{option}=True is not supported"):
        ft.Adam([torch.nn.Parameter(torch.ones(2))], **{option: True})


@pytest.mark.parametrize("option", [dict(foreach=True), dict(fused=True), dict(foreach=False)])
def test_code_path_options_are_accepted(option):
    a, oa, b, ob = pair("Adam", dict(lr=0.01), **option)
    train(a, oa)
    train(b, ob)
    assert worst(a, b) <= 1e-10


def test_closure_is_called_with_grad_enabled_and_its_loss_returned():
    model = mlp()
    opt = ft.SGD(model.parameters(), lr=0.1)
    closure = mse_closure(model, opt)
    first = opt.step(closure)
    second = opt.step(closure)
    assert second < first


def test_signatures_are_torchs():
    import inspect
    for rule in RULES.values():
        if rule.torch_class is None:
            continue
        ours = inspect.signature(getattr(ft, rule.torch_class))
        theirs = inspect.signature(getattr(torch.optim, rule.torch_class))
        assert list(ours.parameters) == [*theirs.parameters, "backend", "max_grad_norm",
                                         "master_weights", "stochastic_rounding", "seed",
                                         "state_dtype", "min_8bit_size"]
        assert all(ours.parameters[k].default == v.default
                   for k, v in theirs.parameters.items())


@pytest.mark.parametrize("rule", [r for r in RULES.values() if r.torch_class], ids=str)
def test_param_groups_have_torchs_keys(rule):
    """Every key torch's class puts in a group, AdamW's decoupled_weight_decay=True (set
    by the class, not a keyword) included; changing that one is refused by name."""
    def groups(make):
        return make([torch.nn.Parameter(torch.ones(3, 3))], lr=0.1).param_groups[0]
    theirs = groups(getattr(torch.optim, rule.torch_class))
    ours = groups(getattr(ft, rule.torch_class))
    assert ours.keys() == theirs.keys() and all(
        ours[k] == v for k, v in theirs.items() if k != "params")
    if rule.torch_class == "AdamW":
        p = torch.nn.Parameter(torch.ones(3))
        opt = ft.AdamW([p])
        p.grad = torch.ones(3)
        opt.param_groups[0]["decoupled_weight_decay"] = False
        with pytest.raises(ValueError, match=r"AdamW: param_groups\[0\]\['decoupled_"
                                             r"weight_decay'\] is False; AdamW always"):
            opt.step()
        assert torch.equal(p, torch.ones(3))


# -- the core API takes torch CPU tensors ------------------------------------------------------
def test_core_optimizers_update_cpu_tensors_in_place():
    p = torch.zeros(4, requires_grad=True)
    opt = fastopt.SGD([p], lr=0.5, backend="numba" if "numba" in
                      fastopt.available_backends() else "numpy")
    opt.step([torch.ones(4)])
    assert torch.equal(p.detach(), torch.full((4,), -0.5))


def test_importing_fastopt_does_not_import_torch():
    code = "import sys, fastopt; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_a_0d_tensor_or_array_lr_is_read_at_every_step(kind):
    """torch allows lr as a 0-d tensor whose value changes between steps; fastopt reads
    it (or a 0-d NumPy array) at each step."""
    lr = torch.tensor(0.01) if kind == "torch" else np.array(0.01)
    p = torch.ones(5, requires_grad=True)
    q = torch.ones(5, requires_grad=True)
    ours = fastopt.Adam([p], lr=lr)
    theirs = torch.optim.Adam([q], lr=torch.tensor(0.01))
    for step in range(6):
        value = 0.01 / (step + 1)
        if kind == "torch":
            lr.fill_(value)
        else:
            lr[()] = value
        theirs.param_groups[0]["lr"].fill_(value)
        g = torch.linspace(-1, 1, 5) * (step + 1)
        ours.step([g])
        q.grad = g.clone()
        theirs.step()
    assert torch.allclose(p.detach(), q.detach(), rtol=0, atol=1e-15)
    lr.fill_(-1.0) if kind == "torch" else lr.fill(-1.0)
    before = p.detach().clone()
    with pytest.raises(ValueError, match="lr schedule at step 7 must be a finite number"):
        ours.step([torch.ones(5)])
    assert torch.equal(p.detach(), before)
    assert fastopt.Adam([torch.ones(2)], lr=torch.tensor(0.5)).state_dict()["groups.0.lr"] == 0.5


def test_a_grad_sharing_its_params_memory_takes_the_checked_route():
    """Grads go to the kernels by address; one that overlaps memory the step writes (here
    the param itself) is copied first, as the core API does, and the answer is torch's."""
    p, q = torch.nn.Parameter(torch.full((4,), 2.0)), torch.nn.Parameter(torch.full((4,), 2.0))
    ours, theirs = ft.SGD([p], lr=0.25), torch.optim.SGD([q], lr=0.25)
    p.grad, q.grad = p.detach(), q.detach()
    ours.step()
    theirs.step()
    assert torch.equal(p.detach(), q.detach()) and torch.equal(p.detach(), torch.full((4,), 1.5))


# -- dense layouts other than C order --------------------------------------------------------
def conv_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.Tanh(),
                               torch.nn.Conv2d(4, 3, 3), torch.nn.Flatten())


@pytest.mark.parametrize("rule,hp", [("AdamW", dict(lr=0.01, weight_decay=0.1)),
                                     ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True))])
def test_channels_last_and_transposed_params_train_as_torchs(rule, hp):
    """A channels_last conv net and a transposed param: the storage updated in place (an
    elementwise rule does not care about element order), the state laid out as the param
    in opt.state and state_dict, checkpoints crossing with torch's both ways."""
    x = torch.randn(5, 2, 6, 6).to(memory_format=torch.channels_last)
    runs = []
    for cls in (getattr(torch.optim, rule), getattr(ft, rule)):
        net = conv_net().to(memory_format=torch.channels_last)
        w = torch.nn.Parameter(torch.randn(3, 8).t())                  # (8, 3), strides (1, 8)
        params = list(net.parameters()) + [w]
        assert not params[0].is_contiguous() and not w.is_contiguous()
        opt = cls(params, **hp)
        for _ in range(5):
            opt.zero_grad()
            (net(x).square().mean() + (w.sum(0) ** 2).sum()).backward()
            opt.step()
        runs.append((params, opt))
    (a, oa), (b, ob) = runs
    assert max((p - q).abs().max().item() for p, q in zip(a, b)) <= 1e-12
    assert all(p.stride() == q.stride() for p, q in zip(a, b))      # still in place
    name = "exp_avg" if rule == "AdamW" else "momentum_buffer"
    for p, q in zip(a, b):
        ours, theirs = ob.state[q][name], oa.state[p][name]
        assert ours.stride() == theirs.stride() and torch.allclose(ours, theirs, atol=1e-12)
    # each loads the other's checkpoint and steps on: the same as stepping on
    sa, sb = copy.deepcopy(oa.state_dict()), copy.deepcopy(ob.state_dict())
    for (params, opt), sd in ((runs[0], sb), (runs[1], sa)):
        opt.load_state_dict(sd)
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
    assert max((p - q).abs().max().item() for p, q in zip(a, b)) <= 1e-12


def test_a_model_moved_to_channels_last_and_back_mid_run_keeps_its_state():
    """``model.to(memory_format=...)`` rebinds the params in another layout: the state
    follows, laid out as the params now are (it said "changed shape or dtype")."""
    x = torch.randn(5, 2, 6, 6)
    runs = []
    for cls in (torch.optim.Adam, ft.Adam):
        net = conv_net()
        opt = cls(net.parameters(), lr=0.01)
        for k in range(6):
            fmt = torch.channels_last if k in (2, 3) else torch.contiguous_format
            net.to(memory_format=fmt)
            opt.zero_grad()
            net(x.to(memory_format=fmt)).square().mean().backward()
            opt.step()
        runs.append(net)
    assert worst(*runs) <= 1e-12


def test_grads_laid_out_as_torch_lays_them_out_beside_a_transposed_param():
    """A (5, 1) param's grad may come with strides (1, 5) (both C-ordered: a dimension of
    length 1 has any stride); beside a transposed param it is taken as torch takes it."""
    x = torch.randn(3, 5)
    runs = []
    for cls in (torch.optim.SGD, ft.SGD):
        torch.manual_seed(0)
        a = torch.nn.Parameter(torch.randn(5, 3).t())
        w = torch.nn.Parameter(torch.randn(5, 1))
        opt = cls([a, w], lr=0.1, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            (x * a * w.t()).sum().backward()
            assert w.grad.stride() == (1, 5)
            opt.step()
        runs.append(torch.cat([a.detach().flatten(), w.detach().flatten()]))
    assert torch.allclose(*runs, rtol=0, atol=1e-12)


def test_a_param_viewed_anew_at_the_same_address_is_named():
    """``p.data = p.data.view(3, 4)`` keeps the address but not the shape its state has:
    named, as any param whose state no longer fits (torch fails inside its update; this
    ended in "params is empty" when only addresses were compared)."""
    p = torch.nn.Parameter(torch.arange(12.0).reshape(4, 3))
    opt = ft.SGD([p], lr=0.1, momentum=0.9)
    p.grad = torch.ones(4, 3)
    opt.step()
    p.data = p.data.view(3, 4)
    p.grad = torch.ones(3, 4)
    before = p.detach().clone()
    with pytest.raises(ValueError, match=r"SGD: a param of param_groups\[0\] changed shape"):
        opt.step()
    assert torch.equal(p.detach(), before)


def test_a_param_with_gaps_is_refused_by_name():
    big = torch.zeros(4, 6)
    p = torch.nn.Parameter(big[:, ::2])          # every other column: gaps in its memory
    with pytest.raises(ValueError, match=r"\['params'\]\[0\] has gaps or overlaps in its "
                                         r"memory \(shape \(4, 3\), strides \(6, 2\)\)"):
        ft.Adam([p])


# -- torch's step protocol around the light wrapper ----------------------------------------
def test_step_hooks_and_profiler_range_as_torchs():
    """The step wrapper enters torch's own (hooks, "Optimizer.step#X.step" range) only when
    a hook is registered or a profiler runs: every hook runs once a step, in torch's order,
    a pre-hook's new arguments reach the step, and removing the hooks ends them."""
    from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                       register_optimizer_step_pre_hook)
    calls = []
    for cls in (torch.optim.Adam, ft.Adam):
        p = torch.nn.Parameter(torch.ones(3))
        opt = cls([p], lr=0.1)
        p.grad = torch.ones(3)
        name = cls.__module__.split(".")[0]
        handles = [
            register_optimizer_step_pre_hook(lambda o, a, k: calls.append((name, "global pre"))),
            opt.register_step_pre_hook(lambda o, a, k: calls.append((name, "pre"))),
            opt.register_step_post_hook(lambda o, a, k: calls.append((name, "post"))),
            register_optimizer_step_post_hook(lambda o, a, k: calls.append((name, "global "
                                                                          "post")))]
        opt.step()
        for h in handles:
            h.remove()
        opt.step()
        assert torch.allclose(p.detach(), torch.full((3,), 0.8))   # both steps were taken
    order = ["global pre", "pre", "post", "global post"]
    assert calls == [("torch", k) for k in order] + [("fastopt", k) for k in order]
    # a pre-hook's (args, kwargs) reach the step: here a closure
    p = torch.nn.Parameter(torch.ones(3))
    opt = ft.SGD([p], lr=0.5)
    p.grad = torch.ones(3)
    opt.register_step_pre_hook(lambda o, a, k: (a, {"closure": lambda: 7.0}))
    assert opt.step() == 7.0 and torch.equal(p.detach(), torch.full((3,), 0.5))
    with torch.profiler.profile() as prof:
        ft.Adam([p], lr=0.1).step()
    assert "Optimizer.step#Adam.step" in {e.name for e in prof.events()}
    assert getattr(ft.Adam.step, "hooked", False)       # torch does not wrap it again


def test_a_subclass_overriding_step_runs_each_hook_once():
    class Clipped(ft.SGD):
        def step(self, closure=None):
            for group in self.param_groups:
                torch.nn.utils.clip_grad_norm_(group["params"], 1.0)
            return super().step(closure)
    p = torch.nn.Parameter(torch.ones(3))
    opt = Clipped([p], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    p.grad = torch.full((3,), 10.0)
    opt.step()
    assert calls == ["pre", "post"]
    assert torch.allclose(p.detach(), 1 - 0.1 / 3 ** 0.5 * torch.ones(3))


def test_a_compiled_training_step_compiles_once():
    """torch.compile of a function that calls opt.step(): the step is one graph break,
    run as it is (traced, its per-step scalars were guards and every step recompiled up
    to dynamo's limit); the result is the eager one."""
    import torch._dynamo
    from torch._dynamo.utils import counters
    x, y = data()
    results = []
    for compiled in (False, True):
        model = mlp()
        opt = ft.Adam(model.parameters(), lr=0.01)

        def train_step():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            return loss
        if compiled:
            torch._dynamo.reset()
            counters.clear()
            train_step = torch.compile(train_step, backend="eager")
        for _ in range(10):
            train_step()
        results.append(model)
    assert counters["stats"]["unique_graphs"] <= 2        # 9 when the step was traced
    assert worst(*results) == 0.0


def test_a_group_value_torchs_class_fixes_is_kept():
    p = torch.nn.Parameter(torch.ones(3))
    opt = ft.AdamW([p])
    p.grad = torch.ones(3)
    opt.step()
    opt.param_groups[0]["decoupled_weight_decay"] = False
    with pytest.raises(ValueError, match=r"AdamW: param_groups\[0\]\['decoupled_weight_decay'\] "
                                         "is False; AdamW always has True"):
        opt.step()
    opt.param_groups[0]["decoupled_weight_decay"] = True
    opt.step()


@pytest.mark.parametrize("bad,match", [(float("nan"), "finite number >= 0, got nan"),
                                       (-0.1, "finite number >= 0, got -0.1"),
                                       (1e39, "overflows float32"),
                                       (3e38, "make the step scalar .* overflows float32"),
                                       (1e-46, "rounds to 0 in float32")])
def test_a_new_lr_each_step_is_checked_and_changes_nothing_when_wrong(bad, match):
    """The new-lr fast lane (a scheduler's change) checks what the full checks did, the
    step scalars included, before any group steps."""
    params = [torch.nn.Parameter(torch.ones(n, dtype=torch.float32)) for n in (3, 2)]
    opt = ft.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=1e-3)
    for k in range(2):
        for p in params:
            p.grad = torch.full_like(p, 0.5)
        opt.param_groups[1]["lr"] = 1e-3 * (k + 1)           # through the fast lane
        opt.step()
    before = [p.detach().clone() for p in params]
    opt.param_groups[1]["lr"] = bad
    with pytest.raises(ValueError, match=r"Adam: param_groups\[1\]: .*" + match):
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(params, before))


# -- L-BFGS ----------------------------------------------------------------------------------
def mse_closure(model, opt):
    """torch's closure for L-BFGS: the loss on the data, its grads in p.grad."""
    x, y = data()

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss
    return closure


def lbfgs_run(opt_class, steps, model=None, **kw):
    model = model or mlp()
    opt = opt_class(model.parameters(), **kw)
    closure = mse_closure(model, opt)
    losses = [opt.step(closure).item() for _ in range(steps)]
    return model, opt, losses


@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe"),
                                dict(history_size=5, line_search_fn="strong_wolfe"),
                                dict(lr=0.5, history_size=3, max_iter=7)],
                         ids=["fixed step", "strong_wolfe", "history 5", "lr 0.5 history 3"])
def test_lbfgs_runs_as_torchs(kw):
    """Three steps of up to 20 iterations each. The two agree to rounding: only the dot
    products' summation order differs (fastopt's fused float64 passes against BLAS), and
    L-BFGS near a minimum amplifies it (~1e-11 after 100 iterations, 3e-8 with a history
    of 5: not a test tolerance)."""
    a, oa, la = lbfgs_run(torch.optim.LBFGS, 3, **kw)
    b, ob, lb = lbfgs_run(ft.LBFGS, 3, **kw)
    assert worst(a, b) <= 1e-10
    assert la == pytest.approx(lb, rel=1e-12)
    sa, sb = (o.state[next(iter(m.parameters()))] for o, m in ((oa, a), (ob, b)))
    assert (sa["n_iter"], sa["func_evals"]) == (sb["n_iter"], sb["func_evals"])


def test_lbfgs_checkpoints_cross_with_torch():
    a, oa, _ = lbfgs_run(torch.optim.LBFGS, 2, history_size=4)
    b, ob, _ = lbfgs_run(ft.LBFGS, 2, history_size=4)
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["state"][0].keys() == sb["state"][0].keys()
    # each continues from the other's checkpoint, against the uninterrupted runs
    a2, b2 = mlp(), mlp()
    with torch.no_grad():
        for p, q, r, s in zip(a2.parameters(), b.parameters(), b2.parameters(), a.parameters()):
            p.copy_(q)
            r.copy_(s)
    ta = torch.optim.LBFGS(a2.parameters(), history_size=4)
    ta.load_state_dict(sb)
    fb = ft.LBFGS(b2.parameters(), history_size=4)
    fb.load_state_dict(sa)
    for model, opt in ((a2, ta), (b2, fb)):
        closure = mse_closure(model, opt)
        opt.step(closure)
    ref, _, _ = lbfgs_run(torch.optim.LBFGS, 3, history_size=4)
    assert worst(a2, ref) <= 1e-10 and worst(b2, ref) <= 1e-10


def test_lbfgs_signature_and_edges():
    import inspect
    ours = list(inspect.signature(ft.LBFGS).parameters)
    assert ours[:-1] == list(inspect.signature(torch.optim.LBFGS).parameters)
    with pytest.raises(TypeError, match="dtype torch.float16"):
        ft.LBFGS([torch.nn.Parameter(torch.ones(2, dtype=torch.float16))])
    # a frozen layer stays put, as in torch (6 iterations a step: what is left to fit is
    # a quadratic, and near its minimum the rounding differences grow to 1e-3)
    frozen = []
    for opt_class in (torch.optim.LBFGS, ft.LBFGS):
        model = mlp()
        model[0].requires_grad_(False)
        frozen.append(lbfgs_run(opt_class, 2, model=model, max_iter=6)[0])
    assert worst(*frozen) <= 1e-10 and torch.equal(frozen[1][0].weight, mlp()[0].weight)


def test_lbfgs_follows_model_double_with_its_history():
    """After model.double() the history goes on in float64 (torch.optim.LBFGS fails in
    dot): as torch's run from the same float32 checkpoint, its state converted by hand; a
    change of size or mixed dtypes are named."""
    def fit(model, opt, dtype):
        x, y = (t.to(dtype) for t in data())

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss
        opt.step(closure)
    ours, theirs = mlp().float(), mlp().float()
    opt = ft.LBFGS(ours.parameters(), history_size=4)
    fit(ours, opt, torch.float32)                    # the pairs in fastopt's ring buffers
    ref = torch.optim.LBFGS(theirs.parameters(), history_size=4)
    ref.load_state_dict(opt.state_dict())
    theirs.load_state_dict(ours.state_dict())
    ours.double(), theirs.double()
    state = ref.state[next(iter(theirs.parameters()))]
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            state[key] = value.double()
        elif isinstance(value, list):
            state[key] = [v.double() if isinstance(v, torch.Tensor) else v for v in value]
    fit(ours, opt, torch.float64)
    fit(theirs, ref, torch.float64)
    assert all(p.dtype == torch.float64 for p in ours.parameters())
    assert worst(ours, theirs) <= 1e-10
    p, q = (torch.nn.Parameter(torch.ones(n, dtype=torch.float32)) for n in (3, 2))
    opt = ft.LBFGS([p, q])

    def squares():
        opt.zero_grad()
        loss = (p * p).sum() + (q * q).sum()
        loss.backward()
        return loss
    opt.step(squares)
    q.data = q.data.double()
    with pytest.raises(ValueError, match="share one dtype"):
        opt.step(squares)
    q.data = torch.ones(4, dtype=torch.float32)
    with pytest.raises(ValueError, match="now hold 7 elements, 5 when the history"):
        opt.step(squares)


def test_lbfgs_loads_a_checkpoint_with_a_longer_history():
    a, oa, _ = lbfgs_run(torch.optim.LBFGS, 2, history_size=8)
    b = mlp()
    with torch.no_grad():
        for p, q in zip(b.parameters(), a.parameters()):
            p.copy_(q)
    ours = ft.LBFGS(b.parameters(), history_size=3)
    ours.load_state_dict(oa.state_dict())            # history_size 8 comes with it
    model, opt = b, ours
    closure = mse_closure(model, opt)
    opt.step(closure)
    ref, _, _ = lbfgs_run(torch.optim.LBFGS, 3, history_size=8)
    assert worst(b, ref) <= 1e-10


ALONG = {   # f(t) along a line, with f'(t): what the searches are compared on
    "quadratic": (lambda t: (t - 3.0) ** 2, lambda t: 2 * (t - 3.0)),
    "quartic": (lambda t: (t * t - 4.0) ** 2 - t, lambda t: 4 * t * (t * t - 4.0) - 1),
    "wavy": (lambda t: math.sin(3 * t) - 0.5 * t + 0.1 * t * t,
             lambda t: 3 * math.cos(3 * t) - 0.5 + 0.2 * t),
    "steep far": (lambda t: math.exp(0.02 * (t - 300.0) ** 2 / 100) - t,
                  lambda t: math.exp(0.02 * (t - 300.0) ** 2 / 100) * 0.0004 * (t - 300.0) - 1),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("t0", [1e-3, 0.7, 1.0, 25.0])
@pytest.mark.parametrize("max_ls", [0, 1, 2, 25])
@pytest.mark.parametrize("name", list(ALONG))
def test_lswolfe_is_torchs_search_bit_for_bit(name, max_ls, t0, dtype):
    """fastopt's host-scalar port against torch.optim.LBFGS's own search (private; the
    reference only) on one-dimensional functions: the same trials, the same step, loss
    and gradient, to the last bit; for float32 params too, where torch's tests run in
    float32 on its 0-d tensors (the port's on NumPy float32 scalars)."""
    from torch.optim.lbfgs import _strong_wolfe

    from fastopt.solvers.linesearch import lswolfe
    f, df = ALONG[name]
    real = np.float32 if dtype == torch.float32 else float
    d = torch.tensor([1.0], dtype=dtype)
    ours_trials, theirs_trials = [], []

    def grad(t):
        return torch.tensor([df(float(t))], dtype=dtype)

    def obj_func(x, t, d):
        theirs_trials.append(float(t))
        return f(float(t)), grad(t)

    def phi(t):
        ours_trials.append(float(t))
        g = grad(t)
        return f(float(t)), real(g.dot(d).item()), g
    g0 = grad(0.0)
    f_t, g_t, t_t, n_t = _strong_wolfe(obj_func, None, t0, d, f(0.0), g0, g0.dot(d),
                                       max_ls=max_ls)
    t_o, f_o, g_o, n_o = lswolfe(phi, f(0.0), real(g0.dot(d).item()), g0, t0,
                                 real(d.abs().max().item()), max_evals=max_ls)
    assert ours_trials == theirs_trials and n_o == n_t
    assert (float(t_o), f_o, float(g_o)) == (float(t_t), f_t, float(g_t))


def test_lbfgs_in_float32_runs_as_torchs():
    """float32 params: the same iterations and evaluations as torch's (its tests in float32;
    before, in float64 here, they drifted apart). The params agree to float32 rounding
    grown over 40 iterations (the two-loop's float64 sums against torch's float32 dots)."""
    runs = []
    for cls in (torch.optim.LBFGS, ft.LBFGS):
        model = mlp().float()
        opt = cls(model.parameters(), history_size=5, line_search_fn="strong_wolfe")
        x, y = (t.float() for t in data())

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss
        for _ in range(2):
            opt.step(closure)
        st = opt.state[next(iter(model.parameters()))]
        runs.append((model, st["n_iter"], st["func_evals"]))
    (a, na, fa), (b, nb, fb) = runs
    assert (na, fa) == (nb, fb) and worst(a, b) <= 1e-2


def test_lbfgs_owns_no_torch_internals():
    """Built on torch.optim.Optimizer and fastopt's solver core: nothing of
    torch.optim.LBFGS's (its private search and helpers) is used."""
    import inspect
    source = inspect.getsource(ft.LBFGS)
    assert ft.LBFGS.__mro__[1] is torch.optim.Optimizer
    for private in ("_strong_wolfe", "_gather_flat_grad", "_add_grad", "_clone_param",
                    "_directional_evaluate", "_cubic_interpolate", "torch.optim.lbfgs"):
        assert private not in source


@pytest.mark.parametrize("search", [None, "strong_wolfe"])
def test_lbfgs_closure_error_leaves_the_last_iterate(search):
    """A closure that raises at a trial point: the params are back at the iterate the
    search started from (the fixed step: at the step taken), the state describes them, and
    the next step goes on from there as a fresh run of torch's from that state."""
    model = mlp()
    opt = ft.LBFGS(model.parameters(), history_size=4, line_search_fn=search)
    calls, seen = [0], []
    x, y = data()

    def closure():
        calls[0] += 1
        seen.append([p.detach().clone() for p in model.parameters()])
        if calls[0] == 7:
            raise KeyboardInterrupt
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss
    with pytest.raises(KeyboardInterrupt):
        opt.step(closure)
    now = [p.detach() for p in model.parameters()]
    if search is None:                       # the 6th step was taken, then evaluated
        assert all(torch.equal(p, q) for p, q in zip(now, seen[6]))
    else:
        assert any(all(torch.equal(p, q) for p, q in zip(now, pts)) for pts in seen[:6])
        assert not all(torch.equal(p, q) for p, q in zip(now, seen[6]))
    ref_model = mlp()
    with torch.no_grad():
        for p, q in zip(ref_model.parameters(), model.parameters()):
            p.copy_(q)
    ref = torch.optim.LBFGS(ref_model.parameters(), history_size=4, line_search_fn=search)
    ref.load_state_dict(copy.deepcopy(opt.state_dict()))     # torch's are not copies
    for o, m in ((opt, model), (ref, ref_model)):
        o.step(mse_closure(m, o))
    assert worst(model, ref_model) <= 1e-10


def test_lbfgs_refuses_bad_options_and_misuse_by_name():
    p = torch.nn.Parameter(torch.ones(3))
    for kw, match in [(dict(line_search_fn="wolfe"), "line_search_fn must be None or "),
                      (dict(max_iter=0), "max_iter must be an integer >= 1, got 0"),
                      (dict(lr=-1.0), "lr must be a finite number >= 0, got -1.0"),
                      (dict(history_size=2.5), "history_size must be an integer"),
                      (dict(tolerance_grad=math.nan), "tolerance_grad must be a finite")]:
        with pytest.raises(ValueError, match=match):
            ft.LBFGS([p], **kw)
    opt = ft.LBFGS([p])

    def squares():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    with pytest.raises(ValueError, match="one group"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))]})
    opt.param_groups[0]["max_eval"] = -3                 # an edit is checked at the step
    with pytest.raises(ValueError, match="max_eval must be an integer >= 1, got -3"):
        opt.step(squares)
    opt.param_groups[0]["max_eval"] = 25
    with pytest.raises(TypeError, match="closure must be a function"):
        opt.step(None)
    with pytest.raises(RuntimeError, match="called from inside its own step"):
        opt.step(lambda: opt.step(squares))
    p.grad = torch.ones(3)
    p.grad.data = torch.ones(1)
    with pytest.raises(ValueError, match=r"\['params'\]\[0\] has a grad of shape \(1,\)"):
        opt.step(lambda: (p * p).sum())
    assert torch.equal(p.detach(), torch.ones(3)) and opt.state_dict()["state"][0][
        "func_evals"] == 0         # nothing moved, no evaluation counted
    assert opt.step(squares).item() == 3.0 and (p * p).sum().item() < 1e-12


def test_lbfgs_copies_go_on_as_the_original():
    import pickle
    model = mlp()
    opt = ft.LBFGS(model.parameters(), history_size=3, max_iter=4,
                   line_search_fn="strong_wolfe")
    opt.step(mse_closure(model, opt))
    pairs = [copy.deepcopy((model, opt)), pickle.loads(pickle.dumps((model, opt)))]
    opt.step(mse_closure(model, opt))
    for m, o in pairs:
        o.step(mse_closure(m, o))
        assert worst(m, model) == 0.0
        assert o.state[next(iter(m.parameters()))]["n_iter"] == 8


# -- found when tried side by side with torch ----------------------------------------------
def test_changes_before_a_split_reach_the_split_params():
    """Changing a group (maximize here) and then stepping with some grads None splits the
    group; the new parts must keep the change."""
    results = []
    for cls in (torch.optim.Adam, ft.Adam):
        p, q = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
        opt = cls([p, q], lr=0.1)
        opt.param_groups[0]["maximize"] = True
        for _ in range(2):
            p.grad = torch.ones(3)                 # q never gets a grad
            opt.step()
        results.append(p.detach().clone())
    assert torch.allclose(results[0], results[1], atol=1e-15) and results[0][0] > 0


@pytest.mark.parametrize("rule", ["SGD", "Adam"])
def test_a_tensor_lr_filled_in_place_is_followed(rule):
    results = []
    for cls in (getattr(torch.optim, rule), getattr(ft, rule)):
        p = torch.zeros(3, requires_grad=True)
        opt = cls([p], lr=torch.tensor(0.1))
        for _ in range(3):
            p.grad = torch.ones(3)
            opt.step()
            opt.param_groups[0]["lr"].fill_(0.0)
        results.append(p.detach().clone())
    assert torch.allclose(results[0], results[1], atol=1e-15)


def test_rebinding_param_data_is_followed():
    a, oa, b, ob = pair("Adam", dict(lr=0.01))
    train(a, oa, steps=3)
    train(b, ob, steps=3)
    vec = torch.nn.utils.parameters_to_vector(a.parameters()).detach() * 0.5
    for model in (a, b):
        torch.nn.utils.vector_to_parameters(vec.clone(), model.parameters())   # new storage
    train(a, oa, steps=3)
    train(b, ob, steps=3)
    assert worst(a, b) <= 1e-10


def test_a_param_rebound_to_another_shape_is_an_error_not_a_crash():
    p = torch.nn.Parameter(torch.zeros(1000))
    opt = ft.Adam([p])
    p.grad = torch.ones(1000)
    opt.step()
    p.data = torch.zeros(10)
    p.grad = torch.ones(10)
    with pytest.raises(ValueError, match="changed shape or dtype"):
        opt.step()


def test_deepcopy_and_pickle_keep_working():
    import copy
    import pickle
    a, oa, b, ob = pair("Adam", dict(lr=0.01))
    train(a, oa, steps=3)
    train(b, ob, steps=3)
    b2 = copy.deepcopy(b)
    ob2 = copy.deepcopy(ob)                    # its params are a fresh copy: rebind them
    ob2 = ft.Adam(b2.parameters(), lr=0.01)
    ob2.load_state_dict(ob.state_dict())
    restored = pickle.loads(pickle.dumps(ob))
    assert restored.state_dict()["state"].keys() == ob.state_dict()["state"].keys()
    train(b, ob, steps=3)
    train(b2, ob2, steps=3)
    train(a, oa, steps=3)
    assert worst(a, b) <= 1e-10 and worst(b, b2) <= 1e-10


def test_state_is_read_only_built_once_per_step_and_shares_the_buffers():
    model = mlp()
    opt = ft.Adam(model.parameters(), lr=0.01)
    train(model, opt, steps=2)
    assert opt.state is opt.state                       # built once until the next step
    with pytest.raises(TypeError):
        opt.state[next(iter(model.parameters()))] = {}
    p = next(iter(model.parameters()))
    exp_avg = opt.state[p]["exp_avg"]
    before = exp_avg.clone()
    train(model, opt, steps=1)
    assert not torch.equal(exp_avg, before)             # a live view of the buffer
    snapshot = opt.state_dict()["state"][0]["exp_avg"]
    train(model, opt, steps=1)
    assert not torch.equal(snapshot, opt.state[p]["exp_avg"])     # state_dict copies


def test_load_post_hooks_see_the_loaded_state():
    a, oa, b, ob = pair("Adam", dict(lr=0.01))
    train(a, oa, steps=2)
    seen = []
    ob.register_load_state_dict_post_hook(lambda opt: seen.append(len(opt.state)))
    ob.load_state_dict(oa.state_dict())
    assert seen == [4]


def test_a_bad_value_in_one_group_stops_the_step_before_any_group_moves():
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = ft.Adam([{"params": [p]}, {"params": [q]}], lr=0.1)
    p.grad, q.grad = torch.ones(2), torch.ones(2)
    opt.step()
    opt.param_groups[1]["lr"] = -0.1
    before = (p.detach().clone(), q.detach().clone())
    with pytest.raises(ValueError, match=r"Adam: param_groups\[1\]: lr must be"):
        opt.step()
    assert torch.equal(p.detach(), before[0]) and torch.equal(q.detach(), before[1])


def test_capturable_in_a_group_dict_is_refused():
    with pytest.raises(ValueError, match="capturable=True is not supported"):
        ft.Adam([{"params": [torch.nn.Parameter(torch.ones(2))], "capturable": True}])


# -- the steady lane: a step taken as the last one was, while nothing it rests on changed --
def _reversed_params(opt, model):
    opt.param_groups[0]["params"].reverse()


def _rebound(opt, model):
    model[0].weight.data = model[0].weight.data.clone()


def _reloaded(opt, model):
    opt.load_state_dict(copy.deepcopy(opt.state_dict()))


def _new_group(opt, model):
    extra = torch.nn.Parameter(torch.ones(3))
    model.register_parameter("extra", extra)
    opt.add_param_group({"params": [extra], "lr": 0.02})


def _state_scaled(opt, model):
    for p in model.parameters():
        for v in opt.state[p].values():
            if v.dim():
                v.mul_(0.5)


LANE_CHANGES = {
    "new lr": lambda opt, model: opt.param_groups[0].update(lr=0.004),
    "new momentum": lambda opt, model: opt.param_groups[0].update(momentum=0.5),
    "momentum and lr": lambda opt, model: opt.param_groups[0].update(momentum=0.5, lr=0.02),
    "params reordered": _reversed_params,
    "param rebound": _rebound,
    "state reloaded": _reloaded,
    "group added": _new_group,
    "state scaled in place": _state_scaled,
}


@pytest.mark.parametrize("guarded", [True, False], ids=["torch's guard", "fastopt's checks"])
@pytest.mark.parametrize("change", list(LANE_CHANGES))
def test_a_change_after_steady_steps_is_followed_as_torch_follows_it(change, guarded,
                                                                   monkeypatch):
    """Steps 2 on run without looking at what they need not (the lane): each change of
    what they rest on, made after 3 steps to both optimizers, gives torch's results, with
    torch's tensor guard checking the grads or, where a torch lacks it, fastopt's."""
    if not guarded:
        monkeypatch.setattr("torch._C._dynamo.guards.TensorGuards", None)
    full = []
    plans = ft.TorchOptimizer._plans
    monkeypatch.setattr(ft.TorchOptimizer, "_plans", lambda opt: full.append(step) or plans(opt))
    a, oa, b, ob = pair("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.01))
    x, y = data()
    for step in range(8):
        for model, opt in ((a, oa), (b, ob)):
            if step == 3:
                LANE_CHANGES[change](opt, model)
            opt.zero_grad()
            (torch.nn.functional.mse_loss(model(x), y) + sum(
                p.sum() for name, p in model.named_parameters() if name == "extra")).backward()
            if step == 5:
                model[2].bias.grad = None           # skipped for a step, then back
            opt.step()
        assert ob._lane is not None
        assert worst(a, b) <= 1e-12, step
    # the full checks: the first step, the change (a new lr and a state changed in place
    # need none), a grad gone, and back
    assert full == [0] + [3] * (change not in ("new lr", "state scaled in place")) + [5, 6]


@pytest.mark.parametrize("guarded", [True, False], ids=["torch's guard", "fastopt's checks"])
def test_a_grad_changed_under_steady_steps_is_still_named(guarded, monkeypatch):
    """After steady steps, a grad whose memory was replaced (dtype, shape, strides) is
    refused by name before anything moves, as at the first step."""
    if not guarded:
        monkeypatch.setattr("torch._C._dynamo.guards.TensorGuards", None)
    p = torch.nn.Parameter(torch.ones(4, 3))
    opt = ft.SGD([p], lr=0.1, momentum=0.9)
    for bad, match in [(torch.ones(4, 3, dtype=torch.float32), "dtype torch.float32"),
                       (torch.ones(2, 3), r"shape \(2, 3\)"),
                       (torch.ones(3, 4).t(), "strides")]:
        for _ in range(3):
            p.grad = torch.ones(4, 3)
            opt.step()
        assert opt._lane is not None
        before, buf = p.detach().clone(), opt.state[p]["momentum_buffer"].clone()
        p.grad = torch.ones(4, 3)
        p.grad.data = bad
        with pytest.raises(ValueError, match=match):
            opt.step()
        assert torch.equal(p, before) and torch.equal(opt.state[p]["momentum_buffer"], buf)


# -- 16-bit params ---------------------------------------------------------------------------
SIXTEEN_BIT = {"bfloat16": (torch.bfloat16, {}),
               "bfloat16, stochastic": (torch.bfloat16, dict(stochastic_rounding=True, seed=3)),
               "bfloat16, master": (torch.bfloat16, dict(master_weights=True)),
               "bfloat16, bfloat16 state": (torch.bfloat16, dict(state_dtype="bfloat16")),
               "float16, master": (torch.float16, dict(master_weights=True)),
               "float32, int8 state": (torch.float32, dict(state_dtype="int8",
                                                           min_8bit_size=0)),
               "bfloat16, int8 state, stochastic": (torch.bfloat16,
                                                    dict(state_dtype="int8", min_8bit_size=100,
                                                         stochastic_rounding=True, seed=3))}


@pytest.mark.parametrize("mode", list(SIXTEEN_BIT))
def test_16bit_params_step_as_the_core_api_and_checkpoint_exactly(mode):
    """A bfloat16 or float16 model trained by fastopt.torch: bit for bit the core API's
    NumPy reference on the same params and grads; its state_dict round-trips through
    torch.save exactly (torch's load would round float32 state to the params' dtype) and
    loads into torch.optim.AdamW."""
    pytest.importorskip("ml_dtypes")
    from fastopt.backends import numpy_of
    dtype, options = SIXTEEN_BIT[mode]

    def model():
        return mlp().to(dtype)
    x, y = data()
    ours, mirror = model(), model()
    opt = ft.AdamW(ours.parameters(), lr=1e-2, **options)
    core = fastopt.AdamW([numpy_of(p.detach()) for p in mirror.parameters()], lr=1e-2,
                         backend="numpy", **options)
    for _ in range(10):
        for model_, step in ((ours, opt.step), (mirror, None)):
            for p in model_.parameters():
                p.grad = None
            torch.nn.functional.mse_loss(model_(x.to(dtype)).double(), y).backward()
            if step is not None:
                step()
        core.step([numpy_of(p.grad) for p in mirror.parameters()])
    for a, b in zip(ours.parameters(), mirror.parameters()):
        assert torch.equal(a.view(torch.int16), b.view(torch.int16))
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    again = ft.AdamW(model().parameters(), lr=1e-2, **options)
    again.load_state_dict(torch.load(buffer))
    saved, loaded = opt.state_dict()["state"], again.state_dict()["state"]
    assert all(torch.equal(saved[i][k], loaded[i][k]) for i in saved for k in saved[i])
    if options.get("state_dtype") != "int8":    # (torch's AdamW has no 8-bit state)
        torch.optim.AdamW(model().parameters(), lr=1e-2).load_state_dict(opt.state_dict())


def grad_scaler_runs(ours, theirs, unscale=False, max_norm=None, steps=6):
    """Two nets trained under torch.amp.GradScaler, one by ``ours``, one by ``theirs``
    (each called with the net's parameters); an inf grad at step 2. With ``unscale`` the
    loop calls scaler.unscale_ and clips (torch's recipe) for ``theirs``; ``ours`` clips
    by its max_grad_norm. Returns the nets, the optimizers and the scalers."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 6), torch.randn(16, 3)
    nets = [torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [ours(nets[0].parameters()), theirs(nets[1].parameters())]
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0 ** 12) for _ in nets]
    for step in range(steps):
        for k, (net, opt, scaler) in enumerate(zip(nets, opts, scalers)):
            opt.zero_grad()
            scaler.scale(torch.nn.functional.mse_loss(net(x), y)).backward()
            if step == 2:
                net.weight.grad[0, 0] = float("inf")
            if unscale and k == 1:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
            before = net.weight.detach().clone()
            scaler.step(opt)
            scaler.update()
            assert torch.equal(before, net.weight) == (step == 2)
    return nets, opts, scalers


@pytest.mark.parametrize("fused", [False, True])
def test_grad_scaler_drives_it_as_torch_optim(fused):
    """torch.amp.GradScaler with fastopt.torch (its fused protocol: the grads read times
    1/grad_scale, the step skipped on an inf, the grads never unscaled in place) as with
    torch.optim.AdamW, fused or not: the same scale and the same params."""
    nets, opts, scalers = grad_scaler_runs(lambda ps: ft.AdamW(ps, lr=0.01),
                                           lambda ps: torch.optim.AdamW(ps, lr=0.01,
                                                                        fused=fused))
    assert opts[0].state[nets[0].weight]["step"] == opts[1].state[nets[1].weight]["step"] == 5
    assert scalers[0].get_scale() == scalers[1].get_scale() == 2.0 ** 11
    for a, b in zip(*(net.parameters() for net in nets)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_grad_scaler_with_max_grad_norm_is_torchs_unscale_and_clip():
    nets, opts, _ = grad_scaler_runs(lambda ps: ft.AdamW(ps, lr=0.01, max_grad_norm=0.05),
                                     lambda ps: torch.optim.AdamW(ps, lr=0.01),
                                     unscale=True, max_norm=0.05)
    assert opts[0].grad_norm > 0.05
    for a, b in zip(*(net.parameters() for net in nets)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)

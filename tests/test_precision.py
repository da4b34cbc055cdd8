"""16-bit params (bfloat16, float16): the conversions, the stochastic rounding, and every
rule's step on them, the numba kernels against the NumPy reference bit for bit and the
reference against the float32 step it rounds."""
import copy
import io
import pickle

import numpy as np
import pytest
from cases import CASES, STORED_NARROW, case_id

import fastopt
from fastopt.kernels import RULES
from fastopt.kernels import _blockwise as B
from fastopt.kernels import _precision as P

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
NUMBA = "numba" in fastopt.available_backends()
needs_numba = pytest.mark.skipif(not NUMBA, reason="needs numba")
KINDS = {"bfloat16": (P.BFLOAT16, BF16), "float16": (P.FLOAT16, np.dtype(np.float16))}


def bits(a):
    return np.asarray(a).view(np.uint16)


# -- the conversions ----------------------------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("name", list(KINDS))
def test_widening_every_16bit_pattern_gives_numpys_float32(name):
    kind, dtype = KINDS[name]
    h = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16)
    f = np.zeros(h.size, np.float32)
    P.widen_any(h, f.view(np.uint32), kind)
    np.testing.assert_array_equal(f.view(np.uint32), h.view(dtype).astype(np.float32)
                                  .view(np.uint32))


def _hard_float32_patterns(dtype):
    """Every 16-bit value's float32 midpoints to its neighbour and the patterns either
    side, both signs; the limits; and random patterns."""
    top = 0x7C00 if dtype == np.float16 else 0x7F80
    h = np.arange(top, dtype=np.uint16)
    lo, hi = h.view(dtype).astype(np.float64), (h + 1).view(dtype).astype(np.float64)
    mid = ((lo + hi) / 2).astype(np.float32).view(np.uint32).astype(np.int64)
    edges = np.array([0x7F800000, 0x7F800001, 0x7FC00000, 0x7FFFFFFF, 0x477FF000, 0x477FEFFF,
                      0x47800000, 0x38800000, 0x387FFFFF, 0x33000000, 0x33000001, 0x32FFFFFF,
                      0x7F7FFFFF, 0x00000001, 0])
    rng = np.random.default_rng(0)
    u = np.concatenate([mid - 1, mid, mid + 1, edges, rng.integers(0, 2 ** 31, 10 ** 6)])
    u = u[(u >= 0) & (u < 2 ** 31)].astype(np.uint32)
    return np.concatenate([u, u | np.uint32(0x80000000)])


@needs_numba
@pytest.mark.parametrize("name", list(KINDS))
def test_rounding_to_nearest_gives_numpys_and_ml_dtypes_bits(name):
    kind, dtype = KINDS[name]
    u = _hard_float32_patterns(dtype)
    out = np.zeros(u.size, np.uint16)
    P.narrow_any(u, out, kind, False, np.uint32(0), 0)
    with np.errstate(all="ignore"):
        expected = bits(u.view(np.float32).astype(dtype))
    np.testing.assert_array_equal(out, expected)


def test_stochastic_rounding_is_unbiased_and_reproducible():
    """x a quarter of the way between two bfloat16 neighbours rounds up a quarter of the
    time (within 5 sigma over 4e5 draws); the same (seed, step, param) gives the same bits,
    another seed others."""
    x = np.full(400_000, 1.0 + 2.0 ** -9, np.float32)       # 1 + ulp/4
    up = P.narrow_stochastic(x, 1, 7, 0).astype(np.float64) > 1.0
    sigma = np.sqrt(0.25 * 0.75 / x.size)
    assert abs(up.mean() - 0.25) < 5 * sigma
    again, other = P.narrow_stochastic(x, 1, 7, 0), P.narrow_stochastic(x, 2, 7, 0)
    assert np.array_equal(bits(again), bits(P.narrow_stochastic(x, 1, 7, 0)))
    assert not np.array_equal(bits(again), bits(other))
    y = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    assert bits(P.narrow_stochastic(y, 3, 1, 0)).tolist() == [0x7FC0, 0xFFC0, 0x7F80, 0xFF80,
                                                              0, 0x8000]


@needs_numba
def test_stochastic_rounding_in_numba_gives_the_references_bits():
    x = np.random.default_rng(1).standard_normal(50_000).astype(np.float32)
    x[::97] = np.nan
    out = np.zeros(x.size, np.uint16)
    base = np.uint32(P.stream_start(np.uint64(9), np.uint64(4), np.uint64(2)))
    assert base == P.stream_base(9, 4, 2)
    P.narrow_any(x.view(np.uint32), out, P.BFLOAT16, True, base, 0)
    np.testing.assert_array_equal(out, bits(P.narrow_stochastic(x, 9, 4, 2)))


# -- every rule on 16-bit params -------------------------------------------------------------------
MODES = {"bfloat16": (BF16, {}), "bfloat16, master": (BF16, dict(master_weights=True)),
         "bfloat16, stochastic": (BF16, dict(stochastic_rounding=True, seed=11)),
         "float16": (np.dtype(np.float16), {}),
         "float16, master": (np.dtype(np.float16), dict(master_weights=True)),
         "float32, bfloat16 state": (np.dtype(np.float32), dict(state_dtype="bfloat16")),
         "bfloat16, bfloat16 state, stochastic": (BF16, dict(state_dtype="bfloat16",
                                                             stochastic_rounding=True, seed=11)),
         "float32, int8 state": (np.dtype(np.float32), dict(state_dtype="int8",
                                                            min_8bit_size=0)),
         "bfloat16, int8 state, stochastic": (BF16, dict(state_dtype="int8", min_8bit_size=0,
                                                         stochastic_rounding=True, seed=11)),
         "float16, int8 state, master": (np.dtype(np.float16), dict(state_dtype="int8",
                                                                    min_8bit_size=300,
                                                                    master_weights=True))}
SHAPES = [(300,), (7, 11), (1,)]


def _run(rule, hp, dtype, options, backend, steps=6, groups=False):
    """Params of ``dtype`` (and one float32 param) stepped ``steps`` times; (params, opt)."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES] + \
        [rng.standard_normal(5).astype(np.float32)]
    given = [{"params": params[:2]}, {"params": params[2:], "lr": 0.5 * hp.get("lr", 1e-3)}] \
        if groups else params
    opt = getattr(fastopt, rule)(given, backend=backend, **hp, **options)
    for _ in range(steps):
        opt.step([(rng.standard_normal(p.shape) * 0.1).astype(p.dtype) for p in params])
    return params, opt


# every case (each rule's variants) in bfloat16; each other mode on a third of the rules'
# first cases, each rule in two of them (every loop is compiled on its own: this keeps a
# cold run within a minute; the tiled loop around the rules' bodies is one for all)
FIRST_CASES = list({rule: (rule, hp) for rule, hp in reversed(CASES)
                    if rule in STORED_NARROW}.values())
MODE_CASES = [("bfloat16", rule, hp) for rule, hp in CASES if rule in STORED_NARROW] + [
    (mode, rule, hp) for m, mode in enumerate(list(MODES)[1:])
    for r, (rule, hp) in enumerate(FIRST_CASES) if (r + m) % 3 == 0]


@needs_numba
@pytest.mark.parametrize("mode,rule,hp", MODE_CASES,
                         ids=[f"{m}-{case_id((r, hp))}" for m, r, hp in MODE_CASES])
def test_numba_steps_16bit_params_as_the_reference_bit_for_bit(mode, rule, hp):
    dtype, options = MODES[mode]
    ours, opt = _run(rule, hp, dtype, options, "numba", groups=True)
    ref, ref_opt = _run(rule, hp, dtype, options, "numpy", groups=True)
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    mine, theirs = opt.state_dict(), ref_opt.state_dict()
    assert mine.keys() == theirs.keys()
    for key in mine:
        np.testing.assert_array_equal(mine[key], theirs[key], err_msg=key)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("rule", STORED_NARROW)
def test_the_reference_is_the_float32_step_rounded(rule, mode):
    """One step on 16-bit params is the float32 step from the widened params and grads
    (float32 state), rounded as the mode says; a master copy is that float32 step itself."""
    dtype, options = MODES[mode]
    rng = np.random.default_rng(3)
    p16 = rng.standard_normal(500).astype(dtype)
    g16 = rng.standard_normal(500).astype(dtype)
    p32 = p16.astype(np.float32)
    ours = getattr(fastopt, rule)(p16, backend="numpy", **options)
    plain = getattr(fastopt, rule)(p32, backend="numpy")
    for _ in range(3):
        ours.step(g16)
        plain.step(g16.astype(np.float32))
        if options.get("stochastic_rounding") or options.get("state_dtype"):
            break               # (the float32 run's state is not rounded: one step only)
        if not options.get("master_weights"):   # without a master copy p32 is rounded too
            p32[...] = p16.astype(np.float32)
    if options.get("stochastic_rounding"):
        expected = P.narrow_stochastic(p32, 11, 1, 0)
    else:
        expected = p32.astype(dtype)
    np.testing.assert_array_equal(bits(p16), bits(expected))
    if options.get("master_weights"):
        np.testing.assert_array_equal(ours.state[0]["master"], p32)
    if options.get("state_dtype") == "bfloat16":
        for name, value in plain.state[0].items():
            np.testing.assert_array_equal(bits(ours.state[0][name]), bits(value.astype(BF16)))
    if options.get("state_dtype") == "int8":        # the float32 state, quantized
        for name, value in plain.state[0].items():
            codes, absmax = B.quantize(value, name not in RULES[rule].nonnegative_state)
            np.testing.assert_array_equal(ours.state[0][name], codes)
            np.testing.assert_array_equal(ours.state[0][name + "_absmax"], absmax)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=["float32", "bfloat16"])
def test_int8_state_in_the_parallel_loop_gives_the_references_bits(dtype):
    """A bucket big enough for the threads, its params' sizes no multiple of the block: each
    thread's part starts and ends on a block of its param, whatever the split."""
    rng = np.random.default_rng(5)
    sizes = [100_003, 70_001, 257, 130_000]
    runs = []
    for backend in ("numba", "numpy"):
        params = [rng.standard_normal(n).astype(dtype) for n in sizes]
        opt = fastopt.AdamW(params, lr=1e-2, backend=backend, state_dtype="int8")
        for _ in range(3):
            opt.step([(rng.standard_normal(n) * 0.1).astype(dtype) for n in sizes])
        runs.append((params, opt.state))
        rng = np.random.default_rng(5)
    (ours, our_state), (ref, ref_state) = runs
    for a, b, s, t in zip(ours, ref, our_state, ref_state):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
        for name in s:
            np.testing.assert_array_equal(s[name], t[name], err_msg=name)


@pytest.mark.parametrize("backend", ["numpy"] + ["numba"] * NUMBA)
def test_params_under_min_8bit_size_keep_float32_state(backend):
    """As bitsandbytes decides: a group's params of min_8bit_size elements or more keep
    8-bit state, the others float32 state, each as if alone (the float32 step)."""
    rng = np.random.default_rng(4)
    big, small = rng.standard_normal(5000).astype(np.float32), np.ones(10, np.float32)
    alone = small.copy()
    opt = fastopt.AdamW([big, small], lr=1e-2, backend=backend, state_dtype="int8")
    plain = fastopt.AdamW(alone, lr=1e-2, backend=backend)
    for _ in range(3):
        g = rng.standard_normal(10).astype(np.float32)
        opt.step([rng.standard_normal(5000).astype(np.float32), g])
        plain.step(g)
    np.testing.assert_array_equal(small, alone)
    assert {k: v.dtype for k, v in opt.state[1].items()} == {"m": np.float32, "v": np.float32}
    assert opt.state[0]["m"].dtype == np.uint8 and opt.state[0]["m_absmax"].shape == (20,)
    again = fastopt.AdamW([big.copy(), small.copy()], lr=1e-2, backend=backend,
                          state_dtype="int8")
    again.load_state_dict(opt.state_dict())
    assert again.state_dict().keys() == opt.state_dict().keys()


# -- checkpoints, copies, errors -----------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy"] + ["numba"] * NUMBA)
@pytest.mark.parametrize("mode", list(MODES))
def test_16bit_runs_resume_from_npz_copies_and_pickles_bit_for_bit(mode, backend):
    dtype, options = MODES[mode]
    straight, _ = _run("Adam", dict(lr=1e-2), dtype, options, backend, steps=6)
    first, opt = _run("Adam", dict(lr=1e-2), dtype, options, backend, steps=3)
    buffer = io.BytesIO()
    np.savez(buffer, **opt.state_dict())
    buffer.seek(0)
    resumed = [p.copy() for p in first]
    loaded = fastopt.Adam(resumed, lr=1e-2, backend=backend, **options)
    loaded.load_state_dict(dict(np.load(buffer)))
    twins = [loaded, copy.deepcopy(loaded), pickle.loads(pickle.dumps(loaded))]
    rng = np.random.default_rng(0)
    for s in SHAPES:                     # the draws _run made before its steps
        rng.standard_normal(s)
    rng.standard_normal(5)
    for k in range(6):
        grads = [(rng.standard_normal(p.shape) * 0.1).astype(p.dtype) for p in first]
        if k >= 3:
            for twin in twins:
                twin.step(grads)
    for twin in twins:
        for a, b in zip(straight, twin.params):
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def test_a_state_dict_without_master_copies_loads_them_from_the_params():
    params, opt = _run("SGD", dict(lr=0.1, momentum=0.9), BF16, {}, "numpy", steps=2)
    keeper = fastopt.SGD([p.copy() for p in params], lr=0.1, momentum=0.9, backend="numpy",
                         master_weights=True)
    keeper.load_state_dict(opt.state_dict())
    for p, st in zip(params[:3], keeper.state[:3]):
        np.testing.assert_array_equal(st["master"], p.astype(np.float32))
    assert "master" not in keeper.state[3]           # the float32 param needs none


@pytest.mark.parametrize("params,options,match", [
    ([np.zeros(3, np.float32)], dict(master_weights=True), "master_weights=True keeps"),
    ([np.zeros(3, np.float16)], dict(stochastic_rounding=True), "have no bfloat16 one"),
    (None, dict(stochastic_rounding=True, master_weights=True), "writes them from float32"),
    (None, dict(seed=-1), r"seed must be an integer in \[0, 2\*\*64\)"),
    (None, dict(master_weights="yes"), "master_weights must be"),
    (None, dict(state_dtype="int4"), "state_dtype must be None .* 'bfloat16' or 'int8'"),
    ([np.zeros(3)], dict(state_dtype="int8"), "these include float64 ones"),
    (None, dict(state_dtype="int8", min_8bit_size=-1), "min_8bit_size must be an integer"),
    ([np.zeros(3)], dict(state_dtype="bfloat16"), "these include float64 ones"),
])
def test_precision_options_that_do_not_apply_are_refused(params, options, match):
    with pytest.raises((TypeError, ValueError), match=match):
        fastopt.Adam(params or [np.zeros(3, BF16)], backend="numpy", **options)


def test_a_grad_of_another_dtype_than_its_16bit_param_is_named():
    opt = fastopt.Adam([np.zeros(3, BF16)], backend="numpy")
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype float32, its param has bfloat16"):
        opt.step([np.zeros(3, np.float32)])


def test_stochastic_rounding_keeps_updates_smaller_than_half_a_bfloat16_step():
    """SGD adds -lr*g = 2**-12 a step to params at 1.0, where a bfloat16 step is 2**-7:
    rounded to nearest the params never move; rounded stochastically they drift by the
    sum of the updates on average (within 5 sigma, over 4096 params and 64 steps)."""
    n, steps = 4096, 64
    nearest, stochastic = np.ones(n, BF16), np.ones(n, BF16)
    grad = np.full(n, -2.0 ** -12, BF16)
    for params, options in ((nearest, {}), (stochastic, dict(stochastic_rounding=True))):
        opt = fastopt.SGD(params, lr=1.0, backend="numpy", **options)
        for _ in range(steps):
            opt.step(grad)
    assert np.all(nearest.astype(np.float32) == 1.0)
    moved = stochastic.astype(np.float64) - 1.0
    expected = steps * 2.0 ** -12                     # 2**-6: two bfloat16 steps at 1.0
    spread = 2.0 ** -7 * np.sqrt(steps) / np.sqrt(n)  # a bound on the mean's deviation
    assert abs(moved.mean() - expected) < 5 * spread


@pytest.mark.parametrize("options", [dict(state_dtype="bfloat16"),
                                     dict(state_dtype="int8", min_8bit_size=0), None],
                         ids=["bfloat16 state", "int8 state", "float16 params"])
@pytest.mark.parametrize("rule", [name for name in RULES if name not in STORED_NARROW])
def test_rules_reading_whole_params_refuse_narrow_storage_by_name(rule, options):
    """LAMB, LARS, Adafactor and Muon read whole params: with 16-bit params or narrower state
    they refuse at construction, by name (not yet built)."""
    p = np.ones((50, 100), np.float16 if options is None else np.float32)
    with pytest.raises(NotImplementedError, match=f"{rule} reads whole params"):
        getattr(fastopt, rule)(p, **(options or {}))

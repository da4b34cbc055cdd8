"""Slow, independent scalar-loop versions of every update rule, written straight from the
formulas (PyTorch semantics) with Python floats, one element at a time. They share no code
with fastopt: they are what the NumPy reference is checked against."""
from __future__ import annotations

import math

import numpy as np


class ScalarRule:
    """Per-element state in dicts of Python lists; ``step(p, g)`` updates list ``p``."""

    def __init__(self, rule: str, n: int, ndim: int = 1, shape: tuple = (), **hp):
        self.rule, self.hp, self.t, self.n, self.ndim = rule, hp, 0, n, ndim
        self.shape = shape or (n,) * ndim
        self.s = {}
        self.mu_product = 1.0
        self.eta, self.mu = None, 1.0        # ASGD's
        self.weight_sum, self.lr_max = 0.0, -1.0     # schedule-free AdamW's
        if rule == "Adagrad":
            self.s["sum"] = [hp.get("initial_accumulator_value", 0.0)] * n

    def buf(self, name):
        return self.s.setdefault(name, [0.0] * self.n)

    def step(self, p: list, g_in: list, lr: float) -> None:
        self.t += 1
        t, hp = self.t, self.hp
        if self.rule == "Adafactor":            # factored: whole rows and columns
            return self._adafactor(p, g_in, t, lr)
        if self.rule == "Muon":                 # matrix products of the whole param
            return self._muon(p, g_in, lr)
        wd = hp.get("weight_decay", 1e-2 if self.rule in ("AdamW", "AdEMAMix") else 0.0)
        if self.rule == "AdamWScheduleFree":       # its decay comes after normalising g
            self._sf_step(t, lr)
            wd = 0.0
        decoupled = self.rule in ("AdamW", "Lion", "AdEMAMix", "Lamb") or \
            hp.get("decoupled_weight_decay", False)
        if self.rule == "LARS":         # its decay is the trust ratio's
            wd = 0.0
        if self.rule in ("Lamb", "LARS"):   # norms of the whole param first
            self.trust = getattr(self, "_trust_" + self.rule.lower())(p, g_in, lr, wd)
        for i in range(self.n):
            g = -g_in[i] if hp.get("maximize", False) else g_in[i]
            if decoupled:                                  # decoupled decay
                p[i] = p[i] * (1 - lr * wd)
            elif wd != 0:
                g = g + wd * p[i]
            p[i] = getattr(self, "_" + self.rule.lower())(i, p[i], g, t, lr)
        if self.rule == "ASGD":
            lambd, alpha = hp.get("lambd", 1e-4), hp.get("alpha", 0.75)
            self.eta = lr / (1 + lambd * lr * t) ** alpha
            self.mu = 1 / max(1, t - hp.get("t0", 1e6))
        if self.rule == "Nadam" and hp.get("momentum_decay", 4e-3) is not None:
            b1, psi = hp.get("betas", (0.9, 0.999))[0], hp.get("momentum_decay", 4e-3)
            self.mu_product *= b1 * (1 - 0.5 * 0.96 ** (t * psi))

    def _sgd(self, i, p, g, t, lr):
        mom, damp = self.hp.get("momentum", 0.0), self.hp.get("dampening", 0.0)
        if mom == 0:
            return p - lr * g
        buf = self.buf("buf")
        buf[i] = g if t == 1 else mom * buf[i] + (1 - damp) * g
        d = g + mom * buf[i] if self.hp.get("nesterov", False) else buf[i]
        return p - lr * d

    def _adagrad(self, i, p, g, t, lr):
        clr = lr / (1 + (t - 1) * self.hp.get("lr_decay", 0.0))
        s = self.s["sum"]
        s[i] += g * g
        return p - clr * g / (math.sqrt(s[i]) + self.hp.get("eps", 1e-10))

    def _rmsprop(self, i, p, g, t, lr):
        alpha, eps = self.hp.get("alpha", 0.99), self.hp.get("eps", 1e-8)
        mom = self.hp.get("momentum", 0.0)
        sq = self.buf("sq")
        sq[i] = alpha * sq[i] + (1 - alpha) * g * g
        if self.hp.get("centered", False):
            ga = self.buf("ga")
            ga[i] = alpha * ga[i] + (1 - alpha) * g
            avg = math.sqrt(sq[i] - ga[i] ** 2) + eps
        else:
            avg = math.sqrt(sq[i]) + eps
        if mom > 0:
            buf = self.buf("buf")
            buf[i] = mom * buf[i] + g / avg
            return p - lr * buf[i]
        return p - lr * g / avg

    def _adadelta(self, i, p, g, t, lr):
        rho, eps = self.hp.get("rho", 0.9), self.hp.get("eps", 1e-6)
        sq, acc = self.buf("sq"), self.buf("acc")
        sq[i] = rho * sq[i] + (1 - rho) * g * g
        d = math.sqrt(acc[i] + eps) / math.sqrt(sq[i] + eps) * g
        acc[i] = rho * acc[i] + (1 - rho) * d * d
        return p - lr * d

    def _adam(self, i, p, g, t, lr):
        b1, b2 = self.hp.get("betas", (0.9, 0.999))
        eps = self.hp.get("eps", 1e-8)
        m, v = self.buf("m"), self.buf("v")
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        vv = v[i]
        if self.hp.get("amsgrad", False):
            vmax = self.buf("vmax")
            vmax[i] = max(vmax[i], v[i])
            vv = vmax[i]
        return p - lr / (1 - b1 ** t) * m[i] / (math.sqrt(vv) / math.sqrt(1 - b2 ** t) + eps)

    _adamw = _adam

    def _adamax(self, i, p, g, t, lr):
        b1, b2 = self.hp.get("betas", (0.9, 0.999))
        m, u = self.buf("m"), self.buf("u")
        m[i] = b1 * m[i] + (1 - b1) * g
        u[i] = max(b2 * u[i], abs(g) + self.hp.get("eps", 1e-8))
        return p - lr / (1 - b1 ** t) * m[i] / u[i]

    def _nadam(self, i, p, g, t, lr):
        b1, b2 = self.hp.get("betas", (0.9, 0.999))
        eps, psi = self.hp.get("eps", 1e-8), self.hp.get("momentum_decay", 4e-3)
        m, v = self.buf("m"), self.buf("v")
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        den = math.sqrt(v[i] / (1 - b2 ** t)) + eps
        if psi is None:   # textbook: look-ahead momentum with bias corrections
            v_hat = b1 * m[i] / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
            return p - lr * v_hat / den
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod = self.mu_product * mu         # product of mu_1..mu_t
        return p - lr * (1 - mu) / (1 - prod) * g / den - lr * mu_next / (1 - prod * mu_next) * m[i] / den

    def _radam(self, i, p, g, t, lr):
        b1, b2 = self.hp.get("betas", (0.9, 0.999))
        m, v = self.buf("m"), self.buf("v")
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        m_hat = m[i] / (1 - b1 ** t)
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho <= 5:
            return p - lr * m_hat
        r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        v_hat = math.sqrt(v[i] / (1 - b2 ** t))
        return p - lr * m_hat * r / (v_hat + self.hp.get("eps", 1e-8) / math.sqrt(1 - b2 ** t))

    def _rprop(self, i, p, g, t, lr):
        minus, plus = self.hp.get("etas", (0.5, 1.2))
        low, high = self.hp.get("step_sizes", (1e-6, 50.0))
        prev, size = self.buf("prev"), self.buf("size")
        if t == 1:
            size[i] = lr
        product = g * prev[i]
        factor = plus if product > 0 else minus if product < 0 else 1.0
        size[i] = min(max(size[i] * factor, low), high)
        if product < 0:
            g = 0.0
        prev[i] = g
        return p - (1.0 if g > 0 else -1.0 if g < 0 else 0.0) * size[i]

    def _asgd(self, i, p, g, t, lr):
        eta = lr if self.eta is None else self.eta
        p = p * (1 - self.hp.get("lambd", 1e-4) * eta) - eta * g
        ax = self.buf("ax")
        ax[i] = p if self.mu == 1 else ax[i] + (p - ax[i]) * self.mu
        return p

    def _ademamix(self, i, p, g, t, lr):
        b1, b2, b3 = self.hp.get("betas", (0.9, 0.999, 0.9999))
        alpha = self.hp.get("alpha", 5.0)
        t_alpha, t_beta3 = self.hp.get("t_alpha"), self.hp.get("t_beta3")
        if t_alpha:
            alpha = min(t * alpha / t_alpha, alpha)
        if t_beta3:
            s = t / t_beta3
            b3 = min(math.exp(math.log(b1) * math.log(b3)
                              / ((1 - s) * math.log(b3) + s * math.log(b1))), b3)
        m1, m2, nu = self.buf("m1"), self.buf("m2"), self.buf("nu")
        m1[i] = b1 * m1[i] + (1 - b1) * g
        m2[i] = b3 * m2[i] + (1 - b3) * g
        nu[i] = b2 * nu[i] + (1 - b2) * g * g
        den = math.sqrt(nu[i]) / math.sqrt(1 - b2 ** t) + self.hp.get("eps", 1e-8)
        return p - lr * (m1[i] / (1 - b1 ** t) + alpha * m2[i]) / den

    def _sf_step(self, t, lr):
        """Schedule-free AdamW's per-step numbers: lr_t and the average's weight c."""
        hp, warmup = self.hp, self.hp.get("warmup_steps", 0)
        self.lr_t = lr * min(1.0, t / warmup) if warmup else lr
        self.lr_max = max(self.lr_t, self.lr_max)
        weight = t ** hp.get("r", 0.0) * self.lr_max ** hp.get("weight_lr_power", 2.0)
        self.weight_sum += weight
        self.c = weight / self.weight_sum

    def _adamwschedulefree(self, i, p, g, t, lr):
        b1, b2 = self.hp.get("betas", (0.9, 0.999))
        z, v = self.buf("z"), self.buf("v")
        if t == 1:
            z[i] = p
        v[i] = b2 * v[i] + (1 - b2) * g * g
        d = g / (math.sqrt(v[i] / (1 - b2 ** t)) + self.hp.get("eps", 1e-8))
        d += self.hp.get("weight_decay", 0.0) * p
        y = p + self.c * (z[i] - p) + self.lr_t * (b1 * (1 - self.c) - 1) * d
        z[i] -= self.lr_t * d
        return y

    def _trust_lamb(self, p, g_in, lr, wd):
        b1, b2 = self.hp.get("betas", (0.9, 0.999))
        eps, sign = self.hp.get("eps", 1e-6), -1.0 if self.hp.get("maximize") else 1.0
        m, v = self.buf("m"), self.buf("v")
        weights = [x * (1 - lr * wd) for x in p]
        updates = [(b1 * m[i] + (1 - b1) * sign * g) /
                   (math.sqrt(b2 * v[i] + (1 - b2) * g * g) + eps) for i, g in enumerate(g_in)]
        weight = min(math.sqrt(sum(x * x for x in weights)), self.hp.get("clamp", 10.0))
        update = math.sqrt(sum(u * u for u in updates))
        return 1.0 if weight == 0 or update == 0 else weight / (update + eps)

    def _lamb(self, i, p, g, t, lr):
        b1, b2 = self.hp.get("betas", (0.9, 0.999))
        m, v = self.buf("m"), self.buf("v")
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        u = m[i] / (math.sqrt(v[i]) + self.hp.get("eps", 1e-6))
        return p - lr / (1 - b1 ** t) * self.trust * u

    def _trust_lars(self, p, g_in, lr, wd):
        if self.ndim < 2:
            return 1.0
        wd, tc = self.hp.get("weight_decay", 0.0), self.hp.get("trust_coefficient", 1e-3)
        weight = math.sqrt(sum(x * x for x in p))
        grad = math.sqrt(sum(g * g for g in g_in))
        return tc * weight / (grad + wd * weight) if weight > 0 and grad + wd * weight > 0 \
            else 1.0

    def _lars(self, i, p, g, t, lr):
        mom, damp = self.hp.get("momentum", 0.9), self.hp.get("dampening", 0.0)
        if self.ndim > 1:
            g = (g + self.hp.get("weight_decay", 0.0) * p) * self.trust
        if mom == 0:
            return p - lr * g
        buf = self.buf("buf")
        buf[i] = mom * buf[i] + (1 - damp) * g
        return p - lr * (g + mom * buf[i] if self.hp.get("nesterov") else buf[i])

    def _adafactor(self, p, g_in, t, lr):
        """torch.optim.Adafactor: rows and columns of the last two dims, per slab."""
        hp = self.hp
        eps1, eps2 = hp.get("eps", (None, 1e-3))
        eps1 = 2.0 ** -52 if eps1 is None else eps1
        w, rho = t ** hp.get("beta2_decay", -0.8), min(lr, 1 / math.sqrt(t))
        g = [-x if hp.get("maximize", False) else x for x in g_in]
        alpha = max(eps2, math.sqrt(sum(x * x for x in p)) / math.sqrt(self.n)) * rho
        p[:] = [x * (1 - lr * hp.get("weight_decay", 0.0)) for x in p]
        lerp = lambda a, b: a + w * (b - a)  # noqa: E731
        if self.ndim < 2:
            var = self.buf("variance")
            var[:] = [lerp(v, x * x) for v, x in zip(var, g)]
            est = list(var)
        else:
            m, n = self.shape[-2:]
            slabs = self.n // (m * n) if m * n else 0
            rows, cols = self.s.setdefault("row_var", [0.0] * (slabs * m)), \
                self.s.setdefault("col_var", [0.0] * (slabs * n))
            est = [0.0] * self.n
            for b in range(slabs):
                at = lambda i, j: b * m * n + i * n + j  # noqa: E731
                for i in range(m):
                    rows[b * m + i] = lerp(rows[b * m + i],
                                           sum(g[at(i, j)] ** 2 for j in range(n)) / n)
                for j in range(n):
                    cols[b * n + j] = lerp(cols[b * n + j],
                                           sum(g[at(i, j)] ** 2 for i in range(m)) / m)
                mean = max(sum(rows[b * m:(b + 1) * m]) / m, eps1)
                for i in range(m):
                    for j in range(n):
                        est[at(i, j)] = rows[b * m + i] * cols[b * n + j] / mean
        u = [x / math.sqrt(max(v, eps1 * eps1)) for x, v in zip(g, est)]
        denom = max(1.0, math.sqrt(sum(x * x for x in u)) / (math.sqrt(self.n) * hp.get("d", 1.0)))
        p[:] = [x - alpha / denom * y for x, y in zip(p, u)]

    def _muon(self, p, g, lr):
        """torch.optim.Muon's formula on lists of lists (its iteration in float64)."""
        hp = self.hp
        mom, (a, b, c) = hp.get("momentum", 0.95), hp.get("ns_coefficients",
                                                          (3.4445, -4.7750, 2.0315))
        m, n = self.shape
        buf = self.buf("buf")
        buf[:] = [x + (1 - mom) * (y - x) for x, y in zip(buf, g)]
        u = [y + mom * (x - y) for x, y in zip(buf, g)] if hp.get("nesterov", True) else buf
        x = [[u[i * n + j] for j in range(n)] for i in range(m)]
        transpose = lambda x: [list(col) for col in zip(*x)]  # noqa: E731
        product = lambda x, y: [[sum(r * s for r, s in zip(row, col)) for col in zip(*y)]
                                for row in x]  # noqa: E731
        x = transpose(x) if m > n else x
        norm = max(math.sqrt(sum(v * v for row in x for v in row)), hp.get("eps", 1e-7))
        x = [[v / norm for v in row] for row in x]
        for _ in range(hp.get("ns_steps", 5)):
            gram = product(x, transpose(x))
            poly = [[b * g1 + c * g2 for g1, g2 in zip(r1, r2)]
                    for r1, r2 in zip(gram, product(gram, gram))]
            x = [[a * v + w for v, w in zip(r1, r2)] for r1, r2 in zip(x, product(poly, x))]
        x = transpose(x) if m > n else x
        ratio = 0.2 * math.sqrt(max(m, n)) if hp.get("adjust_lr_fn") == "match_rms_adamw" \
            else math.sqrt(max(1, m / n))
        keep = 1 - lr * hp.get("weight_decay", 0.1)
        p[:] = [p[i * n + j] * keep - lr * ratio * x[i][j] for i in range(m) for j in range(n)]

    def _lion(self, i, p, g, t, lr):
        b1, b2 = self.hp.get("betas", (0.9, 0.99))
        m = self.buf("m")
        c = b1 * m[i] + (1 - b1) * g
        m[i] = b2 * m[i] + (1 - b2) * g
        sign = 1.0 if c > 0 else -1.0 if c < 0 else 0.0 if c == 0 else math.nan
        return p - lr * sign


def run_scalar(rule: str, hp: dict, p0: np.ndarray, grads: list, lrs: list) -> np.ndarray:
    """The params after one scalar-loop step per gradient in ``grads``."""
    p = [float(x) for x in np.ravel(p0)]
    r = ScalarRule(rule, len(p), np.ndim(p0), np.shape(p0), **hp)
    for g, lr in zip(grads, lrs):
        r.step(p, [float(x) for x in np.ravel(g)], lr)
    return np.array(p).reshape(np.shape(p0))

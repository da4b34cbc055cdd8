"""What ``minimize`` returns: SciPy's ``OptimizeResult`` and ``LbfgsInvHessProduct``, with
their behaviour (SciPy itself stays optional)."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

ORDER = ("message", "success", "status", "fun", "x", "nit")


class OptimizeResult(dict):
    """The result of :func:`fastopt.minimize`: a dict whose keys are also attributes, as
    SciPy's. x, fun, jac, nit, nfev, njev, status, success, message, hess_inv, backend."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__

    def __dir__(self) -> list[str]:
        return list(self.keys())

    def __repr__(self) -> str:
        """SciPy's layout: keys right-aligned, message first, arrays in short form."""
        if not self:
            return f"{type(self).__name__}()"
        keys = sorted(self, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))
        width = max(map(len, keys)) + 1
        with np.printoptions(linewidth=76 - width - 2, edgeitems=2, threshold=12,
                             formatter={"float_kind": _ten_characters}):
            return "\n".join(f"{k:>{width}}: " + str(self[k]).replace("\n", "\n" + " " *
                                                                      (width + 2))
                             for k in keys)


def _ten_characters(x: float) -> str:
    """A float in exactly ten characters, as SciPy prints results."""
    if not np.isfinite(x):
        return f"{x:>10}"
    return np.format_float_scientific(x, precision=3, pad_left=2, unique=False)


class _LazyPairs:
    """The pairs (s_k, y_k) of an L-BFGS history, oldest first: rows of its buffers (NumPy
    or CuPy), copied to the host in float64 only when first used."""

    def _keep(self, S: Any, Y: Any, rows: Any) -> None:
        self._source, self.n_corrs = (S, Y, list(rows)), len(rows)

    @functools.cached_property
    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        S, Y, rows = self._source
        sk, yk = (host_array(A[rows]).astype(np.float64) for A in (S, Y))
        self._source = None
        return sk, yk, 1.0 / np.einsum("ij,ij->i", sk, yk)

    sk = property(lambda self: self._pairs[0])
    yk = property(lambda self: self._pairs[1])
    rho = property(lambda self: self._pairs[2])


def inverse_hessian(S: Any, Y: Any, rows: list[int]) -> Any:
    """``hess_inv`` of a run: SciPy's own ``LbfgsInvHessProduct`` (a ``LinearOperator``,
    with SciPy's math) over the history's pairs, read when first used; this module's
    twin where SciPy is not installed."""
    scipy_class = _lazy_scipy_class()
    if scipy_class is not None:
        return scipy_class(S, Y, rows)
    return LbfgsInvHessProduct.of_history(S, Y, rows)


@functools.cache
def _lazy_scipy_class() -> type | None:
    try:
        from scipy.optimize import LbfgsInvHessProduct as ScipyProduct
        from scipy.sparse.linalg import LinearOperator
    except ImportError:
        return None

    class Lazy(_LazyPairs, ScipyProduct):
        def __init__(self, S: Any, Y: Any, rows: list[int]) -> None:
            LinearOperator.__init__(self, dtype=np.float64, shape=(S.shape[1], S.shape[1]))
            self._keep(S, Y, rows)

        def _adjoint(self) -> "Lazy":
            return self                      # H is symmetric (SciPy's class leaves it out)

    Lazy.__name__ = Lazy.__qualname__ = "LbfgsInvHessProduct"
    return Lazy


class LbfgsInvHessProduct(_LazyPairs):
    """H v for the L-BFGS inverse Hessian approximation of the pairs (s_k, y_k), oldest
    first, built from H0 = I exactly as SciPy's ``LbfgsInvHessProduct``:

        H_{k+1} = (I - rho_k s_k y_k^T) H_k (I - rho_k y_k s_k^T) + rho_k s_k s_k^T,
        rho_k = 1 / (y_k . s_k)

    ``res.hess_inv`` where SciPy is not installed, with that operator's main surface
    (``matvec``, ``matmat``, ``rmatvec``, ``@``, ``dot``, a call, ``todense``, ``shape``,
    ``dtype``, ``sk``, ``yk``, ``rho``, ``n_corrs``).
    """

    def __init__(self, sk: Any, yk: Any) -> None:
        if np.shape(sk) != np.shape(yk) or np.ndim(sk) != 2:
            raise ValueError("sk and yk must have matching shape, (n_corrs, n)")
        self._keep(sk, yk, range(np.shape(sk)[0]))
        n = np.shape(sk)[1]
        self.shape, self.dtype = (n, n), np.dtype(np.float64)

    @classmethod
    def of_history(cls, S: Any, Y: Any, rows: list[int]) -> "LbfgsInvHessProduct":
        """The pairs in ``rows`` of the buffers S and Y, read when first used."""
        self = cls(S[:0], Y[:0])
        self._keep(S, Y, rows)
        return self

    def matmat(self, X: Any) -> np.ndarray:
        """H X for X of shape (n, k): the two-loop recursion on every column."""
        Q = np.array(X, dtype=np.float64, copy=True)
        if Q.ndim != 2 or Q.shape[0] != self.shape[0]:
            raise ValueError(f"LbfgsInvHessProduct: expected shape ({self.shape[0]}, k), "
                             f"got {np.shape(X)}")
        s, y, rho = self._pairs
        alpha = np.empty((self.n_corrs, Q.shape[1]))
        for i in reversed(range(self.n_corrs)):
            alpha[i] = rho[i] * (s[i] @ Q)
            Q -= np.outer(y[i], alpha[i])
        for i in range(self.n_corrs):
            beta = rho[i] * (y[i] @ Q)
            Q += np.outer(s[i], alpha[i] - beta)
        return Q

    def matvec(self, v: Any) -> np.ndarray:
        """H v for v of shape (n,) or (n, 1); the result has v's shape."""
        v = np.asarray(v)
        if v.shape not in ((self.shape[0],), (self.shape[0], 1)):
            raise ValueError(f"LbfgsInvHessProduct: expected shape ({self.shape[0]},) or "
                             f"({self.shape[0]}, 1), got {v.shape}")
        return self.matmat(v.reshape(-1, 1)).reshape(v.shape)

    rmatvec = matvec                    # H is symmetric

    def dot(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        return self.matvec(x) if x.ndim == 1 or x.shape[1:] == (1,) else self.matmat(x)

    __call__ = __matmul__ = dot

    def todense(self) -> np.ndarray:
        """H as a dense (n, n) array."""
        return self.matmat(np.eye(self.shape[0]))

    @property
    def T(self) -> "LbfgsInvHessProduct":
        return self

    def __repr__(self) -> str:
        n = self.shape[0]
        return f"<{n}x{n} LbfgsInvHessProduct with dtype={self.dtype}>"


def host_array(a: Any) -> np.ndarray:
    """A NumPy array of a NumPy or CuPy array."""
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)

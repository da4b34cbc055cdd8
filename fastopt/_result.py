"""What ``minimize`` returns: SciPy's ``OptimizeResult`` and ``LbfgsInvHessProduct``, with
their behaviour (SciPy itself stays optional)."""
from __future__ import annotations

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
        if not self:
            return f"{type(self).__name__}()"
        keys = sorted(self, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))
        width = max(map(len, keys)) + 1
        return "\n".join(f"{k:>{width}}: " + repr(self[k]).replace("\n", "\n" + " " *
                                                                    (width + 2))
                         for k in keys)


class LbfgsInvHessProduct:
    """H v for the L-BFGS inverse Hessian approximation of the last m pairs (s_k, y_k),
    oldest first, built from H0 = I exactly as SciPy's ``LbfgsInvHessProduct``:

        H_{k+1} = (I - rho_k s_k y_k^T) H_k (I - rho_k y_k s_k^T) + rho_k s_k s_k^T,
        rho_k = 1 / (y_k . s_k)

    Behaves as a SciPy ``LinearOperator`` (``matvec``, ``matmat``, ``@``, ``dot``, a call,
    ``todense``, ``shape``, ``dtype``), so SciPy's solvers accept it.
    """

    def __init__(self, sk: np.ndarray, yk: np.ndarray) -> None:
        sk, yk = np.asarray(sk, dtype=np.float64), np.asarray(yk, dtype=np.float64)
        if sk.shape != yk.shape or sk.ndim != 2:
            raise ValueError("sk and yk must have matching shape, (n_corrs, n)")
        self.sk, self.yk = sk, yk
        self.n_corrs, n = sk.shape
        self.shape, self.dtype = (n, n), np.dtype(np.float64)
        self.rho = 1.0 / np.einsum("ij,ij->i", sk, yk)

    def matmat(self, X: Any) -> np.ndarray:
        """H X for X of shape (n, k): the two-loop recursion on every column."""
        Q = np.array(X, dtype=np.float64, copy=True)
        if Q.ndim != 2 or Q.shape[0] != self.shape[0]:
            raise ValueError(f"LbfgsInvHessProduct: expected shape ({self.shape[0]}, k), "
                             f"got {np.shape(X)}")
        s, y, rho = self.sk, self.yk, self.rho
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


def inverse_hessian(sk: np.ndarray, yk: np.ndarray) -> Any:
    """SciPy's ``LbfgsInvHessProduct`` of the pairs where SciPy is installed (the very
    class SciPy users check for), else this module's twin."""
    try:
        from scipy.optimize import LbfgsInvHessProduct as scipy_class
    except ImportError:
        return LbfgsInvHessProduct(sk, yk)
    return scipy_class(np.asarray(sk, np.float64), np.asarray(yk, np.float64))

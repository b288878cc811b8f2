"""Linear centred kernel alignment (CKA) between layer representations.

``K = X Xᵀ`` over a batch of n examples (each example's representation flattened). MAE-Lite's analysis uses the
unbiased HSIC estimator (Nguyen et al. 2020, arXiv 2010.15327, Eq. 3) and *minibatch* CKA: HSIC terms summed over
batches, CKA = Σ HSIC(K, L) / sqrt(Σ HSIC(K, K) · Σ HSIC(L, L)). The biased estimator tr(K H L H) / (n - 1)², with
the centring matrix H = I - 11ᵀ/n, is available for comparison (``unbiased=False``).
"""

import torch


def gram(x):
    """(n, ...) features -> (n, n) linear kernel in float64."""
    x = x.reshape(x.shape[0], -1).double()
    return x @ x.T


def hsic(k, l, unbiased=True):
    """HSIC of two (n, n) kernel matrices."""
    n = k.shape[0]
    if unbiased:
        if n < 4:
            raise ValueError(f"the unbiased HSIC needs at least 4 examples per batch, got {n}")
        k = k.clone().fill_diagonal_(0)
        l = l.clone().fill_diagonal_(0)
        ones = torch.ones(n, dtype=k.dtype, device=k.device)
        trace = (k * l).sum()  # tr(K L) for symmetric L
        middle = (ones @ k @ ones) * (ones @ l @ ones) / ((n - 1) * (n - 2))
        cross = 2.0 * (ones @ k @ l @ ones) / (n - 2)
        return (trace + middle - cross) / (n * (n - 3))
    kc = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()  # H K H
    return (kc * l).sum() / (n - 1) ** 2


def linear_cka(x, y, unbiased=True):
    """CKA of two representations of the same n examples (one batch)."""
    k, l = gram(x), gram(y)
    return (hsic(k, l, unbiased) / torch.sqrt(hsic(k, k, unbiased) * hsic(l, l, unbiased))).item()


class MinibatchCKA:
    """Accumulates HSIC terms for every (layer a, layer b) pair over batches; ``result()`` -> (A, B) CKA matrix."""

    def __init__(self, layers_a, layers_b, unbiased=True):
        self.unbiased = unbiased
        self.cross = torch.zeros(layers_a, layers_b, dtype=torch.float64)
        self.self_a = torch.zeros(layers_a, dtype=torch.float64)
        self.self_b = torch.zeros(layers_b, dtype=torch.float64)

    def update(self, reps_a, reps_b):
        """Lists of per-layer features (n, ...) of the same n examples."""
        grams_a = [gram(r).cpu() for r in reps_a]
        grams_b = [gram(r).cpu() for r in reps_b]
        for i, k in enumerate(grams_a):
            self.self_a[i] += hsic(k, k, self.unbiased)
            for j, l in enumerate(grams_b):
                self.cross[i, j] += hsic(k, l, self.unbiased)
        for j, l in enumerate(grams_b):
            self.self_b[j] += hsic(l, l, self.unbiased)

    def result(self):
        return self.cross / torch.sqrt(self.self_a[:, None] * self.self_b[None, :])

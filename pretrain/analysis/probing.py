"""Layer-wise linear probing: how linearly separable the classes are in each layer's representation.

Protocol (own choice; MAE-Lite's ``projects/eval_tools/VISUAL.md`` points at MAE's linprobe, which is an SGD-trained BN + linear head): the mean
of the patch tokens of each layer is standardised with the fitting set's statistics (BatchNorm without affine, as
MAE's probe head), then a ridge-regression classifier onto one-hot targets is solved in closed form
(deterministic, no learning-rate schedule to tune, milliseconds per layer); accuracy is measured on held-out images.
"""

import torch


def split_held_out(labels, every=5):
    """Indices (fit, held-out): within each class, every ``every``-th example (the last of each group) is held out."""
    fit, held, seen = [], [], {}
    for index, label in enumerate(labels):
        k = seen.get(label, 0)
        (held if k % every == every - 1 else fit).append(index)
        seen[label] = k + 1
    return fit, held


def fit_linear_probe(x, y, num_classes, ridge=1e-3):
    """(n, D) features, (n,) labels -> predict(features) -> (m,) predicted labels.

    Minimises ||Z W + b - onehot(y)||² + ridge · n · ||W||² over standardised features Z.
    """
    x = x.double()
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    z = (x - mean) / std
    targets = torch.nn.functional.one_hot(torch.as_tensor(y), num_classes).double()
    target_mean = targets.mean(0)
    # z is centred, so the bias is the target mean and W solves the centred ridge system
    system = z.T @ z + ridge * len(z) * torch.eye(z.shape[1], dtype=torch.float64)
    weight = torch.linalg.solve(system, z.T @ (targets - target_mean))
    return lambda feats: (((feats.double() - mean) / std) @ weight + target_mean).argmax(1)


def layer_probe_accuracy(layer_features, labels, fit, held, num_classes):
    """[(n, D) per layer], (n,) labels, index lists -> [held-out accuracy per layer]."""
    labels = torch.as_tensor(labels)
    fit, held = torch.as_tensor(fit), torch.as_tensor(held)
    out = []
    for feats in layer_features:
        predict = fit_linear_probe(feats[fit], labels[fit], num_classes)
        out.append((predict(feats[held]) == labels[held]).double().mean().item())
    return out

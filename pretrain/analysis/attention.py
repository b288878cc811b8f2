"""Average attention distance and attention entropy per (layer, head) (MAE-Lite's ``projects/eval_tools/visualize/attn_analyzer.py``).

Only the patch -> patch part of each attention map is used, renormalised over the patches. Renormalising the
block's softmax probabilities gives exactly the softmax over the patch-only logits that MAE-Lite computes.
Distances are in pixels: grid distance x patch size (MAE-Lite multiplies by the grid side 14 instead; for a 14 x 14
grid with 16-pixel patches its numbers are ours x 14 / 16).
"""

import torch


def patch_only(attn, num_prefix_tokens=1):
    """(B, H, 1+N, 1+N) probabilities -> (B, H, N, N) patch -> patch probabilities, rows summing to 1."""
    a = attn[..., num_prefix_tokens:, num_prefix_tokens:]
    return a / a.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def grid_distances(grid_h, grid_w, patch_size=1.0, device=None):
    """(N, N) Euclidean distances between patch centres of a row-major grid_h x grid_w grid (times patch_size)."""
    ys, xs = torch.meshgrid(torch.arange(grid_h, dtype=torch.float64, device=device),
                            torch.arange(grid_w, dtype=torch.float64, device=device), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], dim=1)
    return torch.cdist(pos, pos) * patch_size


def attention_distance(attn, grid_h, grid_w, patch_size=16):
    """(B, H, N, N) patch attention -> (H,) mean over images and queries of Σ_j a_ij · ‖g_i - g_j‖ (pixels)."""
    dist = grid_distances(grid_h, grid_w, patch_size, attn.device)
    return (attn.double() * dist).sum(-1).mean(dim=(0, 2))


def attention_entropy(attn, eps=1e-6):
    """(B, H, N, N) patch attention -> (H,) mean over images and queries of -Σ_j a_ij log(a_ij + eps) (nats)."""
    a = attn.double()
    return -torch.xlogy(a, a + eps).sum(-1).mean(dim=(0, 2))  # xlogy: 0 * log 0 = 0

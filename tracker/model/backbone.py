"""One-stream ViT backbone with candidate elimination (OSTrack ``VisionTransformerCE``).

Template and search images share the patch embedding, get their own learnable position tables
(``pos_embed_z``, ``pos_embed_x``) and run through the blocks as one sequence, template first. In the
candidate-elimination blocks, search tokens that the template attends to least are dropped after
attention and before the MLP; after the final norm they come back at their places as zero vectors.
``cls_token`` and the 14x14 ``pos_embed`` stay in the module (and the state dict, like OSTrack's) but the
forward pass does not use them.
"""

import math

import torch
from torch import nn

from mimtrack.pretrain.vit import VisionTransformer, resample_pos_embed

TEMPLATE_RANGES = ("CTR_POINT", "ALL")


def template_centre_index(grid):
    """Token index of the template centre: (3, 3) of 8x8, (5, 5) of 12x12, as OSTrack's CTR_POINT mask."""
    c = (grid - 1) // 2
    return c * grid + c


def eliminate_candidates(tokens, attn, len_z, keep, index_x, template_index=None):
    """Keep the ``keep`` search tokens with the highest template->search attention.

    tokens (B, Lz + Ls, D); attn (B, H, L, L) probabilities of this block; index_x (B, Ls) the original
    positions of the current search tokens; template_index: the template query tokens that score
    (None: all of them). Returns (tokens, kept original positions, removed original positions); kept search
    tokens are ordered by descending score, as in OSTrack.
    """
    attn_zx = attn[:, :, :len_z, len_z:]
    if template_index is not None:
        attn_zx = attn_zx[:, :, template_index]
    score = attn_zx.mean(dim=2).mean(dim=1)  # (B, Ls): mean over template queries, then heads
    # A trained tracker's softmax underflows: scores below float32's smallest normal number count as 0, so a runtime
    # that flushes denormals (OpenVINO) ranks them as one that keeps them (torch, ONNX Runtime): ties, kept by index.
    score = score.masked_fill(score < torch.finfo(torch.float32).tiny, 0.0)
    # Ties lower index first, as ONNX TopK defines them (an unstable sort would keep other tokens than the exported
    # graph among the zeros); the export writes TopK, which has that rule (a stable sort does not export).
    if torch.compiler.is_exporting():
        order = torch.argsort(score, dim=1, descending=True)
    else:
        order = torch.sort(score, dim=1, descending=True, stable=True).indices
    keep_idx, drop_idx = order[:, :keep], order[:, keep:]
    tokens_z, tokens_x = tokens[:, :len_z], tokens[:, len_z:]
    tokens_x = tokens_x.gather(1, keep_idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
    return torch.cat([tokens_z, tokens_x], dim=1), index_x.gather(1, keep_idx), index_x.gather(1, drop_idx)


class OneStreamViT(VisionTransformer):
    """ViT over [template tokens, search tokens] with optional candidate elimination."""

    def __init__(self, template_size=128, search_size=256, ce_locations=(), ce_keep_ratios=(),
                 ce_template_range="CTR_POINT", pretrained_grid=14, patch_size=16, **vit_kwargs):
        super().__init__(img_size=pretrained_grid * patch_size, patch_size=patch_size, **vit_kwargs)
        if template_size % patch_size or search_size % patch_size:
            raise ValueError(f"template {template_size} / search {search_size} not multiples of patch {patch_size}")
        if len(ce_locations) != len(ce_keep_ratios):
            raise ValueError("ce_locations and ce_keep_ratios differ in length")
        if ce_template_range not in TEMPLATE_RANGES:
            raise ValueError(f"ce_template_range {ce_template_range!r} not in {TEMPLATE_RANGES}")
        self.grid_z = template_size // patch_size
        self.grid_x = search_size // patch_size
        # OSTrack builds both tables from the 14x14 pre-training table (finetune_track), also without weights.
        self.pos_embed_z = nn.Parameter(resample_pos_embed(self.pos_embed.detach(), self.grid_z))
        self.pos_embed_x = nn.Parameter(resample_pos_embed(self.pos_embed.detach(), self.grid_x))
        self.ce_keep_ratios = dict(zip(ce_locations, ce_keep_ratios))  # block index -> keep ratio
        self.ce_template_index = (
            [template_centre_index(self.grid_z)] if ce_template_range == "CTR_POINT" else None
        )

    def forward(self, template, search, ce_keep_rate=None):
        """-> (tokens (B, Lz + Lx, D) after the norm, eliminated search tokens zero-filled; aux dict).

        ``ce_keep_rate`` replaces the keep ratio (< 1) of every CE block (the training schedule); 1.0 disables CE.
        aux: ``removed_indexes_s`` (one (B, n) tensor per eliminating block), ``kept_index_s`` (B, kept).
        """
        return self.forward_cached(self.embed_template(template), search, ce_keep_rate)

    def embed_template(self, template):
        """Template image (B, 3, Hz, Wz) -> its tokens (B, Lz, D) before the blocks.

        The template is fixed while tracking, so a tracker computes this once (:meth:`forward_cached` takes it).
        Only this part can be cached: in the one-stream blocks the template tokens attend to the search tokens.
        """
        return self.patch_embed(template) + self.pos_embed_z

    def forward_cached(self, z, search, ce_keep_rate=None):
        """:meth:`forward` with the template already embedded (``z`` from :meth:`embed_template`)."""
        x = self.patch_embed(search) + self.pos_embed_x
        len_z, len_x = z.shape[1], x.shape[1]
        tokens = self.pos_drop(torch.cat([z, x], dim=1))
        index_x = torch.arange(len_x, device=x.device).expand(x.shape[0], -1)
        removed = []
        for i, blk in enumerate(self.blocks):
            ratio = self.ce_keep_ratios.get(i, 1.0)
            if ce_keep_rate is not None and ratio < 1:  # as OSTrack: overrides only blocks that eliminate
                ratio = ce_keep_rate
            keep = math.ceil(ratio * index_x.shape[1])
            if keep >= index_x.shape[1]:
                tokens = blk(tokens)
                continue
            tokens, attn = blk.forward_attention(tokens, return_attention=True)
            tokens, index_x, removed_x = eliminate_candidates(
                tokens, attn, len_z, keep, index_x, self.ce_template_index)
            removed.append(removed_x)
            tokens = blk.forward_mlp(tokens)
        tokens = self.norm(tokens)
        if index_x.shape[1] < len_x:  # put the kept search tokens back at their places; the rest are zeros
            z, kept = tokens[:, :len_z], tokens[:, len_z:]
            full = kept.new_zeros(kept.shape[0], len_x, kept.shape[2])
            full = full.scatter(1, index_x.unsqueeze(-1).expand(-1, -1, kept.shape[2]), kept)
            tokens = torch.cat([z, full], dim=1)
        return tokens, {"removed_indexes_s": removed, "kept_index_s": index_x}

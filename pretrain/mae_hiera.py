"""Masked autoencoder with a Hiera encoder (MAE-Lite's hierarchical MAE), on timm's Hiera.

Follows MAE-Lite ``projects/mae_lite/hiera_mae.py`` (``MaskedAutoencoderHiera``, ``mae_hiera_tiny_224``), itself
from facebookresearch/hiera ``hiera_mae.py``. The steps, in order:

1. mask by mask unit (8 x 8 tokens = 32 x 32 px; 7 x 7 units at 224 px), ratio 0.4 -> 29 of 49 units kept, with
   MAE's argsort-of-noise shuffle (``ids_shuffle`` / ``ids_restore``, so a teacher can see the same mask); the
   stem convolves the image with the masked units zeroed, and after timm's unroll the tokens of masked units
   are dropped;
2. the encoder runs with 2 q-pooling transitions, so the last stage stays at stride 16 (2 x 2 tokens per unit);
3. multi-scale fusion: the stage-1 and stage-2 outputs (per unit 8 x 8 and 4 x 4) are brought to 2 x 2 by
   strided convolutions (kernel = stride = 4 and 2) to the last stage's width and summed with its output,
   then ``encoder_norm``: a 14 x 14 grid at 224 px;
4. decoder: linear to 96 wide, mask tokens fill the masked units, back to row-major order, a learned position
   table (1, 196, 96), one 3-head ``HieraBlock`` (global attention), norm, linear to the 16 x 16 x 3 pixels of each
   stride-16 cell;
5. loss: MSE against per-patch normalised pixels, on the masked cells only.

State-dict keys are MAE-Lite's: the encoder's (``patch_embed.*``, ``pos_embed``, ``blocks.*``), then
``encoder_norm.*``, ``multi_scale_fusion_heads.{0,1}.*``, ``mask_token``, ``decoder_embed.*``, ``decoder_pos_embed``,
``decoder_blocks.0.*``, ``decoder_norm.*``, ``decoder_pred.*``.
"""

from functools import partial

import torch
from timm.models.hiera import HieraBlock, undo_windowing
from torch import nn

from mimtrack.pretrain.hiera import HieraEncoder, block_attention_logits, hiera_kwargs
from mimtrack.pretrain.mae import mae_init_

_LayerNorm = partial(nn.LayerNorm, eps=1e-6)


def pixel_targets(images, size, norm_pix=True):
    """(B, 3, H, W) -> (B, (H/size) * (W/size), 3*size*size) row-major patches, pixels (channel, row, col) inside
    (MAE-Lite's ``get_pixel_label_2d`` order, unlike the ViT MAE's (row, col, channel)), optionally normalised
    per patch (mean / unbiased variance, eps 1e-6)."""
    x = images.permute(0, 2, 3, 1).unfold(1, size, size).unfold(2, size, size)  # B, h, w, C, size, size
    x = x.flatten(1, 2).flatten(2)
    if norm_pix:
        x = (x - x.mean(dim=-1, keepdim=True)) / (x.var(dim=-1, keepdim=True) + 1e-6) ** 0.5
    return x


def _per_unit(conv, x):
    """Apply a 2-D conv to every mask unit: (B, U, My, Mx, C) -> (B, U, My', Mx', C')."""
    b, u = x.shape[:2]
    y = conv(x.flatten(0, 1).permute(0, 3, 1, 2))
    return y.permute(0, 2, 3, 1).reshape(b, u, *y.shape[2:], y.shape[1])


class MaskedAutoencoderHiera(HieraEncoder):
    """MAE with a Hiera encoder. ``decoder_depth=0`` builds encoder + fusion + norm only (a distillation teacher).

    The interface matches :class:`mimtrack.pretrain.mae.MaskedAutoencoderViT` (``forward_encoder`` / ``forward_decoder`` /
    ``forward_loss`` / ``attention_logits``), so :class:`mimtrack.pretrain.distill.MAEPretraining` trains either.
    """

    def __init__(self, img_size=224, embed_dim=46, num_heads=1, stages=(1, 2, 7, 2), q_pool=2, decoder_dim=96,
                 decoder_depth=1, decoder_heads=3, mlp_ratio=4.0, norm_pix_loss=True, in_chans=3):
        super().__init__(img_size, embed_dim, num_heads, stages, q_pool, mlp_ratio, in_chans=in_chans)
        self.encoder_depth = len(self.blocks)
        self.norm_pix_loss = norm_pix_loss
        out_dim = self.num_features
        pool = self.q_stride[0] ** q_pool
        self.unit_side = self.mask_unit_size[0] // pool                 # tokens per unit side at the end: 2
        self.grid_size = self.tokens_spatial_shape[0] // pool           # final grid side: 14 at 224 px
        self.pred_stride = self.patch_stride[0] * pool                   # pixels per final token: 16
        self.encoder_norm = _LayerNorm(out_dim)
        self.multi_scale_fusion_heads = nn.ModuleList()
        unit = self.mask_unit_size[0]
        for end in self.stage_ends[:q_pool]:  # stages whose resolution the pooling later reduces
            kernel = unit // self.unit_side
            self.multi_scale_fusion_heads.append(nn.Conv2d(self.blocks[end].dim_out, out_dim, kernel, stride=kernel))
            unit //= self.q_stride[0]
        self.multi_scale_fusion_heads.append(nn.Identity())  # the last stage is already at the final grid
        self.decoder_depth = decoder_depth
        if decoder_depth:
            self.decoder_embed = nn.Linear(out_dim, decoder_dim)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
            self.decoder_pos_embed = nn.Parameter(torch.zeros(1, self.grid_size ** 2, decoder_dim))
            self.decoder_blocks = nn.ModuleList([HieraBlock(decoder_dim, decoder_dim, decoder_heads, mlp_ratio,
                                                            norm_layer=_LayerNorm) for _ in range(decoder_depth)])
            self.decoder_norm = _LayerNorm(decoder_dim)
            self.decoder_pred = nn.Linear(decoder_dim, self.pred_stride ** 2 * in_chans)
        self.initialize_weights()

    def initialize_weights(self):
        """MAE-Lite's MAE init: xavier-uniform Linear (zero bias), unit LayerNorm, stem initialised as a Linear
        over the flattened kernel, mask token and decoder positions N(0, 0.02) truncated."""
        mae_init_(self)  # the fusion convolutions keep PyTorch's default, as in MAE-Lite
        if self.decoder_depth:
            nn.init.trunc_normal_(self.mask_token, std=0.02)
            nn.init.trunc_normal_(self.decoder_pos_embed, std=0.02)

    @property
    def num_units(self):
        return self.mask_spatial_shape[0] * self.mask_spatial_shape[1]

    def num_visible_units(self, mask_ratio):
        return int(self.num_units * (1 - mask_ratio))

    def cell_mask(self, visible):
        """Unit keep mask (B, U) -> per-cell loss mask (B, grid*grid), row-major, 1 = masked (MAE's convention)."""
        b = visible.shape[0]
        cells = (~visible).float()[:, :, None, None, None].expand(-1, -1, self.unit_side, self.unit_side, 1)
        return undo_windowing(cells, [self.grid_size] * 2, [self.unit_side] * 2).reshape(b, -1)

    def forward_encoder(self, imgs, mask_ratio, ids_shuffle=None):
        """Encode the visible mask units.

        Returns (latent (B, U_keep, 2, 2, C) fused and normalised, cell mask (B, grid*grid) 1 = masked,
        ids_restore (B, U), ids_shuffle (B, U), stream), where ``stream[i]`` is the (unrolled, visible) token
        sequence entering block i and ``stream[depth]`` the last block's output.
        """
        b = imgs.shape[0]
        keep = self.num_visible_units(mask_ratio)
        if ids_shuffle is None:
            ids_shuffle = torch.argsort(torch.rand(b, self.num_units, device=imgs.device), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        visible = ids_restore < keep  # the first ``keep`` units of the shuffle
        x = self.patch_embed(imgs, mask=visible.view(b, 1, *self.mask_spatial_shape))
        x = self.unroll(self._pos_embed(x))
        x = x[visible[..., None].tile(1, self.mu_size, x.shape[2])].view(b, -1, x.shape[-1])  # as timm's Hiera
        stream, stage_outputs = [x], []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            stream.append(x)
            if i in self.stage_ends:
                stage_outputs.append(self.reroll(x, i, mask=visible))  # (B, U_keep, My, Mx, C)
        fused = 0.0
        for head, feats in zip(self.multi_scale_fusion_heads, stage_outputs[:self.q_pool] + stage_outputs[-1:]):
            fused = fused + (feats if isinstance(head, nn.Identity) else _per_unit(head, feats))
        return self.encoder_norm(fused), self.cell_mask(visible), ids_restore, ids_shuffle, stream

    def forward_decoder(self, latent, ids_restore):
        """Latent (B, U_keep, 2, 2, C) -> predicted pixels (B, grid*grid, 3*16*16), row-major cells."""
        x = self.decoder_embed(latent)
        b, u = ids_restore.shape
        visible = ids_restore < x.shape[1]
        full = x.new_zeros(b, u, *x.shape[2:])
        full[visible] = x.flatten(0, 1)  # boolean indexing walks units in index order, as the masking kept them
        full = torch.where(visible[:, :, None, None, None], full, self.mask_token.view(1, 1, 1, 1, -1).to(x.dtype))
        x = undo_windowing(full, [self.grid_size] * 2, [self.unit_side] * 2).reshape(b, -1, x.shape[-1])
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))

    def forward_loss(self, imgs, pred, mask):
        """Mean squared error over the masked cells only (per-cell mean, then mean over masked cells)."""
        target = pixel_targets(imgs, self.pred_stride, self.norm_pix_loss)
        loss = ((pred.float() - target.float()) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    def attention_logits(self, layer, stream):
        """Pre-softmax attention logits of 1-based ``layer`` for the stream entering it."""
        return block_attention_logits(self.blocks[layer - 1], stream[layer - 1])

    def attention_heads(self, layer):
        return self.blocks[layer - 1].attn.heads

    def forward(self, imgs, mask_ratio=0.4):
        latent, mask, ids_restore, _, _ = self.forward_encoder(imgs, mask_ratio)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask


def mae_hiera(arch="hiera_tiny", img_size=224, embed_dim=None, num_heads=None, **kwargs):
    """A MAE around registry Hiera ``arch`` (hiera_tiny / hiera_base), q_pool 2, MAE-Lite's 1 x 96-d decoder."""
    encoder = hiera_kwargs(arch, embed_dim=embed_dim, num_heads=num_heads)
    kwargs = {"decoder_dim": 96, "decoder_depth": 1, "decoder_heads": 3, **kwargs}
    return MaskedAutoencoderHiera(img_size=img_size, **encoder, **kwargs)

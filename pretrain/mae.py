"""Masked autoencoder for lightweight ViTs (MAE-lite): the encoder is our timm-named ViT, plus a light decoder.

The methods are the algorithm's steps, in order: :meth:`patchify`, :meth:`random_masking`,
:meth:`forward_encoder` (visible tokens only), :meth:`forward_decoder` (mask tokens filled in, pixels
predicted), :meth:`forward_loss` (normalised-pixel MSE on the masked patches).
State-dict keys: the encoder's are timm's (``cls_token``, ``pos_embed`` (1, 1 + N, D), ``patch_embed.*``,
``blocks.*``, ``norm.*``); the decoder's sit beside them (``mask_token``, ``decoder_*``), as in MAE.
"""

import numpy as np
import torch
from torch import nn

from mimtrack.pretrain.vit import Attention, Block, VisionTransformer, vit_kwargs


def sincos_pos_embed_2d(embed_dim, grid_size, cls_token=True):
    """Fixed 2-D sine-cosine table (1 + g*g, D) as in MAE: half the channels encode the column (x), half the
    row (y), each as [sin(pos * w), cos(pos * w)] with w = 1 / 10000^(i / (D/4)); the cls slot is all zeros."""
    if embed_dim % 4:
        raise ValueError(f"embed dim {embed_dim} is not a multiple of 4 (needed for a 2-D sin-cos table)")
    omega = 1.0 / 10000 ** (np.arange(embed_dim // 4, dtype=np.float64) / (embed_dim / 4.0))
    rows, cols = np.meshgrid(np.arange(grid_size, dtype=np.float64), np.arange(grid_size, dtype=np.float64),
                             indexing="ij")

    def encode(pos):
        angles = pos.reshape(-1, 1) * omega[None]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    table = np.concatenate([encode(cols), encode(rows)], axis=1)
    if cls_token:
        table = np.concatenate([np.zeros((1, embed_dim)), table], axis=0)
    return torch.from_numpy(table).float()


def mae_init_(model):
    """MAE's initialisation of every Linear (xavier-uniform, zero bias) and LayerNorm (1, 0) in ``model``, and of
    its stem ``patch_embed.proj`` as a Linear over the flattened kernel."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    w = model.patch_embed.proj.weight.data
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))


class AttentionOnlyBlock(nn.Module):
    """D2-MAE's extra top block: only ``norm1`` and ``attn.qkv``; it exists to produce attention logits
    for distillation, so keys are ``blocks.12.norm1.*`` / ``blocks.12.attn.qkv.*`` as in MAE-Lite."""

    def __init__(self, dim, num_heads, qkv_bias=True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        del self.attn.proj, self.attn.proj_drop, self.attn.attn_drop  # logits never reach values/projection

    def attention_logits(self, x):
        return self.attn.attention_logits(self.norm1(x))


class MaskedAutoencoderViT(VisionTransformer):
    """MAE with a ViT encoder. ``decoder_depth=0`` builds the encoder alone (a distillation teacher).

    ``decode_layer``: the encoder layer whose output (through the shared final norm) is decoded; D2-MAE
    uses 8 of 12. ``extra_attention_block`` appends D2-MAE's attention-only 13th block.
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=192, depth=12, num_heads=12,
                 decoder_dim=96, decoder_depth=1, decoder_heads=3, mlp_ratio=4.0, norm_pix_loss=True,
                 decode_layer=None, extra_attention_block=False):
        super().__init__(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio)
        self.encoder_depth = depth
        self.decode_layer = depth if decode_layer is None else decode_layer
        if not 1 <= self.decode_layer <= depth:
            raise ValueError(f"decode_layer {decode_layer} outside 1..{depth}")
        self.norm_pix_loss = norm_pix_loss
        num_patches = self.grid_size ** 2
        # MAE: a fixed (not learned) sin-cos table; stays in the state dict as the backbone's pos_embed.
        self.pos_embed.requires_grad_(False)
        if extra_attention_block:
            self.blocks.append(AttentionOnlyBlock(embed_dim, num_heads))
        self.decoder_depth = decoder_depth
        if decoder_depth:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
            self.decoder_embed = nn.Linear(embed_dim, decoder_dim)
            self.decoder_pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, decoder_dim), requires_grad=False)
            self.decoder_blocks = nn.ModuleList([Block(decoder_dim, decoder_heads, mlp_ratio)
                                                 for _ in range(decoder_depth)])
            self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
            self.decoder_pred = nn.Linear(decoder_dim, patch_size ** 2 * in_chans)
        self.initialize_weights()

    def initialize_weights(self):
        self.pos_embed.data.copy_(sincos_pos_embed_2d(self.embed_dim, self.grid_size)[None])
        # The patch projection is initialised like a Linear layer over the flattened patch (MAE).
        nn.init.normal_(self.cls_token, std=0.02)
        if self.decoder_depth:
            self.decoder_pos_embed.data.copy_(sincos_pos_embed_2d(self.decoder_pos_embed.shape[-1],
                                                                  self.grid_size)[None])
            nn.init.normal_(self.mask_token, std=0.02)
        mae_init_(self)

    def patchify(self, imgs):
        """(B, 3, H, W) -> (B, L, p*p*3), patches in row-major order, pixels (row, col, channel) inside."""
        p = self.patch_size
        b, c, h, w = imgs.shape
        x = imgs.reshape(b, c, h // p, p, w // p, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(b, (h // p) * (w // p), p * p * c)

    def unpatchify(self, x):
        """(B, L, p*p*3) -> (B, 3, H, W); inverse of :meth:`patchify`."""
        p, g = self.patch_size, int(round(x.shape[1] ** 0.5))
        x = x.reshape(x.shape[0], g, g, p, p, -1)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], -1, g * p, g * p)

    def random_masking(self, x, mask_ratio, ids_shuffle=None):
        """Keep a random (1 - mask_ratio) subset of each sample's tokens (per-sample argsort of uniform noise).

        x (B, L, D) -> (kept tokens (B, L_keep, D), mask (B, L) 1 = removed, ids_restore, ids_shuffle).
        Passing ``ids_shuffle`` reuses another model's draw (the distillation teacher sees the same tokens).
        """
        b, length, d = x.shape
        keep = int(length * (1 - mask_ratio))
        if ids_shuffle is None:
            noise = torch.rand(b, length, device=x.device)
            ids_shuffle = torch.argsort(noise, dim=1)  # ascending: the lowest noise is kept
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
        mask = torch.ones(b, length, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)  # back to the original token order
        return x_kept, mask, ids_restore, ids_shuffle

    def forward_encoder(self, imgs, mask_ratio, ids_shuffle=None):
        """Encode the visible patches + cls.

        Returns (latent = norm(output of ``decode_layer``), mask, ids_restore, ids_shuffle, stream), where
        ``stream[i]`` is the token sequence entering block i (``stream[depth]`` = the last block's output,
        before the norm): what attention / feature distillation reads.
        """
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:]
        x, mask, ids_restore, ids_shuffle = self.random_masking(x, mask_ratio, ids_shuffle)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        stream = [x]
        for blk in self.blocks[:self.encoder_depth]:
            x = blk(x)
            stream.append(x)
        return self.norm(stream[self.decode_layer]), mask, ids_restore, ids_shuffle, stream

    def forward_decoder(self, x, ids_restore):
        """Latent (B, 1 + L_keep, D) -> predicted patch pixels (B, L, p*p*3) for every position."""
        x = self.decoder_embed(x)
        b, length = ids_restore.shape
        mask_tokens = self.mask_token.expand(b, length + 1 - x.shape[1], -1)
        x_ = torch.cat([x[:, 1:], mask_tokens], dim=1)  # visible tokens first, as ids_shuffle ordered them
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # unshuffle
        x = torch.cat([x[:, :1], x_], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # drop the cls slot

    def forward_loss(self, imgs, pred, mask):
        """Mean squared error over the masked patches only; targets normalised per patch (eps 1e-6)."""
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        loss = ((pred.float() - target.float()) ** 2).mean(dim=-1)  # (B, L) per-patch loss
        return (loss * mask).sum() / mask.sum()

    def attention_logits(self, layer, stream):
        """Pre-softmax attention logits (B, heads, N, N) of 1-based ``layer`` for the stream entering it."""
        return self.blocks[layer - 1].attention_logits(stream[layer - 1])

    def attention_heads(self, layer):
        return self.blocks[layer - 1].attn.num_heads

    def forward(self, imgs, mask_ratio=0.75):
        latent, mask, ids_restore, _, _ = self.forward_encoder(imgs, mask_ratio)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask


def mae_vit(arch, img_size=224, patch_size=16, embed_dim=None, depth=None, num_heads=None, **kwargs):
    """A MAE around registry ViT ``arch`` (vit_tiny / vit_small / vit_base) with optional overrides."""
    encoder = vit_kwargs(arch, embed_dim=embed_dim, depth=depth, num_heads=num_heads)
    return MaskedAutoencoderViT(img_size=img_size, patch_size=patch_size, **encoder, **kwargs)


def mae_vit_tiny_patch16(**kwargs):
    """MAE-lite ViT-Tiny: 192-d, 12 blocks, 12 heads; decoder 1 block, 96-d, 3 heads."""
    return mae_vit("vit_tiny", **{"decoder_dim": 96, "decoder_depth": 1, "decoder_heads": 3, **kwargs})


def mae_vit_tiny_d13_patch16(**kwargs):
    """D2-MAE ViT-Tiny: reconstruction from layer 8, an attention-only 13th block for distillation."""
    return mae_vit_tiny_patch16(**{"decode_layer": 8, "extra_attention_block": True, **kwargs})


def mae_vit_small_patch16(**kwargs):
    """MAE-lite ViT-Small: 384-d, 12 heads; decoder 1 block, 192-d, 6 heads (MAE-Lite SMALL.md)."""
    return mae_vit("vit_small", **{"decoder_dim": 192, "decoder_depth": 1, "decoder_heads": 6, **kwargs})


def mae_vit_base_patch16(**kwargs):
    """MAE ViT-Base (the distillation teacher's architecture): decoder 8 blocks, 512-d, 16 heads."""
    return mae_vit("vit_base", **{"decoder_dim": 512, "decoder_depth": 8, "decoder_heads": 16, **kwargs})

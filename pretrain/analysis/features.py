"""Per-layer representations and attention maps of a :class:`mimtrack.pretrain.vit.VisionTransformer`.

MAE-Lite's analysis (``projects/eval_tools/visualize/rep_cmp_analyzer.py``) takes 13 representations of a 12-block ViT: for k < depth the input of block k
after its first LayerNorm (``blocks.k.norm1``; k = 0 is patch embedding + position), and for k = depth the output
of the last block after the final norm. Patch tokens only (the cls token is dropped).
"""

import torch


@torch.no_grad()
def layer_outputs(vit, images, attention=False):
    """-> (list of depth + 1 tensors (B, N, D) of patch tokens, list of depth attention maps (B, H, N+1, N+1) or None).

    Computed by running the blocks by hand (``forward_attention`` / ``forward_mlp``), which is exactly
    ``Block.forward``; the attention probabilities come from the same softmax the block uses.
    """
    x = vit.embed(images)
    reps, attns = [], []
    for blk in vit.blocks:
        reps.append(blk.norm1(x)[:, 1:])
        if attention:
            x, attn = blk.forward_attention(x, return_attention=True)
            attns.append(attn)
        else:
            x = blk.forward_attention(x)
        x = blk.forward_mlp(x)
    reps.append(vit.norm(x)[:, 1:])
    return reps, (attns if attention else None)


@torch.no_grad()
def hiera_layer_outputs(hiera, images):
    """The same depth + 1 representations for a :class:`mimtrack.pretrain.hiera.HieraEncoder`: the input of block k after its
    ``norm1`` (k = 0 is stem + position), then the last block's output. Tokens stay in timm's unrolled order:
    linear CKA and mean pooling do not depend on the token order."""
    x = hiera.unroll(hiera._pos_embed(hiera.patch_embed(images)))
    reps = []
    for blk in hiera.blocks:
        reps.append(blk.norm1(x))
        x = blk(x)
    reps.append(x)
    return reps

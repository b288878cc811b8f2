"""MAE pre-training with optional distillation from a frozen teacher (MAE-Lite "distill" and D2-MAE).

:class:`MAEPretraining` wraps the student MAE as ``model`` (so its state dict reads ``model.<timm key>``
with ``attn_adapter.*`` / ``hidden_adapter.*`` beside it, MAE-Lite's layout) and, when a teacher is given:

- the teacher runs in eval mode without gradients on the student's visible tokens (same ``ids_shuffle``);
- attention distillation: MSE between the student's pre-softmax attention logits of one layer, mixed
  across heads by a 1x1 conv (``attn_adapter``, student heads -> teacher heads, no bias), and the
  teacher's logits of one layer (default: both last);
- optional hidden-feature distillation: MSE between a linear map of a student layer's normalised output
  and the teacher's (all tokens, cls included);
- D2-MAE: the student has an attention-only 13th block that feeds the distillation while pixels are
  decoded from layer 8 (see ``MaskedAutoencoderViT``).

The student may also be a :class:`mimtrack.pretrain.mae_hiera.MaskedAutoencoderHiera` (MAE-Lite's
``hiera_mae_distill_exp.py``): the teacher is the official MAE Hiera-Base, fed the same mask units, and the student's
last block (global attention, 8 heads) is matched to the teacher's last (block 24, 8 heads): (B, 8, 116, 116) logits
at 224 px with 29 of 49 units visible (29 x 2 x 2 tokens).
"""

import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from mimtrack.errors import UserError
from mimtrack.checkpoints import extract_state_dict, load_checkpoint
from mimtrack.pretrain.checkpoints import backbone_state_from_pretrained
from mimtrack.pretrain.hiera import hiera_state_from_timm, is_hiera
from mimtrack.pretrain.mae import mae_vit


def layer_output(model, stream, layer):
    """The normalised output of 1-based ``layer``: ``blocks[layer].norm1`` of the stream leaving it, or the
    final norm for the last layer (MAE-Lite's hidden-distillation representation)."""
    if layer >= model.encoder_depth:
        return model.norm(stream[model.encoder_depth])
    return model.blocks[layer].norm1(stream[layer])


class MAEPretraining(nn.Module):
    """MAE reconstruction loss + (with a teacher) attention / hidden distillation losses."""

    def __init__(self, model, mask_ratio=0.75, teacher=None, attn_weight=1.0, student_attn_layer=None,
                 teacher_attn_layer=None, hidden_weight=1.0, student_hidden_layer=None, teacher_hidden_layer=None):
        super().__init__()
        self.model = model
        self.mask_ratio = mask_ratio
        self.teacher = teacher
        if teacher is None:
            return
        teacher.requires_grad_(False)
        teacher.eval()
        self.attn_weight = attn_weight
        self.student_attn_layer = student_attn_layer or len(model.blocks)  # D2: the extra block
        self.teacher_attn_layer = teacher_attn_layer or teacher.encoder_depth
        for name, layer, net in (("student", self.student_attn_layer, model),
                                 ("teacher", self.teacher_attn_layer, teacher)):
            if not 1 <= layer <= len(net.blocks):
                raise UserError(f"config distill.{name}_attn_layer={layer}: the {name} has {len(net.blocks)} layers")
        s_heads = model.attention_heads(self.student_attn_layer)
        t_heads = teacher.attention_heads(self.teacher_attn_layer)
        # Mixes the head axis: a 1x1 convolution over (B, heads, N, N) maps (MAE-Lite's attn_adapter).
        self.attn_adapter = nn.Conv2d(s_heads, t_heads, kernel_size=1, bias=False)
        self.hidden_weight = hidden_weight
        self.hidden_layers = None
        if student_hidden_layer is not None or teacher_hidden_layer is not None:
            self.hidden_layers = (student_hidden_layer or model.encoder_depth,
                                  teacher_hidden_layer or teacher.encoder_depth)
            self.hidden_adapter = nn.Linear(model.embed_dim, teacher.embed_dim, bias=False)

    def train(self, mode=True):
        """The teacher stays in eval mode whatever the wrapper is switched to."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def forward(self, images, progress=None):
        """images (B, 3, H, W) normalised -> (total loss, {component name: detached value})."""
        model = self.model
        latent, mask, ids_restore, ids_shuffle, stream = model.forward_encoder(images, self.mask_ratio)
        pred = model.forward_decoder(latent, ids_restore)
        loss = model.forward_loss(images, pred, mask)
        logs = {"rec": loss.detach()}
        if self.teacher is None:
            return loss, logs
        with torch.no_grad():
            *_, t_stream = self.teacher.forward_encoder(images, self.mask_ratio, ids_shuffle=ids_shuffle)
            t_logits = self.teacher.attention_logits(self.teacher_attn_layer, t_stream)
        s_logits = model.attention_logits(self.student_attn_layer, stream)
        attn_loss = F.mse_loss(self.attn_adapter(s_logits).float(), t_logits.float())
        loss = loss + self.attn_weight * attn_loss
        logs["attn"] = attn_loss.detach()
        if self.hidden_layers is not None:
            s_hidden, t_hidden = self.hidden_layers
            with torch.no_grad():
                target = layer_output(self.teacher, t_stream, t_hidden)
            hidden_loss = F.mse_loss(self.hidden_adapter(layer_output(model, stream, s_hidden)).float(),
                                     target.float())
            loss = loss + self.hidden_weight * hidden_loss
            logs["hidden"] = hidden_loss.detach()
        return loss, logs

    def trainable_state_dict(self):
        """The state to save: everything but the frozen teacher (reloaded from its own file)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("teacher.")}


_TEACHER_DROP = re.compile(r"^(decoder_|mask_token$|head\.|head_dist\.|fc_norm\.|pre_logits\.|dist_token$)")


def load_teacher(path, arch="vit_base", num_heads=None, img_size=224, patch_size=16, embed_dim=None, depth=None):
    """A frozen encoder-only MAE of ``arch`` with weights from ``path`` (MAE ``{'model': ...}``, a MAE-Lite
    or timm ViT file; for a Hiera ``arch``, the official ``{'model_state': ...}`` MAE Hiera, MAE-Lite's or timm's
    layout). Every encoder tensor must come from the file: a wrong architecture is a UserError."""
    source = os.fspath(path)
    state, fmt = extract_state_dict(load_checkpoint(source), source=f"teacher {source}")
    state = {k: v for k, v in state.items() if not _TEACHER_DROP.match(k)}
    if is_hiera(arch):
        from mimtrack.pretrain.mae_hiera import mae_hiera

        # Only the blocks feed attention distillation: a fine-tuned or timm file (no fusion heads, a
        # classifier's norm) is a valid teacher too.
        state = {k: v for k, v in hiera_state_from_timm(state).items() if not k.startswith("norm.")}
        teacher = mae_hiera(arch, img_size=img_size, embed_dim=embed_dim, num_heads=num_heads, decoder_depth=0)
        optional = ("encoder_norm.", "multi_scale_fusion_heads.")
    else:
        teacher = mae_vit(arch, img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                          num_heads=num_heads, decoder_depth=0)
        # A global-pool timm file has fc_norm instead of norm; the final norm only matters to last-layer
        # hidden distillation, so it may keep its identity initialisation.
        optional = ("norm.",)
    depth = teacher.encoder_depth
    file_depth = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"^blocks\.(\d+)\.", k))), default=-1)
    if file_depth != depth:
        raise UserError(f"teacher {source}: has {file_depth} blocks but distill.teacher_arch={arch} has {depth} "
                        "(wrong architecture?)")
    weights, report = backbone_state_from_pretrained(state, teacher, fmt, source=f"teacher {source}")
    missing = [k for k in report.missing if not k.startswith(optional)]
    if missing or report.unexpected:
        what = ", ".join((missing or report.unexpected)[:4])
        raise UserError(f"teacher {source}: does not match distill.teacher_arch={arch} "
                        f"({'missing' if missing else 'unexpected'} {what})")
    teacher.load_state_dict(weights, strict=False)
    teacher.requires_grad_(False)
    return teacher.eval()

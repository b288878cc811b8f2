import math

import pytest
import torch
import torch.nn.functional as F

from mimtrack.errors import UserError
from mimtrack.tracker.config import TrackerConfig
from mimtrack.tracker.model import OSTrack, build_model
from mimtrack.tracker.model.backbone import template_centre_index
from mimtrack.tracker.model.head import CenterHead, cell_box, decode


def _cfg(arch="vit_tiny", depth=None, locations=(3, 6, 9), template=128, search=256, template_range="CTR_POINT"):
    cfg = TrackerConfig()
    cfg.model.backbone.arch, cfg.model.backbone.depth = arch, depth
    cfg.model.ce.locations, cfg.model.ce.keep_ratio = list(locations), [0.7] * len(locations)
    cfg.model.ce.template_range = template_range
    cfg.crop.template_size, cfg.crop.search_size = template, search
    return cfg


def _inputs(batch=2, template=128, search=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, template, template, generator=g), torch.randn(batch, 3, search, search, generator=g)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model(_cfg()).eval()


def ostrack_table(dim, grid_z=8, grid_x=16, depth=12):
    """OSTrack-256's state-dict keys, written out key by key (prefixes backbone. / box_head.)."""
    table = {
        "backbone.cls_token": (1, 1, dim),
        "backbone.pos_embed": (1, 197, dim),
        "backbone.pos_embed_z": (1, grid_z ** 2, dim),
        "backbone.pos_embed_x": (1, grid_x ** 2, dim),
        "backbone.patch_embed.proj.weight": (dim, 3, 16, 16),
        "backbone.patch_embed.proj.bias": (dim,),
    }
    for n in range(depth):
        b = f"backbone.blocks.{n}."
        table.update({
            b + "norm1.weight": (dim,), b + "norm1.bias": (dim,),
            b + "attn.qkv.weight": (3 * dim, dim), b + "attn.qkv.bias": (3 * dim,),
            b + "attn.proj.weight": (dim, dim), b + "attn.proj.bias": (dim,),
            b + "norm2.weight": (dim,), b + "norm2.bias": (dim,),
            b + "mlp.fc1.weight": (4 * dim, dim), b + "mlp.fc1.bias": (4 * dim,),
            b + "mlp.fc2.weight": (dim, 4 * dim), b + "mlp.fc2.bias": (dim,),
        })
    table.update({"backbone.norm.weight": (dim,), "backbone.norm.bias": (dim,)})
    widths = [dim, 256, 128, 64, 32]
    for branch, outputs in (("ctr", 1), ("offset", 2), ("size", 2)):
        for i in range(1, 5):
            c = f"box_head.conv{i}_{branch}."
            table.update({c + "0.weight": (widths[i], widths[i - 1], 3, 3), c + "0.bias": (widths[i],)})
            for bn in ("weight", "bias", "running_mean", "running_var"):
                table[c + "1." + bn] = (widths[i],)
            table[c + "1.num_batches_tracked"] = ()
        table[f"box_head.conv5_{branch}.weight"] = (outputs, 32, 1, 1)
        table[f"box_head.conv5_{branch}.bias"] = (outputs,)
    return table


@pytest.mark.parametrize("arch,dim", [("vit_tiny", 192), ("vit_base", 768)])
def test_state_dict_is_ostracks_table(arch, dim, tiny):
    model = tiny if arch == "vit_tiny" else build_model(_cfg(arch))
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == ostrack_table(dim)
    if arch == "vit_tiny":  # spot checks straight from the fact sheet
        assert got["backbone.blocks.11.attn.qkv.weight"] == (576, 192)
        assert got["backbone.blocks.0.mlp.fc1.weight"] == (768, 192)
        assert sum(p.numel() for p in model.parameters()) == pytest.approx(8.08e6, rel=2e-3)
    else:
        assert got["backbone.blocks.0.attn.qkv.weight"] == (2304, 768)


def test_384_variant_tables_and_maps():
    model = build_model(_cfg(depth=4, locations=(1, 2), template=192, search=384)).eval()
    sd = model.state_dict()
    assert sd["backbone.pos_embed_z"].shape == (1, 144, 192) and sd["backbone.pos_embed_x"].shape == (1, 576, 192)
    with torch.no_grad():
        out = model(*_inputs(1, 192, 384))
    assert out["score_map"].shape == (1, 1, 24, 24) and out["size_map"].shape == (1, 2, 24, 24)
    kept = [576 - sum(r.shape[1] for r in out["removed_indexes_s"][:i + 1]) for i in range(2)]
    assert kept == [math.ceil(0.7 * 576), math.ceil(0.7 * 404)] == [404, 283]
    assert template_centre_index(12) == 5 * 12 + 5 and template_centre_index(8) == 3 * 8 + 3


def test_forward_outputs(tiny):
    with torch.no_grad():
        out = tiny(*_inputs())
    assert out["score_map"].shape == (2, 1, 16, 16)
    assert out["size_map"].shape == out["offset_map"].shape == (2, 2, 16, 16)
    assert out["pred_boxes"].shape == (2, 1, 4)
    assert out["backbone_feat"].shape == (2, 64 + 256, 192)
    torch.testing.assert_close(out["pred_boxes"][:, 0], decode(out["score_map"], out["size_map"], out["offset_map"]))


def test_ce_counts_and_zero_restored_tokens(tiny):
    with torch.no_grad():
        out = tiny(*_inputs())
    removed = out["removed_indexes_s"]
    assert [r.shape[1] for r in removed] == [256 - 180, 180 - 126, 126 - 89]
    search = out["backbone_feat"][:, 64:]
    for b in range(2):
        gone = torch.cat([r[b] for r in removed])
        assert len(set(gone.tolist())) == 256 - 89
        assert torch.all(search[b, gone] == 0)
        kept = torch.ones(256, dtype=torch.bool)
        kept[gone] = False
        assert torch.all(search[b, kept].abs().sum(-1) > 0)
    with torch.no_grad():  # the training schedule's override
        rates = tiny(*_inputs(), ce_keep_rate=0.8)["removed_indexes_s"]
    assert [r.shape[1] for r in rates] == [256 - 205, 205 - 164, 164 - 132]


def test_keep_rate_override_touches_only_eliminating_blocks():
    cfg = _cfg(depth=3, locations=(1,))
    cfg.model.ce.keep_ratio = [1.0]  # a CE location that keeps everything (OSTrack: the override skips it)
    model = build_model(cfg).eval()
    with torch.no_grad():
        assert model(*_inputs(1), ce_keep_rate=0.5)["removed_indexes_s"] == []


def _plain_run(backbone, template, search):
    tokens = torch.cat([backbone.patch_embed(template) + backbone.pos_embed_z,
                        backbone.patch_embed(search) + backbone.pos_embed_x], dim=1)
    return backbone.forward_tokens(tokens)


def test_keep_ratio_one_and_no_ce_equal_a_plain_run(tiny):
    template, search = _inputs()
    no_ce = build_model(_cfg(locations=())).eval()
    no_ce.load_state_dict(tiny.state_dict(), strict=True)  # CE and non-CE models share every key
    with torch.no_grad():
        plain = _plain_run(tiny.backbone, template, search)
        tokens, aux = tiny.backbone(template, search, ce_keep_rate=1.0)
        assert aux["removed_indexes_s"] == []
        torch.testing.assert_close(tokens, plain, atol=1e-5, rtol=1e-4)
        a, b = tiny(template, search, ce_keep_rate=1.0), no_ce(template, search)
        torch.testing.assert_close(a["score_map"], b["score_map"], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(b["backbone_feat"], plain, atol=1e-5, rtol=1e-4)


def _reference_ce(backbone, template, search, locations, keep_ratio, centre):
    """Sample by sample, tokens kept in their original order with masks, attention written out."""
    dim, heads = backbone.embed_dim, backbone.num_heads
    conv = backbone.patch_embed.proj
    z = F.conv2d(template, conv.weight, conv.bias, stride=16).flatten(2).transpose(1, 2) + backbone.pos_embed_z
    x = F.conv2d(search, conv.weight, conv.bias, stride=16).flatten(2).transpose(1, 2) + backbone.pos_embed_x
    len_z, len_x = z.shape[1], x.shape[1]
    outputs = []
    for b in range(template.shape[0]):
        t = torch.cat([z[b], x[b]])
        alive = torch.ones(len_x, dtype=torch.bool)
        for i, blk in enumerate(backbone.blocks):
            h = F.layer_norm(t, (dim,), blk.norm1.weight, blk.norm1.bias, eps=1e-6)
            q, k, v = F.linear(h, blk.attn.qkv.weight, blk.attn.qkv.bias).view(len(t), 3, heads, -1).unbind(1)
            attn = torch.einsum("qhd,khd->hqk", q, k).mul(q.shape[-1] ** -0.5).softmax(-1)
            mixed = torch.einsum("hqk,khd->qhd", attn, v).reshape(len(t), dim)
            t = t + F.linear(mixed, blk.attn.proj.weight, blk.attn.proj.bias)
            if i in locations:
                scores = attn[:, centre, len_z:].mean(0)
                keep = math.ceil(keep_ratio * len(scores))
                local = torch.zeros(len(scores), dtype=torch.bool)
                local[scores.topk(keep).indices] = True
                positions = alive.nonzero()[:, 0]
                alive[positions[~local]] = False
                t = torch.cat([t[:len_z], t[len_z:][local]])
            h = F.layer_norm(t, (dim,), blk.norm2.weight, blk.norm2.bias, eps=1e-6)
            t = t + F.linear(F.gelu(F.linear(h, blk.mlp.fc1.weight, blk.mlp.fc1.bias)),
                             blk.mlp.fc2.weight, blk.mlp.fc2.bias)
        t = F.layer_norm(t, (dim,), backbone.norm.weight, backbone.norm.bias, eps=1e-6)
        full = torch.zeros(len_x, dim)
        full[alive] = t[len_z:]
        outputs.append(torch.cat([t[:len_z], full]))
    return torch.stack(outputs)


def test_ce_with_centre_token_matches_reference(tiny):
    template, search = _inputs()
    with torch.no_grad():
        tokens, _ = tiny.backbone(template, search)
        expected = _reference_ce(tiny.backbone, template, search, (3, 6, 9), 0.7, centre=27)
    torch.testing.assert_close(tokens, expected, atol=1e-4, rtol=1e-4)


def test_template_range_all_scores_with_every_template_token(tiny):
    model = build_model(_cfg(template_range="ALL")).eval()
    model.load_state_dict(tiny.state_dict())
    template, search = _inputs()
    with torch.no_grad():
        a = model(template, search)["removed_indexes_s"][0]
        b = tiny(template, search)["removed_indexes_s"][0]
    assert a.shape == b.shape and not torch.equal(a.sort(1).values, b.sort(1).values)


def test_decode_hand_built_maps():
    score = torch.zeros(2, 1, 16, 16)
    size = torch.zeros(2, 2, 16, 16)
    offset = torch.zeros(2, 2, 16, 16)
    score[0, 0, 5, 9], size[0, :, 5, 9], offset[0, :, 5, 9] = 0.9, torch.tensor([0.3, 0.2]), torch.tensor([0.25, 0.5])
    score[1, 0, 15, 0], size[1, :, 15, 0], offset[1, :, 15, 0] = 0.5, torch.tensor([0.1, 0.4]), torch.tensor([-0.5, 0.0])
    score[1, 0, 0, 15] = 0.4  # a lower peak elsewhere
    boxes = decode(score, size, offset)
    expected = torch.tensor([[(9 + 0.25) / 16, (5 + 0.5) / 16, 0.3, 0.2], [(0 - 0.5) / 16, 15 / 16, 0.1, 0.4]])
    torch.testing.assert_close(boxes, expected)
    torch.testing.assert_close(decode(score, size, offset, window=torch.ones_like(score)), expected)


def _head_with_trained_looking_batchnorm(seed=0):
    torch.manual_seed(seed)
    head = CenterHead(32, channels=32).eval()
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm2d):   # non-trivial statistics: shifts that padding must not see
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return head


def test_size_and_offset_at_a_cell_equal_the_full_maps_everywhere():
    """The 9x9-window computation against the full maps at every cell, borders and corners included."""
    head = _head_with_trained_looking_batchnorm()
    for fs in (7, 12):   # 7: every window sticks out of the map; 12: some lie wholly inside
        feat = torch.randn(2, 32, fs, fs)
        last = fs * fs - 1
        with torch.no_grad():
            _, size_map, offset_map = head(feat)
            for cell in range(fs * fs):
                size, offset = head.size_offset_at(feat, torch.tensor([cell, last - cell]))
                for b, c in enumerate((cell, last - cell)):
                    torch.testing.assert_close(size[b], size_map[b].flatten(1)[:, c], rtol=0, atol=1e-6)
                    torch.testing.assert_close(offset[b], offset_map[b].flatten(1)[:, c], rtol=0, atol=1e-5)


def test_locate_is_decode_of_the_windowed_full_maps(tiny):
    """The tracking step (:meth:`OSTrack.locate`) against the training forward + decode, with and without a window."""
    template, search = _inputs()
    window = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        tokens = tiny.backbone.embed_template(template)
        out = tiny.forward_cached(tokens, search)
        for w in (window, None):
            response = out["score_map"] * w if w is not None else out["score_map"]
            score_map, box, peak = tiny.locate(tokens, search, w)
            torch.testing.assert_close(score_map, out["score_map"], rtol=0, atol=0)
            assert peak.tolist() == response.flatten(1).argmax(dim=1).tolist()
            torch.testing.assert_close(box, decode(response, out["size_map"], out["offset_map"]), rtol=0, atol=1e-6)


def test_cell_box_is_float32_for_low_precision_maps():
    """Under fp16/bf16 autocast the head's values arrive in low precision; cell + offset must not be rounded there
    (bf16 spaces 8..16 by 1/16: 15 + 0.7 would become 15.6875)."""
    offset = torch.tensor([[0.7, 0.3]], dtype=torch.bfloat16)
    size = torch.tensor([[0.2, 0.1]], dtype=torch.bfloat16)
    box = cell_box(torch.tensor([255]), size, offset, 16)
    assert box.dtype == torch.float32
    assert box[0, 0].item() == ((15 + offset.float()[0, 0]) / 16).item()
    assert box[0, 1].item() == ((15 + offset.float()[0, 1]) / 16).item()


def test_score_clamp_and_size_range():
    head = CenterHead(192, 256).eval()
    feat = torch.randn(1, 192, 16, 16)
    with torch.no_grad():
        head.conv5_ctr.bias.fill_(100.0)
        assert torch.all(head(feat)[0] == torch.tensor(1 - 1e-4))
        head.conv5_ctr.bias.fill_(-100.0)
        score, size, _ = head(feat)
    assert torch.all(score == torch.tensor(1e-4)) and torch.all((size > 0) & (size < 1))


def test_config_errors_are_user_errors():
    with pytest.raises(UserError, match="crop.search_size"):
        build_model(_cfg(search=250))
    with pytest.raises(UserError, match="model.ce.locations"):
        build_model(_cfg(depth=4, locations=(3, 6)))
    cfg = _cfg()
    cfg.model.ce.keep_ratio = [0.7]
    with pytest.raises(UserError, match="keep ratios"):
        build_model(cfg)
    assert isinstance(build_model(_cfg(depth=1, locations=())), OSTrack)

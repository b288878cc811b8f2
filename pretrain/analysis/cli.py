"""``mimtrack analyze``: layer-wise linear probing, CKA between two ViTs, attention distance and entropy.

A Hiera checkpoint (MAE-Lite's hierarchical model) is analysed too: CKA and layer probing over its 12 blocks
(against a ViT or another Hiera); attention distance / entropy are reported for ViTs only.

    mimtrack analyze --images val_images/ --checkpoint mae_tiny.pth --checkpoint-b deit_tiny.pth --output out/

Writes ``analysis.json`` (all numbers), ``cka.png`` (layer x layer heat map; A against itself without
``--checkpoint-b``), ``attention_distance.png``, ``attention_entropy.png`` and, with class folders,
``probing.png``. ``--checkpoint-b random`` compares with a freshly initialised ViT of A's architecture.
"""

import itertools
import json
import os
import re

import numpy as np
import torch

from mimtrack.errors import UserError
from mimtrack.fileio import atomic_write, write_text_atomic
from mimtrack.pretrain.analysis.attention import attention_distance, attention_entropy, patch_only
from mimtrack.pretrain.analysis.cka import MinibatchCKA
from mimtrack.pretrain.analysis.features import hiera_layer_outputs, layer_outputs
from mimtrack.pretrain.analysis.probing import layer_probe_accuracy, split_held_out
from mimtrack.checkpoints import extract_state_dict, load_checkpoint
from mimtrack.pretrain.checkpoints import backbone_state_from_pretrained
from mimtrack.pretrain.transfer.data import ImageListDataset, is_image, list_class_folders
from mimtrack.pretrain.hiera import HIERA_CONFIGS, HieraEncoder
from mimtrack.pretrain.vit import VisionTransformer


def add_arguments(parser):
    parser.add_argument("--images", required=True, help="image folder (class subfolders enable layer probing)")
    parser.add_argument("--checkpoint", required=True, help="ViT checkpoint A (MAE, MAE-Lite, DeiT, ours)")
    parser.add_argument("--checkpoint-b", help="ViT checkpoint B for CKA (or 'random': A's architecture, untrained)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--labels-from", choices=["auto", "folder", "none"], default="auto",
                        help="folder: class = subfolder name (required for probing); none: no probing; "
                             "auto: folder when the images are in class subfolders")
    parser.add_argument("--num-heads", type=int, default=12,
                        help="attention heads (not stored in weights; MAE-Lite Tiny: 12, DeiT-Tiny: 3)")
    parser.add_argument("--num-heads-b", type=int, help="heads of B (default: --num-heads)")
    parser.add_argument("--img-size", type=int, help="input side (default: the checkpoint's pos_embed grid)")
    parser.add_argument("--max-images", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=128, help="CKA minibatch (>= 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")


# ----------------------------------------------------------------------------------------------------------
# Models


def _vit_from_state(state, num_heads, source):
    """Build a VisionTransformer whose shapes match ``state`` (embed dim, depth, patch, grid read from the weights)."""
    if "patch_embed.proj.weight" not in state or "pos_embed" not in state:
        raise UserError(f"{source}: not a ViT checkpoint (no patch_embed.proj.weight / pos_embed)")
    dim, _, patch, _ = state["patch_embed.proj.weight"].shape
    depth = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"^blocks\.(\d+)\.mlp\.fc1\.weight$", k))),
                    default=-1)
    grid = int(round((state["pos_embed"].shape[1] - 1) ** 0.5))
    if depth == 0:
        raise UserError(f"{source}: no transformer blocks found")
    if dim % num_heads:
        raise UserError(f"--num-heads {num_heads}: does not divide the embed dim {dim} of {source}")
    rel_pos_bias = "blocks.0.attn.relative_position_bias_table" in state  # an RPE fine-tuned model
    return dict(img_size=grid * patch, patch_size=patch, embed_dim=dim, depth=depth, num_heads=num_heads,
                rel_pos_bias=rel_pos_bias)


def _hiera_from_state(state, source):
    """HieraEncoder kwargs for ``state``: the registry entry whose stem width and stage lengths (read from the
    blocks' output widths) match; head counts are not in the weights, so unknown shapes are an error."""
    depth = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"^blocks\.(\d+)\.mlp\.fc2\.weight$", k))),
                    default=-1)
    widths = [state[f"blocks.{i}.mlp.fc2.weight"].shape[0] for i in range(depth)]
    stages = tuple(len(list(group)) for _, group in itertools.groupby(widths))
    embed_dim = state["patch_embed.proj.weight"].shape[0]
    for name, cfg in HIERA_CONFIGS.items():
        if cfg["embed_dim"] == embed_dim and tuple(cfg["stages"]) == stages:
            side = int(round(state["pos_embed"].shape[1] ** 0.5)) * 4
            return dict(img_size=side, **cfg)
    raise UserError(f"{source}: a Hiera with embed dim {embed_dim} and stages {stages} is not in the registry "
                    f"({', '.join(HIERA_CONFIGS)})")


def load_vit(path, num_heads):
    """A checkpoint file -> (VisionTransformer or HieraEncoder in eval mode, its constructor kwargs)."""
    state, fmt = extract_state_dict(load_checkpoint(path), source=path)
    for prefix in ("backbone.", "vit."):  # our classifier / tracker (backbone.*), segmenter (backbone.vit.*)
        state = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
    if "blocks.1.proj.weight" in state and "cls_token" not in state:  # a stage transition: Hiera
        kwargs = _hiera_from_state(state, path)
        model = HieraEncoder(**kwargs)
        weights, report = backbone_state_from_pretrained(state, model, fmt, source=path)
        if report.missing:
            raise UserError(f"{path}: weights missing for {', '.join(report.missing[:4])}")
        model.load_state_dict(weights, strict=False)
        return model.eval(), kwargs
    if "fc_norm.weight" in state and "norm.weight" not in state:  # GAP fine-tuned: fc_norm is the final norm
        state["norm.weight"], state["norm.bias"] = state.pop("fc_norm.weight"), state.pop("fc_norm.bias")
    kwargs = _vit_from_state(state, num_heads, path)
    vit = VisionTransformer(**kwargs)
    weights, report = backbone_state_from_pretrained(state, vit, fmt, source=path)
    missing = [k for k in report.missing if k != "norm.weight" and k != "norm.bias"]
    if missing:
        raise UserError(f"{path}: weights missing for {', '.join(missing[:4])}")
    vit.load_state_dict(weights, strict=False)
    return vit.eval(), kwargs


# ----------------------------------------------------------------------------------------------------------
# Images


def _collect_images(root, labels_from):
    """-> (samples [(path, label)], class names or None)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise UserError(f"--images {root}: folder not found")
    has_classes = any(os.path.isdir(os.path.join(root, e)) and not e.startswith(".") for e in os.listdir(root))
    if labels_from == "folder" or (labels_from == "auto" and has_classes):
        classes, samples = list_class_folders(root)
        if labels_from == "folder" and len(classes) < 2:
            raise UserError(f"--images {root}: layer probing needs at least 2 class folders, found {len(classes)}")
        return samples, (classes if len(classes) >= 2 else None)
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files if is_image(f))
    if not paths:
        raise UserError(f"--images {root}: no images")
    return [(p, -1) for p in paths], None


def _subset(samples, max_images, seed):
    if len(samples) <= max_images:
        return samples
    keep = np.sort(np.random.default_rng(seed).choice(len(samples), max_images, replace=False))
    return [samples[i] for i in keep]


# ----------------------------------------------------------------------------------------------------------
# Plots (matplotlib, written atomically)


def _save_figure(fig, path):
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=80, bbox_inches="tight")


def plot_cka(matrix, name_a, name_b, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(matrix, origin="lower", vmin=0, vmax=1, cmap="magma")
    ax.set_xlabel(f"layer of {name_b}")
    ax.set_ylabel(f"layer of {name_a}")
    ax.set_title("linear CKA (minibatch, unbiased HSIC)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save_figure(fig, path)
    plt.close(fig)


def plot_per_head(values, ylabel, path):
    """values: {name: (layers, heads) array} -> dots per head and the mean per layer, one colour per model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for (name, v), colour, shift in zip(values.items(), ("tab:blue", "tab:orange"), (-0.12, 0.12)):
        layers = np.arange(1, v.shape[0] + 1)
        ax.scatter(np.repeat(layers + shift, v.shape[1]), v.flatten(), s=8, alpha=0.5, color=colour)
        ax.plot(layers + shift, v.mean(1), color=colour, label=name)
    ax.set_xlabel("layer (block)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    _save_figure(fig, path)
    plt.close(fig)


def plot_probing(accuracy, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, acc in accuracy.items():
        ax.plot(range(len(acc)), acc, marker="o", label=name)
    ax.set_xlabel("representation (0 = embedding, last = final norm)")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    _save_figure(fig, path)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------------------


def run(args):
    from timm.data import create_transform

    if args.batch_size < 4:
        raise UserError(f"--batch-size {args.batch_size}: the unbiased HSIC needs at least 4 images per batch")
    samples, classes = _collect_images(args.images, args.labels_from)
    samples = _subset(samples, args.max_images, args.seed)
    if len(samples) < 4:
        raise UserError(f"--images {args.images}: {len(samples)} images, need at least 4")
    device = torch.device(args.device)
    vit_a, kwargs_a = load_vit(args.checkpoint, args.num_heads)
    models = {"A": vit_a}
    names = {"A": os.path.basename(args.checkpoint)}
    if args.checkpoint_b == "random":
        torch.manual_seed(args.seed)
        models["B"], names["B"] = type(vit_a)(**kwargs_a).eval(), "random init"
    elif args.checkpoint_b:
        models["B"], _ = load_vit(args.checkpoint_b, args.num_heads_b or args.num_heads)
        names["B"] = os.path.basename(args.checkpoint_b)
    if names.get("B") == names["A"]:
        names["B"] += " (B)"
    img_size = args.img_size or kwargs_a["img_size"]
    transform = create_transform(img_size, is_training=False, crop_pct=1.0, interpolation="bicubic")
    loader = torch.utils.data.DataLoader(ImageListDataset(samples, transform), batch_size=args.batch_size)

    other = "B" if "B" in models else "A"
    depth = {k: m.depth for k, m in models.items()}
    cka = MinibatchCKA(depth["A"] + 1, depth[other] + 1)
    # Attention distance / entropy are defined on a ViT's token grid; a Hiera gets CKA and probing only.
    vits = [k for k, m in models.items() if isinstance(m, VisionTransformer)]
    dist_sum = {k: torch.zeros(depth[k], models[k].num_heads, dtype=torch.float64) for k in vits}
    ent_sum = {k: torch.zeros(depth[k], models[k].num_heads, dtype=torch.float64) for k in vits}
    pooled = {k: [[] for _ in range(depth[k] + 1)] for k in models}
    seen = 0
    for images, _ in loader:
        images = images.to(device)
        reps = {}
        for key, vit in models.items():
            vit.to(device)
            if key not in vits:
                reps[key] = hiera_layer_outputs(vit, images)
                for layer, r in enumerate(reps[key]):
                    pooled[key][layer].append(r.mean(dim=1).cpu())
                continue
            reps[key], attns = layer_outputs(vit, images, attention=True)
            grid = images.shape[-1] // vit.patch_size
            for layer, attn in enumerate(attns):
                a = patch_only(attn)
                dist_sum[key][layer] += attention_distance(a, grid, grid, vit.patch_size).cpu() * len(images)
                ent_sum[key][layer] += attention_entropy(a).cpu() * len(images)
            for layer, r in enumerate(reps[key]):
                pooled[key][layer].append(r.mean(dim=1).cpu())
        if len(images) >= 4:  # the unbiased HSIC is undefined for < 4 examples: a tiny last batch is skipped
            cka.update(reps["A"], reps[other])
        seen += len(images)

    result = {"images": seen, "checkpoints": names, "img_size": img_size,
              "cka": cka.result().tolist(), "cka_models": [names["A"], names[other]],
              "attention_distance_px": {names[k]: (v / seen).tolist() for k, v in dist_sum.items()},
              "attention_entropy": {names[k]: (v / seen).tolist() for k, v in ent_sum.items()}}
    os.makedirs(args.output, exist_ok=True)
    plot_cka(np.array(result["cka"]), names["A"], names[other], os.path.join(args.output, "cka.png"))
    if vits:
        plot_per_head({names[k]: v.numpy() / seen for k, v in dist_sum.items()},
                      "mean attention distance (pixels)", os.path.join(args.output, "attention_distance.png"))
        plot_per_head({names[k]: v.numpy() / seen for k, v in ent_sum.items()},
                      "attention entropy (nats)", os.path.join(args.output, "attention_entropy.png"))
    if classes is not None:
        labels = [label for _, label in samples]
        fit, held = split_held_out(labels)
        if not held or not fit:
            raise UserError(f"--images {args.images}: too few images per class for a held-out split (need >= 5)")
        result["probing"] = {"classes": classes, "fit_images": len(fit), "held_out_images": len(held),
                             "accuracy": {names[k]: layer_probe_accuracy([torch.cat(p) for p in pooled[k]], labels,
                                                                         fit, held, len(classes))
                                          for k in models}}
        plot_probing(result["probing"]["accuracy"], os.path.join(args.output, "probing.png"))
    write_text_atomic(os.path.join(args.output, "analysis.json"), json.dumps(result, indent=1) + "\n")
    print(f"analyzed {seen} images: {', '.join(sorted(os.listdir(args.output)))} in {args.output}")
    return 0

"""``mimtrack segment``: ViT + Semantic FPN on an ADE20K-layout folder; mIoU and pixel accuracy.

Layout: ``DIR/images/{training,validation}/*.jpg`` with ``DIR/annotations/{training,validation}/*.png`` labels of
the same stem (0 = other/ignored, 1..150 = classes; shifted to 0..149 with 0 -> ignore, mmseg's reduce_zero_label).
Training: random rescale (ratio 0.5-2 of the (2048, 512) bound), random crop, flip; AdamW + layer decay, linear
warmup then poly decay per iteration. Evaluation: resize to the (2048, 512) bound, slide inference, logits resized
back to the original image, confusion matrix over all validation pixels.

    mimtrack segment segment_fpn_tiny_ade20k --data /data/ADEChallengeData2016 --output runs/seg --pretrained P
"""

import json
import os
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mimtrack import distributed as dist
from mimtrack import checkpoints, stopping
from mimtrack.cli import add_training_arguments, training_overrides
from mimtrack.config import to_dict
from mimtrack.errors import UserError
from mimtrack.fileio import write_text_atomic
from mimtrack.loop import NonFiniteSteps, optimise, step_decision
from mimtrack.pretrain.checkpoints import load_pretrained_backbone
from mimtrack.pretrain.hiera import check_hiera_image_size, create_hiera, is_hiera
from mimtrack.pretrain.transfer.config import load_segment_config
from mimtrack.pretrain.transfer.semantic_fpn import HieraSemanticFPN, ViTSemanticFPN, slide_inference
from mimtrack.pretrain.vit import create_vit

IGNORE = 255


def segmentation_metrics(confusion):
    """Confusion matrix (rows = ground truth, columns = prediction) -> mIoU, pixel accuracy, mean class accuracy.

    A class absent from both ground truth and prediction has IoU NaN and is left out of the mean (mmseg's
    nanmean); a class only predicted has IoU 0.
    """
    conf = np.asarray(confusion, dtype=np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {conf.shape}")
    tp = np.diag(conf)
    gt, pred = conf.sum(axis=1), conf.sum(axis=0)
    union = gt + pred - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    total = conf.sum()
    return {"mIoU": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
            "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
            "mean_accuracy": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
            "IoU": iou.tolist()}


def update_confusion(confusion, label, pred, num_classes):
    """Add the valid pixels (label != ignore) of integer arrays ``label`` / ``pred`` to ``confusion`` in place."""
    valid = label != IGNORE
    idx = label[valid].astype(np.int64) * num_classes + pred[valid].astype(np.int64)
    confusion += np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


# ----------------------------------------------------------------------------------------------------------
# Data


def list_ade_split(root, split):
    """[(image path, label path)] of one split; UserError on a missing folder, no images, or a missing label."""
    images_dir = os.path.join(root, "images", split)
    labels_dir = os.path.join(root, "annotations", split)
    for folder in (images_dir, labels_dir):
        if not os.path.isdir(folder):
            raise UserError(f"--data {root}: folder {os.path.relpath(folder, root)} not found (ADE20K layout: "
                            f"images/{split}/*.jpg, annotations/{split}/*.png)")
    names = sorted(f for f in os.listdir(images_dir) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    if not names:
        raise UserError(f"{images_dir}: no images")
    pairs = []
    for name in names:
        label = os.path.join(labels_dir, os.path.splitext(name)[0] + ".png")
        if not os.path.isfile(label):
            raise UserError(f"{os.path.join(images_dir, name)}: no label {label}")
        pairs.append((os.path.join(images_dir, name), label))
    return pairs


def read_pair(image_path, label_path, reduce_zero_label):
    image = cv2.imread(image_path, cv2.IMREAD_COLOR)
    label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"{image_path}: not a readable image")
    if label is None or label.ndim != 2:
        raise UserError(f"{label_path}: not a single-channel label PNG")
    if label.shape != image.shape[:2]:
        raise UserError(f"{label_path}: size {label.shape[::-1]} differs from its image {image.shape[1::-1]}")
    label = label.astype(np.int64)
    if reduce_zero_label:  # 0 (other) -> ignore, k -> k - 1
        label = np.where(label == 0, IGNORE, label - 1)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), label.astype(np.uint8)


def bounded_scale(h, w, bound):
    """Factor that fits (h, w) inside the (long, short) bound keeping the aspect ratio (mmseg keep_ratio)."""
    long_side, short_side = max(bound), min(bound)
    return min(long_side / max(h, w), short_side / min(h, w))


class ADE20KDataset(torch.utils.data.Dataset):
    def __init__(self, pairs, cfg, train):
        self.pairs, self.cfg, self.train = pairs, cfg, train
        self.mean = np.array(cfg.mean, np.float32) * 255
        self.std = np.array(cfg.std, np.float32) * 255

    def __len__(self):
        return len(self.pairs)

    def normalise(self, image):
        return torch.from_numpy(((image.astype(np.float32) - self.mean) / self.std).transpose(2, 0, 1).copy())

    def __getitem__(self, index):
        image, label = read_pair(*self.pairs[index], self.cfg.reduce_zero_label)
        h, w = label.shape
        if not self.train:  # resized image for the network, original-size label for the metric
            s = bounded_scale(h, w, self.cfg.scale)
            size = (max(int(w * s + 0.5), 1), max(int(h * s + 0.5), 1))
            return self.normalise(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)), torch.from_numpy(label)
        lo, hi = self.cfg.ratio_range
        s = bounded_scale(h, w, [int(b * np.random.uniform(lo, hi)) for b in self.cfg.scale])
        size = (max(int(w * s + 0.5), 1), max(int(h * s + 0.5), 1))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        crop = self.cfg.crop_size
        y = np.random.randint(0, max(label.shape[0] - crop, 0) + 1)
        x = np.random.randint(0, max(label.shape[1] - crop, 0) + 1)
        image, label = image[y:y + crop, x:x + crop], label[y:y + crop, x:x + crop]
        if np.random.rand() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        tensor = self.normalise(image)
        ph, pw = crop - label.shape[0], crop - label.shape[1]  # pad to the crop: zeros (image), ignore (label)
        tensor = F.pad(tensor, (0, pw, 0, ph))
        label = np.pad(label, ((0, ph), (0, pw)), constant_values=IGNORE)
        return tensor, torch.from_numpy(label.astype(np.int64))


# ----------------------------------------------------------------------------------------------------------
# Training


def build_model(cfg):
    m = cfg.model
    if is_hiera(m.arch):  # q-pool 3: stage outputs at strides 4 / 8 / 16 / 32, built at the crop size
        check_hiera_image_size(cfg.data.crop_size, "data.crop_size")
        hiera = create_hiera(m.arch, img_size=cfg.data.crop_size, drop_path_rate=m.drop_path,
                             embed_dim=m.embed_dim, num_heads=m.num_heads)
        if cfg.pretrained:
            report = load_pretrained_backbone(hiera, cfg.pretrained)  # pos_embed resized to the crop's grid
            if dist.is_main():
                print(f"pretrained {cfg.pretrained}: {report.summary()}")
        return HieraSemanticFPN(hiera, m.num_classes, m.fpn_channels, m.head_channels, m.dropout)
    vit = create_vit(m.arch, img_size=cfg.data.crop_size, patch_size=m.patch_size, embed_dim=m.embed_dim,
                     depth=m.depth, num_heads=m.num_heads, drop_path_rate=m.drop_path, rel_pos_bias=m.rel_pos_bias)
    if cfg.pretrained:
        report = load_pretrained_backbone(vit, cfg.pretrained)  # pos_embed resized to the crop's grid
        if dist.is_main():
            print(f"pretrained {cfg.pretrained}: {report.summary()}")
    if max(m.out_indices) >= vit.depth or min(m.out_indices) < 0:
        raise UserError(f"config model.out_indices={m.out_indices}: the ViT has {vit.depth} blocks")
    return ViTSemanticFPN(vit, m.num_classes, m.out_indices, m.fpn_channels, m.head_channels, m.dropout)


def build_optimizer(cfg, model):
    from timm.optim import create_optimizer_v2
    from timm.scheduler import PolyLRScheduler

    o = cfg.optim
    optimizer = create_optimizer_v2(model, opt="adamw", lr=o.lr, weight_decay=o.weight_decay,
                                    layer_decay=o.layer_decay, betas=tuple(o.betas))
    warmup = min(o.warmup_iters, cfg.train.iters - 1)
    scheduler = PolyLRScheduler(optimizer, t_initial=max(cfg.train.iters - warmup, 1), power=o.poly_power,
                                lr_min=o.min_lr, warmup_t=warmup, warmup_lr_init=o.lr * o.warmup_ratio,
                                warmup_prefix=True, t_in_epochs=False)
    return optimizer, scheduler


@torch.no_grad()
def evaluate(model, dataset, cfg, device):
    """Confusion matrix over this rank's share of ``dataset``, summed over ranks, -> metrics."""
    model.eval()
    c = cfg.model.num_classes
    confusion = np.zeros((c, c), dtype=np.int64)
    for index in range(dist.get_rank(), len(dataset), dist.get_world_size()):
        image, label = dataset[index]
        with dist.autocast(cfg.train.amp, device):
            logits = slide_inference(model, image[None].to(device), c, cfg.data.crop_size, cfg.train.slide_stride)
        logits = F.interpolate(logits, size=tuple(label.shape), mode="bilinear", align_corners=False)
        update_confusion(confusion, label.numpy(), logits.argmax(1)[0].cpu().numpy(), c)
    total = dist.all_reduce_mean(torch.from_numpy(confusion).double().to(device)) * dist.get_world_size()
    return segmentation_metrics(total.round().cpu().numpy())


def add_arguments(parser):
    parser.add_argument("config", help="recipe name in experiments/transfer/ or a YAML path")
    parser.add_argument("--data", required=True, help="ADE20K-layout folder (images/, annotations/)")
    parser.add_argument("--pretrained", help="pre-trained ViT checkpoint (overrides the recipe's)")
    add_training_arguments(parser, "output folder (checkpoints, metrics.json)", length="iters")


def _infinite(loader, sampler):
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def run(args):
    overrides = training_overrides(args, length="iters")
    if args.pretrained:
        overrides.append(f"pretrained={args.pretrained}")
    cfg = load_segment_config(args.config, overrides)
    if not os.path.isdir(args.data):
        raise UserError(f"--data {args.data}: folder not found")
    train_pairs, val_pairs = list_ade_split(args.data, "training"), list_ade_split(args.data, "validation")
    info = dist.init_distributed(cfg.train.device)
    try:
        dist.check_amp(cfg.train.amp, info.device)
        scaler = dist.grad_scaler(cfg.train.amp)
        nan_steps = NonFiniteSteps(cfg.train.max_nan_steps, info.is_main, hint="lower optim.lr or check the data")
        last_path = os.path.join(args.output, checkpoints.LAST_NAME)

        def save_state(done):
            if info.is_main:
                checkpoints.save_checkpoint(last_path, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(), "iter": done,
                    "history": history, "config": to_dict(cfg), "rng": checkpoints.rng_state()})
            return last_path

        torch.manual_seed(cfg.train.seed + info.rank)
        np.random.seed(cfg.train.seed + info.rank)
        model = build_model(cfg).to(info.device)
        optimizer, scheduler = build_optimizer(cfg, model)
        start, history = 0, []
        if args.resume and (path := checkpoints.latest_checkpoint(args.output)):
            ckpt = checkpoints.resume_training_state(path, model, optimizer)
            start, history = ckpt["iter"], ckpt["history"]
        net = model
        if info.distributed:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
        train_set = ADE20KDataset(train_pairs, cfg.data, train=True)
        sampler = (torch.utils.data.DistributedSampler(train_set, info.world_size, info.rank, seed=cfg.train.seed)
                   if info.distributed else None)
        loader = torch.utils.data.DataLoader(train_set, cfg.data.batch_size, shuffle=sampler is None,
                                             worker_init_fn=stopping.worker_ignores_stop_signals,
                                             sampler=sampler, drop_last=len(train_set) >= cfg.data.batch_size,
                                             num_workers=cfg.data.num_workers, pin_memory=info.device.type == "cuda")
        val_set = ADE20KDataset(val_pairs, cfg.data, train=False)
        if info.is_main:
            print(f"segment {cfg.name or args.config}: {len(train_pairs)} train / {len(val_pairs)} val images, "
                  f"{cfg.model.num_classes} classes, iterations {start}..{cfg.train.iters}")
        os.makedirs(args.output, exist_ok=True)
        batches = _infinite(loader, sampler)
        started, running = time.time(), 0.0
        with stopping.StopSignals() as stop:
            for it in range(start, cfg.train.iters):
                net.train()
                scheduler.step_update(it)
                images, labels = next(batches)
                images, labels = images.to(info.device), labels.to(info.device)
                with dist.autocast(cfg.train.amp, info.device):
                    logits = net(images)
                loss = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE)
                loss_bad, stop_now = step_decision(loss, stop.requested, info)
                done = it + 1
                if loss_bad:
                    nan_steps.skipped(f"iteration {it}", loss.detach(), save=lambda: save_state(done))
                else:
                    nan_steps.ok()
                    optimise(loss, optimizer, scaler)
                    running += loss.item()
                if done % cfg.train.eval_every == 0 or done == cfg.train.iters:
                    scores = evaluate(model, val_set, cfg, info.device)
                    history.append({"iter": done, "loss": running / max(done - start, 1),
                                    "mIoU": scores["mIoU"], "pixel_accuracy": scores["pixel_accuracy"],
                                    "seconds": round(time.time() - started, 1)})
                    if info.is_main:
                        print(json.dumps(history[-1]))
                if done % cfg.train.checkpoint_every == 0 or done == cfg.train.iters or stop_now:
                    save_state(done)
                if stop_now:
                    if info.is_main:
                        print(f"stopped by {stop.signal_name} at iteration {done}; resume with --resume")
                    stop.raise_if_signalled()   # after the checkpoint: the command exits 130 / 143
                    return 130
        if start >= cfg.train.iters or not history or history[-1]["iter"] != cfg.train.iters:
            scores = evaluate(model, val_set, cfg, info.device)
        if info.is_main:
            metrics = {"mIoU": scores["mIoU"], "pixel_accuracy": scores["pixel_accuracy"],
                       "mean_accuracy": scores["mean_accuracy"],
                       "IoU": [None if v != v else v for v in scores["IoU"]],
                       "iters": cfg.train.iters, "config": cfg.name, "val_images": len(val_pairs),
                       "history": history}
            write_text_atomic(os.path.join(args.output, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    finally:
        dist.cleanup()
    return 0

"""``mimtrack pretrain``: pre-train a ViT backbone from a recipe (one process, or torchrun for DDP).

    mimtrack pretrain mae_tiny --data /data/imagenet --output runs/mae_tiny
    torchrun --nproc_per_node 8 -m mimtrack.cli pretrain mae_tiny_distill --data ... --output ... \\
        --teacher mae_pretrain_vit_base.pth --device cuda
    mimtrack pretrain mae_tiny --data ... --output runs/mae_tiny --resume      # continue after a stop

The output's ``last.pth`` initialises a tracker: ``mimtrack train ... --set train.pretrained=runs/.../last.pth``.
"""

from mimtrack.cli import add_training_arguments, training_overrides


def add_arguments(parser):
    parser.add_argument("config", help="a recipe in experiments/pretrain (mae_tiny, mae_tiny_distill, mae_tiny_d2, "
                        "mocov3_tiny, mae_small, mae_hiera_tiny, mae_hiera_tiny_distill, smoke_cpu, smoke_photo_mae) "
                        "or a YAML path")
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="images: DIR/train/<class>/*.jpg (ImageNet layout), DIR/train/*.jpg, or an LMDB")
    parser.add_argument("--teacher", metavar="CKPT", help="distillation teacher checkpoint (distill.teacher)")
    add_training_arguments(parser, "run folder: last.pth, log.json")


def run(args):
    import os
    import sys

    from mimtrack.config import load_config
    from mimtrack.errors import UserError
    from mimtrack.pretrain.config import PretrainConfig, check_config
    from mimtrack.pretrain.engine import train

    overrides = training_overrides(args)
    cfg = load_config(PretrainConfig, args.config, kind="pretrain", overrides=overrides)
    if args.teacher is not None:
        if not os.path.isfile(args.teacher):
            raise UserError(f"--teacher {args.teacher}: file not found")
        if not cfg.distill.enabled:
            print(f"warning: --teacher {args.teacher} is unused: recipe {cfg.name or args.config!r} does not distil "
                  "(distill.enabled is false)", file=sys.stderr)
    if args.epochs is not None and cfg.train.warmup_epochs > cfg.train.epochs:
        # A short run keeps a proportional warm-up rather than never leaving it.
        print(f"--epochs {args.epochs}: warm-up shortened from {cfg.train.warmup_epochs} to {args.epochs // 10} epochs")
        cfg.train.warmup_epochs = args.epochs // 10
    train(check_config(cfg), args.data, args.output, teacher=args.teacher, resume=args.resume)
    return 0

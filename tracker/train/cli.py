"""``mimtrack train``: train a tracker from a recipe, on one process or under ``torchrun`` (DDP).

    mimtrack train vit_tiny_256_ce --output runs/tiny --data lasot=/data/lasot --data got10k=/data/got10k ...
    torchrun --nproc_per_node 4 -m mimtrack.cli train vit_base_256_ce --output runs/base --paths paths.yaml --device cuda
    mimtrack train vit_tiny_256_ce --output runs/tiny --paths paths.yaml --resume   # after a stop or a crash

Ctrl-C / SIGTERM checkpoints the exact position (epoch, step, optimizer, RNG) and exits 130 / 143 (not finished);
--resume continues it.
"""

from mimtrack.cli import add_training_arguments, training_overrides


def add_arguments(parser):
    parser.add_argument("config", help="tracker recipe: a name in experiments/tracking or a YAML path")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=DIR",
                        help="where a training dataset lives, e.g. lasot=/data/lasot (repeatable)")
    parser.add_argument("--paths", help="YAML file 'name: folder' with the dataset locations")
    add_training_arguments(parser, "run folder: config.yaml, metrics.jsonl, checkpoints")


def run(args):
    from mimtrack import distributed
    from mimtrack.errors import UserError
    from mimtrack.tracker.config import load_tracker_config
    from mimtrack.tracker.data import resolve_locations
    from mimtrack.tracker.train.trainer import Trainer, check_train_config, data_loader_factory

    cfg = check_train_config(load_tracker_config(args.config, training_overrides(args)))
    if not cfg.data.train:
        raise UserError(f"config {args.config}: data.train lists no datasets to train on")
    locations = resolve_locations(args.data, args.paths)
    info = distributed.init_distributed(cfg.train.device)
    try:
        factory = data_loader_factory(cfg, locations, info)
        trainer = Trainer(cfg, args.output, factory, dist_info=info, resume=args.resume)
        last = trainer.fit()
        if info.is_main:
            print(f"checkpoint: {last}")
    finally:
        distributed.cleanup()
    return 0

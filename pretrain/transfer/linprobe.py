"""``mimtrack linprobe``: train a BatchNorm + linear head on a frozen ViT (MAE's linear-probing protocol).

    mimtrack linprobe linprobe_tiny_in1k --data /data/imagenet --output runs/lp --pretrained mae_tiny_400e.pth.tar
"""

from mimtrack.pretrain.transfer import classify


def add_arguments(parser):
    classify.add_arguments(parser)


def run(args):
    return classify.run_classification(args, probe=True)

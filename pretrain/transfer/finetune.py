"""``mimtrack finetune``: fine-tune every weight of a ViT classifier on an ImageNet-layout folder.

    mimtrack finetune finetune_tiny_in1k --data /data/imagenet --output runs/ft --pretrained mae_tiny_400e.pth.tar
    torchrun --nproc_per_node 8 -m mimtrack.cli finetune finetune_tiny_in1k --data ... --output ...
"""

from mimtrack.pretrain.transfer import classify


def add_arguments(parser):
    classify.add_arguments(parser)


def run(args):
    return classify.run_classification(args, probe=False)

"""``mimtrack vot-server``: a TraX server, so that vot-toolkit runs a mimtrack tracker itself (``vot evaluate``).

    mimtrack vot-server --config vit_tiny_256_ce --checkpoint W.pth [--device cuda] [--backend openvino]

Speaks TraX through the ``vot-trax`` package (``pip install "mimtrack[vot]"``) on stdin/stdout, or on the socket
the toolkit names in ``TRAX_SOCKET``: rectangles (the client converts polygons and masks to their bounding box)
and image paths; each reply carries the tracker's ``confidence``. Python output is sent to stderr so that
nothing else reaches the TraX channel. A ``trackers.ini`` entry:

    [mimtrack_tiny]
    label = mimtrack ViT-Tiny
    protocol = trax
    command = mimtrack vot-server --config vit_tiny_256_ce --checkpoint /abs/path/W.pth
"""

import sys

from mimtrack.errors import UserError


def add_arguments(parser):
    parser.add_argument("--config", help="tracker recipe: a name in experiments/tracking or a YAML path "
                        "(with --checkpoint; both absent: the bundled demo tracker)")
    parser.add_argument("--checkpoint", help="tracker checkpoint (.pth)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the recipe's inference.device)")
    from mimtrack.tracker.backends import add_arguments as add_backend_arguments

    add_backend_arguments(parser)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value (repeatable)")
    parser.add_argument("--log", metavar="FILE", help="write libtrax's protocol log to this file")


def serve(tracker, read_image, log=False):
    """Answer TraX requests until the client quits: initialise on the region's bounding box, reply boxes."""
    import trax

    with trax.Server([trax.Region.RECTANGLE], [trax.Image.PATH], tracker_name="mimtrack",
                     tracker_description="mimtrack one-stream ViT tracker", log=log) as server:
        while True:
            request = server.wait()
            if request.type == trax.TraxStatus.QUIT:
                break
            image = read_image(request.image[trax.ImageChannel.COLOR].path())
            if request.type == trax.TraxStatus.INITIALIZE:
                box = list(request.objects[0][0].bounds())
                tracker.initialize(image, box)
                confidence = 1.0
            else:
                result = tracker.track(image)
                box, confidence = result["box"], result.get("score", 1.0)
            server.status([(trax.Rectangle.create(*[float(v) for v in box]), {"confidence": float(confidence)})])


def run(args):
    try:
        import trax   # fail before loading a model
    except ImportError:
        raise UserError("vot-server needs the vot-trax package: pip install vot-trax (or mimtrack[vot])") from None
    from mimtrack.images import read_image_rgb
    from mimtrack.tracker.inference import load_tracker

    # The TraX channel may be this process's stdout: keep Python's own output off it.
    sys.stdout = sys.stderr
    tracker = load_tracker(config=args.config, checkpoint=args.checkpoint, device=args.device,
                           overrides=args.overrides, backend=args.backend, threads=args.threads,
                           precision=args.precision, calibration=args.calibration)
    try:
        serve(tracker, read_image_rgb, log=args.log or False)
    except trax.TraxException as exc:
        raise UserError(f"TraX: {exc}") from None
    return 0

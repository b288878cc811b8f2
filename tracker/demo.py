"""``mimtrack demo``: track one object in a video file or an image folder.

Frames are converted BGR -> RGB before tracking (OSTrack's video demo forgets this; its networks are trained on
RGB). Without a video, a short generated clip is tracked with the bundled demo tracker.
"""

import os
import sys
import time

import cv2
import numpy as np

from mimtrack.evaluation.datasets._common import list_frames
from mimtrack.errors import UserError
from mimtrack.images import IMAGE_EXTENSIONS
from mimtrack.fileio import (check_output_path, disk_full, disk_full_error, replace_checked, temp_path_beside,
                             write_text_atomic)

DEFAULT_FPS = 30.0
WINDOW = "mimtrack demo"


def add_arguments(parser):
    parser.add_argument("source", nargs="?", metavar="VIDEO|IMAGE_FOLDER",
                        help="a video OpenCV can read, or a folder of images (natural order: 2.jpg before 10.jpg); "
                        "absent: a generated clip tracked by the bundled demo tracker")
    parser.add_argument("--init", metavar="X,Y,W,H",
                        help="the object's box in the first frame, in pixels (absent: draw it, needs a display)")
    parser.add_argument("--config", help="tracker recipe: a name in experiments/tracking or a YAML path")
    parser.add_argument("--checkpoint", help="tracker checkpoint (.pth)")
    parser.add_argument("--output", metavar="OUT.mp4", help="write the video with the boxes drawn (mp4v)")
    parser.add_argument("--boxes", metavar="OUT.txt", help="write one x,y,w,h row per frame")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the recipe's inference.device)")
    from mimtrack.tracker.backends import add_arguments as add_backend_arguments

    add_backend_arguments(parser)
    parser.add_argument("--show", action="store_true", help="show the tracking live (q or Esc stops)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value (repeatable)")


def parse_init(text):
    """``"x,y,w,h"`` -> four floats."""
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(np.isfinite(values)):
        raise UserError(f"--init {text!r}: expected x,y,w,h (four numbers, pixels)")
    return values


class FrameSource:
    """RGB frames of a video file or of an image folder, read one at a time."""

    def __init__(self, path):
        self.path = path
        self.capture = None
        self.files = None
        if os.path.isdir(path):
            self.files = list_frames(path, IMAGE_EXTENSIONS)   # natural order: 2.jpg before 10.jpg
            if not self.files:
                raise UserError(f"{path}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            self.fps = DEFAULT_FPS
        elif os.path.isfile(path):
            self.capture = cv2.VideoCapture(path)
            if not self.capture.isOpened():
                raise UserError(f"{path}: cannot open it as a video (not a format OpenCV reads)")
            fps = self.capture.get(cv2.CAP_PROP_FPS)
            self.fps = fps if np.isfinite(fps) and 0 < fps < 1000 else DEFAULT_FPS
        else:
            raise UserError(f"{path}: no such video file or image folder")

    def __iter__(self):
        from mimtrack.images import read_image_rgb

        if self.files is not None:
            for path in self.files:
                yield read_image_rgb(path)
            return
        while True:
            ok, frame = self.capture.read()
            if not ok:
                break
            if frame.ndim == 2 or frame.shape[2] == 1:
                yield cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
            else:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self):
        if self.capture is not None:
            self.capture.release()


class VideoOutput:
    """An mp4v video written to a temporary file beside ``path`` and renamed onto it by :meth:`commit` only when
    it is complete: OpenCV's writer reports no write errors (a full disk gives an unplayable file), so the file is
    opened again and its frame count checked before it replaces anything."""

    def __init__(self, path, fps, size):
        self.path, self.size, self.frames = path, size, 0
        self.tmp = temp_path_beside(path, suffix=os.path.splitext(path)[1] or ".mp4")
        self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            full = disk_full(os.path.dirname(self.tmp))
            self.discard()
            if full:
                raise disk_full_error(path)
            raise UserError(f"--output {path}: OpenCV cannot write this video format (use .mp4)")

    def write(self, frame_bgr):
        if (frame_bgr.shape[1], frame_bgr.shape[0]) != self.size:   # frames changed size: fit the first one's
            frame_bgr = cv2.resize(frame_bgr, self.size)
        self.writer.write(frame_bgr)
        self.frames += 1

    def commit(self):
        self.writer.release()
        capture = cv2.VideoCapture(self.tmp)
        readable = capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == self.frames
        capture.release()
        if not readable:
            full = disk_full(os.path.dirname(self.tmp))
            self.discard()
            if full:
                raise disk_full_error(self.path)
            raise UserError(f"--output {self.path}: OpenCV failed to write the video (the file it wrote does not "
                            f"hold the {self.frames} frames); the previous file, if any, is unchanged")
        replace_checked(self.tmp, self.path)

    def discard(self):
        self.writer.release()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def has_display():
    """True when OpenCV can open a window here (a GUI build and, on Linux, an X or Wayland display)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow(WINDOW)
        cv2.destroyWindow(WINDOW)
    except cv2.error:   # opencv-python-headless has no GUI
        return False
    return True


def select_box(frame_rgb):
    """Let the user draw the object's box on the first frame."""
    x, y, w, h = cv2.selectROI(WINDOW + ": draw the box, then Enter", cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR),
                               showCrosshair=True)
    cv2.destroyAllWindows()
    if w <= 0 or h <= 0:
        raise UserError("no box drawn on the first frame")
    return [float(x), float(y), float(w), float(h)]


def draw(frame_rgb, box, score=None):
    """The frame as BGR with the box (and score) drawn."""
    image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(image, (x, y), (x + w, y + h), (0, 255, 0), 2)
    if score is not None:
        cv2.putText(image, f"{score:.2f}", (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
    return image


def run(args):
    from mimtrack.tracker.checkpoints import DEMO_WEIGHTS
    from mimtrack.tracker.inference import load_tracker

    init = parse_init(args.init) if args.init is not None else None
    for option, path in (("--output", args.output), ("--boxes", args.boxes)):
        if path:
            check_output_path(path, option)    # before tracking every frame, not after
    source_path = args.source
    if source_path is None:
        if args.config is None and args.checkpoint is None and not DEMO_WEIGHTS.is_file():
            print("mimtrack demo: no bundled demo weights in this version: "
                  "run 'mimtrack demo VIDEO --config C --checkpoint W'")
            return 0
        from mimtrack.tracker.clip import demo_clip
        folder, gt = demo_clip()
        source_path = str(folder)
        init = init if init is not None else list(gt[0])
    source = FrameSource(source_path)
    try:
        return _track_video(args, source, init, load_tracker)
    finally:
        source.close()
        if args.show:
            cv2.destroyAllWindows()


def _track_video(args, source, init, load_tracker):
    if args.show and not has_display():
        raise UserError("--show: no display available (or OpenCV was built without GUI support)")
    tracker = load_tracker(args.config, args.checkpoint, device=args.device, overrides=args.overrides,
                           backend=args.backend, threads=args.threads, precision=args.precision,
                           calibration=args.calibration)
    frames = iter(source)
    start = time.perf_counter()
    first = next(frames, None)
    if first is None:
        raise UserError(f"{source.path}: no frame could be decoded")
    if init is None:
        if not has_display():
            raise UserError("no --init x,y,w,h given and no display to draw the box on")
        init = select_box(first)
    tracker.initialize(first, init)

    output = VideoOutput(args.output, source.fps, (first.shape[1], first.shape[0])) if args.output else None
    boxes, track_seconds = [list(tracker.state)], 0.0
    try:
        keep_going = _emit(first, tracker.state, None, output, args.show)
        for frame in frames:
            if not keep_going:
                break
            tic = time.perf_counter()
            result = tracker.track(frame)          # timed: crop + normalise + network + decode + map back
            track_seconds += time.perf_counter() - tic
            boxes.append(result["box"])
            keep_going = _emit(frame, result["box"], result["score"], output, args.show)
        if output is not None:
            output.commit()
    except BaseException:
        if output is not None:
            output.discard()
        raise
    total_seconds = time.perf_counter() - start

    if args.boxes:
        write_text_atomic(args.boxes, "".join(",".join(f"{v:.4f}" for v in b) + "\n" for b in boxes))
    tracked = len(boxes) - 1
    print(f"{len(boxes)} frames of {source.path}")
    if tracked:
        print(f"tracker: {tracked / track_seconds:.1f} frames/s (per frame, end to end: crop, normalisation, "
              f"network and box post-processing; frame decoding, drawing and writing excluded; first frame "
              f"(initialisation) excluded)")
        print(f"overall: {len(boxes) / total_seconds:.1f} frames/s (everything from the first frame read to the "
              f"last frame written)")
    for name, path in (("video", args.output), ("boxes", args.boxes)):
        if path:
            print(f"{name}: {path}")
    return 0


def _emit(frame_rgb, box, score, output, show):
    """Draw, write and show one frame; False when the user asked to stop."""
    if output is None and not show:
        return True
    image = draw(frame_rgb, box, score)
    if output is not None:
        output.write(image)
    if show:
        cv2.imshow(WINDOW, image)
        if (cv2.waitKey(1) & 0xFF) in (ord("q"), 27):
            return False
    return True

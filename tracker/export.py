"""``mimtrack export``: the tracker network as an ONNX graph, for ONNX Runtime and other runtimes.

Two graphs, both the whole network with candidate elimination (the kept-token count is fixed, so every shape is
static), inputs ``template`` (1, 3, Hz, Wz) and ``search`` (1, 3, Hx, Wx), ImageNet-normalised RGB float32:

* ``track`` (the default, what ``load_tracker(backend="onnxruntime")`` runs): one tracking step. Third input
  ``window`` (1, 1, fs, fs), the score-map window (Hann, or ones); outputs ``score_map`` (1, 1, fs, fs), ``box``
  (1, 4) (cx, cy, w, h normalised to the search crop, decoded at the peak of ``score_map * window``) and ``peak``
  (1,) that cell's flat index. Size and offset are computed at that cell only (:meth:`OSTrack.locate`).
* ``maps``: the network's raw outputs as OSTrack returns them, ``score_map`` (1, 1, fs, fs), ``size_map`` and
  ``offset_map`` (1, 2, fs, fs); decoding is then the caller's.

Attention outside the candidate-elimination blocks is exported as one ONNX Runtime ``com.microsoft.Attention``
node per block (QKV projection, softmax attention, heads merged: no transposes between them); the elimination
blocks keep explicit ops, since they need the attention probabilities. Cropping and mapping back stay outside
(see :class:`mimtrack.tracker.tracking.Tracker`).

    mimtrack export --config vit_tiny_256_ce --checkpoint tracker.pth --out tracker.onnx [--graph maps] [--int8]
"""

import contextlib
import copy
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import shutil
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from mimtrack import fileio
from mimtrack.errors import UserError
from mimtrack.fileio import atomic_write
from mimtrack.images import IMAGE_EXTENSIONS

GRAPHS = {"track": (("template", "search", "window"), ("score_map", "box", "peak")),
          "maps": (("template", "search"), ("score_map", "size_map", "offset_map"))}
DEFAULT_OPSET = 20   # Gelu is one operator from opset 20
CACHE_FORMAT = 3     # bump when the exported (or quantised) graph changes for the same weights and config


@torch.library.custom_op("mimtrack::self_attention", mutates_args=())
def self_attention(x: torch.Tensor, qkv_weight: torch.Tensor, qkv_bias: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Multi-head self-attention before the output projection: (B, N, C) -> (B, N, C), heads merged. An opaque
    operator for the exporter, which writes it as one ``com.microsoft.Attention`` node."""
    b, n, c = x.shape
    qkv = F.linear(x, qkv_weight, qkv_bias).reshape(b, n, 3, num_heads, c // num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)


@self_attention.register_fake
def _self_attention_shape(x, qkv_weight, qkv_bias, num_heads):
    return torch.empty_like(x)


def _contrib_attention():
    """ONNX Runtime's ``com.microsoft.Attention`` as an onnxscript operator. The exporter needs an operator
    schema and ONNX ships none for contrib operators, so the part we use is registered once: inputs input
    (B, N, C), weights (C, 3C), bias (3C,); output (B, N, C); attribute num_heads."""
    import onnx
    import onnxscript

    schema = onnx.defs.OpSchema
    try:
        onnx.defs.get_schema("Attention", 1, "com.microsoft")
    except onnx.defs.SchemaError:
        onnx.defs.register_schema(schema(
            "Attention", "com.microsoft", 1,
            inputs=[schema.FormalParameter(name, "T") for name in ("input", "weights", "bias")],
            outputs=[schema.FormalParameter("output", "T")],
            type_constraints=[("T", ["tensor(float)"], "float32")],
            attributes=[schema.Attribute("num_heads", schema.AttrType.INT, "number of attention heads")]))
    return onnxscript.values.Opset("com.microsoft", 1).Attention


def _self_attention_onnx(x, qkv_weight, qkv_bias, num_heads: int):
    from onnxscript import opset20 as op

    # Attention's weight is (C, 3C), [Q | K | V] columns with each head's columns together: nn.Linear's, transposed.
    return _contrib_attention()(x, op.Transpose(qkv_weight, perm=[1, 0]), qkv_bias, num_heads=num_heads)


class FusedAttention(torch.nn.Module):
    """Wraps a :class:`mimtrack.pretrain.vit.Attention` for export: the softmax attention is :func:`self_attention`.
    Calls asking for the probabilities (candidate elimination) go to the wrapped module unchanged."""

    def __init__(self, attn):
        super().__init__()
        self.attn = attn

    def forward(self, x, return_attention=False):
        if return_attention:
            return self.attn(x, return_attention=True)
        a = self.attn
        return a.proj_drop(a.proj(torch.ops.mimtrack.self_attention(x, a.qkv.weight, a.qkv.bias, a.num_heads)))


class MapsOnly(torch.nn.Module):
    """The tracker network returning just the three maps: the ``maps`` graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, template, search):
        out = self.model(template, search)
        return out["score_map"], out["size_map"], out["offset_map"]


class TrackingStep(torch.nn.Module):
    """One tracking step, :meth:`OSTrack.locate` with the template embedded inside: the ``track`` graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, template, search, window):
        return self.model.locate(self.model.backbone.embed_template(template), search, window)


GRAPH_MODULES = {"track": TrackingStep, "maps": MapsOnly}


def graph_module(model, graph="track"):
    """A float32 CPU copy of ``model`` as the module exported for ``graph``, attention blocks fused."""
    model = copy.deepcopy(model).to("cpu").float().eval()
    for block in getattr(getattr(model, "backbone", None), "blocks", []):
        block.attn = FusedAttention(block.attn)
    return GRAPH_MODULES[graph](model).eval()


def example_inputs(cfg, graph="track", seed=0):
    """Random normalised (template, search) of the recipe's sizes, and for ``track`` a random window."""
    generator = torch.Generator().manual_seed(seed)
    t, s = cfg.crop.template_size, cfg.crop.search_size
    inputs = (torch.randn(1, 3, t, t, generator=generator), torch.randn(1, 3, s, s, generator=generator))
    if graph == "track":
        fs = s // cfg.model.backbone.patch_size
        inputs += (torch.rand(1, 1, fs, fs, generator=generator),)
    return inputs


def export_onnx(model, cfg, path, opset=DEFAULT_OPSET, graph="track"):
    """Export ``model`` (built from ``cfg``) as the ``graph`` graph to ``path`` (one file, written atomically)."""
    if opset < 20:
        raise UserError(f"--opset {opset}: must be >= 20 (Gelu)")
    if graph not in GRAPHS:
        raise UserError(f"--graph {graph!r}: expected one of {', '.join(GRAPHS)}")
    input_names, output_names = GRAPHS[graph]
    # torch.export-based exporter: the legacy tracer freezes the candidate-elimination indices of the example.
    with contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(
            graph_module(model, graph), example_inputs(cfg, graph), input_names=list(input_names),
            output_names=list(output_names), opset_version=opset, dynamo=True, external_data=False,
            custom_translation_table={torch.ops.mimtrack.self_attention.default: _self_attention_onnx})
    with atomic_write(path, "wb") as f:
        f.write(program.model_proto.SerializeToString())
    return pathlib.Path(path)


def quantize_onnx_int8(src, dst):
    """ONNX Runtime dynamic int8 quantisation of ``src`` -> ``dst``: the weights of the MatMul and fused Attention
    nodes in int8, their activations quantised per call; the head's convolutions stay float32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    directory = pathlib.Path(dst).resolve().parent
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".tmp-quant-") as tmp:
        out = pathlib.Path(tmp) / "int8.onnx"
        quantize_dynamic(os.fspath(src), os.fspath(out), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Attention"])
        os.replace(out, dst)
    return pathlib.Path(dst)


def max_differences(model, path, cfg, graph="track", seed=1):
    """Largest |torch - onnxruntime| of each float output on one random input: {name: float}; for ``track`` also
    ``peak``: 0 when both chose the same cell, else 1."""
    import onnxruntime as ort

    inputs = example_inputs(cfg, graph, seed)
    with torch.inference_mode():
        expected = GRAPH_MODULES[graph](model).to("cpu").eval()(*inputs)
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    input_names, output_names = GRAPHS[graph]
    got = session.run(list(output_names), {n: t.numpy() for n, t in zip(input_names, inputs)})
    diffs = {}
    for name, g, e in zip(output_names, got, expected):
        g = torch.from_numpy(g)
        diffs[name] = float((g != e).any()) if name == "peak" else float((g - e.float()).abs().max())
    return diffs


def model_key(model, cfg, opset=DEFAULT_OPSET):
    """Hex digest of everything the exported graph depends on: the weights (whatever checkpoint they came
    from), the model/crop config, the opset and the torch / onnx / onnxruntime versions."""
    import onnx
    import onnxruntime

    digest = hashlib.sha256()
    header = {"model": dataclasses.asdict(cfg.model), "crop": dataclasses.asdict(cfg.crop), "opset": opset,
              "format": CACHE_FORMAT, "versions": [torch.__version__, onnx.__version__, onnxruntime.__version__]}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:32]


def cached_onnx(model, cfg, int8=False, cache_dir=None, refresh=False):
    """Path of ``model``'s ``track`` graph (int8: dynamically quantised) in the cache, exported on first use.
    ``refresh``: delete the cached files first (they would not load) and export again."""
    cache_dir = pathlib.Path(cache_dir) if cache_dir else fileio.cache_dir("onnx")
    key = model_key(model, cfg)
    path = cache_dir / f"{cfg.name or 'tracker'}-{key}.onnx"
    if refresh:
        for stale in (path, cache_dir / f"{cfg.name or 'tracker'}-{key}-int8.onnx"):
            stale.unlink(missing_ok=True)
    if not path.is_file():
        export_onnx(model, cfg, path)
    if not int8:
        return path
    int8_path = cache_dir / f"{cfg.name or 'tracker'}-{key}-int8.onnx"
    if not int8_path.is_file():
        quantize_onnx_int8(path, int8_path)
    return int8_path


# --- OpenVINO: static int8 calibrated on real crops (the float graphs run from the cached ONNX file) ---------------

CALIBRATION_SAMPLES = 300   # tracking steps NNCF calibrates on (its default subset size)


def find_groundtruth(folder):
    """The ground-truth file of a folder of frames: GOT-10k / VOT ``groundtruth.txt`` beside the frames, or OTB /
    LaSOT ``groundtruth_rect.txt`` / ``groundtruth.txt`` one level up (frames in ``img/``); None if there is none."""
    for path in (os.path.join(folder, "groundtruth.txt"), os.path.join(folder, "groundtruth_rect.txt"),
                 os.path.join(folder, "..", "groundtruth_rect.txt"), os.path.join(folder, "..", "groundtruth.txt")):
        if os.path.isfile(path):
            return path
    return None


def calibration_sequences(source):
    """Every folder of frames under ``source`` (itself, a sequence's ``img/``, or the sequences of a dataset root;
    links followed): sorted [(folder, sorted frame paths)]. UserError when there are none."""
    if not os.path.isdir(source):
        raise UserError(f"--calibration {source}: folder not found")
    sequences = []
    for folder, dirs, files in os.walk(source, followlinks=True):
        dirs.sort()
        frames = sorted(f for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
        if frames:
            sequences.append((folder, [os.path.join(folder, f) for f in frames]))
    if not sequences:
        raise UserError(f"--calibration {source}: no .jpg/.png/.bmp frames in it or its subfolders")
    return sorted(sequences)


def calibration_key(source, samples=None):
    """Hex digest naming a calibration set: its frames' paths relative to ``source``, sizes and modification
    times, and the number of samples (a changed frame or ground truth calibrates again)."""
    digest = hashlib.sha256(f"samples={samples or CALIBRATION_SAMPLES}".encode())
    for folder, frames in calibration_sequences(source):
        gt = find_groundtruth(folder)
        for path in frames + ([gt] if gt else []):
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, source)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def calibration_inputs(model, cfg, source, samples=None):
    """Up to ``samples`` inputs {template, search, window} of the ``track`` graph, cropped from the frames of
    ``source`` exactly as :class:`mimtrack.tracker.tracking.Tracker` crops them, spread evenly over its sequences
    (None: :data:`CALIBRATION_SAMPLES`).

    With ground truth the search region of frame i is cropped around the true box of frame i-1 (teacher forcing:
    the crops a tracker that follows the object sees); without, around the float32 tracker's own previous box,
    starting from a centred box.
    """
    from mimtrack.evaluation.textfiles import read_boxes
    from mimtrack.images import read_image_rgb
    from mimtrack.tracker.tracking import Tracker

    class Recorder:   # keeps the normalised inputs the tracker feeds its network
        def __init__(self, network):
            self.network, self.template, self.inputs = network, None, []

        def set_template(self, template):
            self.template = template.numpy().copy()
            self.network.set_template(template)

        def __call__(self, search, window):
            self.inputs.append({"template": self.template, "search": search.numpy().copy(), "window": window.numpy()})
            return self.network(search, window)

    samples = samples or CALIBRATION_SAMPLES
    sequences = calibration_sequences(source)
    tracker = Tracker(model, cfg, "cpu")
    recorder = tracker.network = Recorder(tracker.network)
    per_sequence = -(-samples // len(sequences))
    for folder, frames in sequences:
        if len(frames) < 2:
            continue
        gt_path = find_groundtruth(folder)
        gt = read_boxes(gt_path) if gt_path else None
        first = read_image_rgb(frames[0])
        height, width = first.shape[:2]
        known = lambda i: gt is not None and i < len(gt) and np.all(np.isfinite(gt[i])) and min(gt[i][2:]) > 0
        tracker.initialize(first, list(gt[0]) if known(0) else [width * 3 / 8, height * 3 / 8, width / 4, height / 4])
        chosen = set(np.linspace(1, len(frames) - 1, min(per_sequence, len(frames) - 1)).round().astype(int))
        teacher_forced = all(known(i - 1) for i in chosen)
        for i in range(1, max(chosen) + 1):
            if teacher_forced and i not in chosen:
                continue
            if teacher_forced:
                tracker.state = [float(v) for v in gt[i - 1]]
            count = len(recorder.inputs)
            tracker.track(read_image_rgb(frames[i]))
            if i not in chosen:
                del recorder.inputs[count:]
    return recorder.inputs[:samples]


def quantize_openvino_int8(onnx_path, inputs, dst):
    """NNCF post-training static int8 quantisation of the ``track`` graph at ``onnx_path`` for OpenVINO, calibrated
    on ``inputs`` (:func:`calibration_inputs`): the matrix products (Linear layers, attention, convolutions) get
    int8 weights and activations with per-tensor scales from the calibration set; the transformer preset keeps
    softmax, layer norms and GELU in float. Written to ``dst`` (OpenVINO IR .xml + .bin) atomically."""
    import nncf
    import openvino as ov

    from mimtrack.tracker.backends import read_openvino_model

    model = read_openvino_model(onnx_path)
    with contextlib.redirect_stdout(io.StringIO()):
        quantized = nncf.quantize(model, nncf.Dataset(inputs), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(inputs))
    dst = pathlib.Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".tmp-quant-") as tmp:
        out = pathlib.Path(tmp) / dst.name
        ov.save_model(quantized, out, compress_to_fp16=False)
        os.replace(out.with_suffix(".bin"), dst.with_suffix(".bin"))
        os.replace(out, dst)   # the .xml last: it names a complete model
    return dst


def cached_openvino_int8(model, cfg, calibration, cache_dir=None, refresh=False):
    """Path of ``model``'s static int8 ``track`` graph (OpenVINO IR), calibrated on the frames of ``calibration``,
    in the cache beside the ONNX graph it is quantised from; quantised on first use (a minute or so)."""
    import nncf
    import openvino

    if not calibration:
        raise UserError("--backend openvino-int8: pass --calibration FOLDER (real frames: a folder of frames, a "
                        "sequence or a dataset root) to calibrate the int8 quantisation on")
    onnx_path = cached_onnx(model, cfg, cache_dir=cache_dir, refresh=refresh)
    key = hashlib.sha256(f"{onnx_path.name}:{calibration_key(calibration)}:{openvino.__version__}:"
                         f"{nncf.__version__}".encode()).hexdigest()[:16]
    path = onnx_path.with_name(f"{onnx_path.stem}-int8-openvino-{key}.xml")
    if refresh:
        path.unlink(missing_ok=True)
    if not path.is_file():
        quantize_openvino_int8(onnx_path, calibration_inputs(model, cfg, calibration), path)
    return path


def add_arguments(parser):
    parser.add_argument("--config", help="tracker recipe: a name in experiments/tracking or a YAML path "
                        "(with --checkpoint; both absent: the bundled demo tracker)")
    parser.add_argument("--checkpoint", help="tracker checkpoint (.pth) trained with --config")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--graph", choices=sorted(GRAPHS), default="track",
                        help="track (default): one tracking step, score map + box at the windowed peak, what the "
                        "onnxruntime backend runs; maps: the raw score/size/offset maps")
    parser.add_argument("--int8", action="store_true", help="also quantise: dynamic int8 weights of the MatMul and Attention nodes")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= 20, default {DEFAULT_OPSET})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value (repeatable)")


def run(args):
    from mimtrack.tracker.checkpoints import load_network, resolve_network

    if args.config is not None and args.checkpoint is None:
        raise UserError("--checkpoint is required with --config (an export of untrained weights is of no use)")
    if not args.out.endswith(".onnx"):
        raise UserError(f"--out {args.out}: expected a .onnx file name")
    cfg, checkpoint = resolve_network(args.config, args.checkpoint, args.overrides)
    model = load_network(cfg, checkpoint)
    if not args.int8:
        export_onnx(model, cfg, args.out, args.opset, args.graph)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            float_path = export_onnx(model, cfg, os.path.join(tmp, "float.onnx"), args.opset, args.graph)
            quantize_onnx_int8(float_path, os.path.join(tmp, "int8.onnx"))
            with atomic_write(args.out, "wb") as f, open(os.path.join(tmp, "int8.onnx"), "rb") as src:
                shutil.copyfileobj(src, f)
    inputs, outputs = GRAPHS[args.graph]
    print(f"wrote {args.out} ({args.graph} graph, opset {args.opset}, {'int8 dynamic' if args.int8 else 'float32'}; "
          f"inputs {', '.join(inputs)}; outputs {', '.join(outputs)}; template 1x3x{cfg.crop.template_size}^2, "
          f"search 1x3x{cfg.crop.search_size}^2)")
    diffs = max_differences(model, args.out, cfg, args.graph)
    print("max |torch - onnxruntime| on a random input: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    return 0

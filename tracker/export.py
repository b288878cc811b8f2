"""``mimtrack export``: the tracker network as an ONNX graph, for ONNX Runtime and other runtimes.

The graph is the whole network with candidate elimination (the kept-token count is fixed, so every shape is
static): inputs ``template`` (1, 3, Hz, Wz) and ``search`` (1, 3, Hx, Wx), ImageNet-normalised RGB float32;
outputs ``score_map`` (1, 1, fs, fs), ``size_map`` and ``offset_map`` (1, 2, fs, fs). Cropping, the Hann window,
decoding and mapping back stay outside (see :class:`tracker.inference.Tracker`).

    mimtrack export --config vit_tiny_256_ce --checkpoint tracker.pth --out tracker.onnx [--int8]
"""

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import shutil
import tempfile

import torch

from mimtrack.errors import UserError
from mimtrack.fileio import atomic_write

INPUT_NAMES = ("template", "search")
OUTPUT_NAMES = ("score_map", "size_map", "offset_map")
DEFAULT_OPSET = 18
CACHE_FORMAT = 1   # bump when the exported graph changes for the same weights and config


class MapsOnly(torch.nn.Module):
    """The tracker network returning just the three maps, the graph's outputs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, template, search):
        out = self.model(template, search)
        return out["score_map"], out["size_map"], out["offset_map"]


def example_inputs(cfg, seed=0):
    """Random normalised (template, search) of the recipe's sizes."""
    generator = torch.Generator().manual_seed(seed)
    t, s = cfg.crop.template_size, cfg.crop.search_size
    return torch.randn(1, 3, t, t, generator=generator), torch.randn(1, 3, s, s, generator=generator)


def export_onnx(model, cfg, path, opset=DEFAULT_OPSET):
    """Export ``model`` (float32, built from ``cfg``) to ``path`` (one file, written atomically)."""
    if opset < 17:
        raise UserError(f"--opset {opset}: must be >= 17 (LayerNormalization)")
    model = MapsOnly(model).to("cpu").float().eval()
    # torch.export-based exporter: the legacy tracer freezes the candidate-elimination indices of the example.
    with contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(model, example_inputs(cfg), input_names=list(INPUT_NAMES),
                                    output_names=list(OUTPUT_NAMES), opset_version=opset, dynamo=True,
                                    external_data=False)
    with atomic_write(path, "wb") as f:
        f.write(program.model_proto.SerializeToString())
    return pathlib.Path(path)


def quantize_onnx_int8(src, dst):
    """ONNX Runtime dynamic int8 quantisation of ``src`` (MatMul weights int8, activations per call) -> ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    directory = pathlib.Path(dst).resolve().parent
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".tmp-quant-") as tmp:
        out = pathlib.Path(tmp) / "int8.onnx"
        quantize_dynamic(os.fspath(src), os.fspath(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        os.replace(out, dst)
    return pathlib.Path(dst)


def max_differences(model, path, cfg, seed=1):
    """Largest |torch - onnxruntime| of each output map on one random input pair: {name: float}."""
    import onnxruntime as ort

    template, search = example_inputs(cfg, seed)
    with torch.inference_mode():
        expected = MapsOnly(model).to("cpu").eval()(template, search)
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUT_NAMES), {"template": template.numpy(), "search": search.numpy()})
    return {name: float((torch.from_numpy(g) - e).abs().max()) for name, g, e in zip(OUTPUT_NAMES, got, expected)}


def default_cache_dir():
    """``$MIMTRACK_CACHE/onnx``, else ``$XDG_CACHE_HOME/mimtrack/onnx``, else ``~/.cache/mimtrack/onnx``."""
    if os.environ.get("MIMTRACK_CACHE"):
        return pathlib.Path(os.environ["MIMTRACK_CACHE"]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "mimtrack" / "onnx"


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


def cached_onnx(model, cfg, int8=False, cache_dir=None):
    """Path of ``model``'s ONNX graph (int8: dynamically quantised) in the cache, exported on first use."""
    cache_dir = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()
    key = model_key(model, cfg)
    path = cache_dir / f"{cfg.name or 'tracker'}-{key}.onnx"
    if not path.is_file():
        export_onnx(model, cfg, path)
    if not int8:
        return path
    int8_path = cache_dir / f"{cfg.name or 'tracker'}-{key}-int8.onnx"
    if not int8_path.is_file():
        quantize_onnx_int8(path, int8_path)
    return int8_path


def add_arguments(parser):
    parser.add_argument("--config", help="tracker recipe: a name in experiments/tracking or a YAML path "
                        "(with --checkpoint; both absent: the bundled demo tracker)")
    parser.add_argument("--checkpoint", help="tracker checkpoint (.pth) trained with --config")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--int8", action="store_true", help="also quantise: write dynamic-int8 weights (MatMul)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= 17, default {DEFAULT_OPSET})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value (repeatable)")


def run(args):
    from tracker.inference import load_tracker

    if args.config is not None and args.checkpoint is None:
        raise UserError("--checkpoint is required with --config (an export of untrained weights is of no use)")
    if not args.out.endswith(".onnx"):
        raise UserError(f"--out {args.out}: expected a .onnx file name")
    tracker = load_tracker(args.config, args.checkpoint, device="cpu", overrides=args.overrides)
    model, cfg = tracker.model, tracker.cfg
    if not args.int8:
        export_onnx(model, cfg, args.out, args.opset)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            float_path = export_onnx(model, cfg, os.path.join(tmp, "float.onnx"), args.opset)
            quantize_onnx_int8(float_path, os.path.join(tmp, "int8.onnx"))
            with atomic_write(args.out, "wb") as f, open(os.path.join(tmp, "int8.onnx"), "rb") as src:
                shutil.copyfileobj(src, f)
    line = f"wrote {args.out} (opset {args.opset}, inputs template 1x3x{cfg.crop.template_size}^2 and search " \
           f"1x3x{cfg.crop.search_size}^2, {'int8 dynamic' if args.int8 else 'float32'})"
    print(line)
    diffs = max_differences(model, args.out, cfg)
    print("max |torch - onnxruntime| on a random input: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    return 0

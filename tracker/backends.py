"""Networks a :class:`mimtrack.tracker.tracking.Tracker` can run: PyTorch (the reference), ONNX Runtime or OpenVINO.

A network is given the normalised template once (``set_template``) and then maps each normalised search image
and the score-map window (1, 1, fs, fs) to ``(score_map (1, 1, fs, fs), box (1, 4), peak (1,))`` on the
tracker's device: the raw score map, the box (cx, cy, w, h, normalised to the search crop) decoded at the peak of
``score_map * window`` and that peak's flat index (see :meth:`mimtrack.tracker.model.OSTrack.locate`). Cropping and mapping
the box back stay in the tracker, identical for every backend.
"""

import contextlib
import importlib.util
import os

import torch

from mimtrack.errors import UserError
from mimtrack.tracker.model.head import decode

BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8", "torch-int8", "openvino", "openvino-int8")
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
# OpenVINO's INFERENCE_PRECISION_HINT for each --precision (fp16 is a GPU format: not offered on the CPU).
OPENVINO_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


def physical_cores():
    """Physical CPU cores this process may use (hyper-threads share a core's units, so they are not counted)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = set()
    try:
        with open("/proc/cpuinfo") as f:
            physical = "0"
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "physical id":
                    physical = value
                elif key == "core id":
                    cores.add((physical, value))
    except OSError:
        pass
    return max(1, min(usable, len(cores) or usable))


def check_backend(backend, device):
    """UserError unless ``backend`` is known and runs on ``device`` (a torch.device)."""
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend.endswith("int8") and device.type != "cpu":
        raise UserError(f"--backend {backend}: int8 quantisation runs on the CPU only (got --device {device})")
    if backend.startswith("openvino") and device.type != "cpu":
        raise UserError(f"--backend {backend}: the OpenVINO backend runs on the CPU only (got --device {device})")
    for module, needed in (("openvino", backend.startswith("openvino")), ("nncf", backend == "openvino-int8")):
        if needed and importlib.util.find_spec(module) is None:
            raise UserError(f'--backend {backend}: {module} is not installed (pip install "mimtrack[openvino]")')


def check_precision(backend, precision):
    """UserError unless ``backend`` offers ``precision`` (torch: autocast fp32/fp16/bf16; OpenVINO: fp32/bf16,
    for int8 the precision of the layers left unquantised; ONNX Runtime: fp32 only)."""
    offered = (PRECISIONS if backend.startswith("torch") else OPENVINO_PRECISIONS if backend.startswith("openvino")
               else ("fp32",))
    if precision not in offered:
        raise UserError(f"--precision {precision!r} with --backend {backend}: expected one of {', '.join(offered)}")


def add_arguments(parser, default_threads="the physical cores"):
    """``--backend``, ``--precision``, ``--threads`` and ``--calibration``: the network runtime options of
    ``track``, ``demo``, ``bench`` and ``vot-server`` (:func:`mimtrack.tracker.inference.load_tracker`'s arguments)."""
    parser.add_argument("--backend", default="torch", choices=BACKENDS,
                        help="network runtime (default torch, the reference; onnx* and openvino* export the "
                        "tracking-step graph on first use and cache it; *-int8 quantise it)")
    parser.add_argument("--precision", default="fp32", choices=sorted(PRECISIONS),
                        help="fp32 (default); bf16: OpenVINO on a CPU with AVX512-BF16/AMX (boxes move), or torch "
                        "autocast (fp16/bf16, meant for GPUs); openvino-int8: the precision of the layers left "
                        "unquantised")
    parser.add_argument("--threads", type=int, help=f"intra-op threads (default: {default_threads})")
    parser.add_argument("--calibration", metavar="FOLDER",
                        help="openvino-int8: real frames to calibrate the static int8 quantisation on: a folder of "
                        "frames, a sequence (img/ + groundtruth) or a dataset root holding such folders")


class TorchNetwork:
    """An OSTrack-style module in eval mode. For :class:`mimtrack.tracker.model.OSTrack` the template's tokens (patch
    embedding + ``pos_embed_z``) are computed once and each frame runs :meth:`~tracker.model.OSTrack.locate`;
    other modules get ``model(template, search)`` and their maps are decoded here.

    ``precision`` fp16/bf16 runs the network under autocast (GPU; outputs come back as float32);
    ``compile`` wraps the forward in ``torch.compile``.
    """

    def __init__(self, model, device, precision="fp32", compile=False):
        if precision not in PRECISIONS:
            raise UserError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.autocast_dtype = PRECISIONS[precision]
        self.caches_template = hasattr(model, "locate") and hasattr(model, "backbone")
        forward = model.locate if self.caches_template else self._locate_in_maps
        self.forward = torch.compile(forward) if compile else forward
        self.template = None

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @torch.inference_mode()
    def set_template(self, template):
        with self._autocast():
            self.template = self.model.backbone.embed_template(template) if self.caches_template else template.clone()

    def _locate_in_maps(self, template, search, window):
        out = self.model(template, search)
        box, peak = decode(out["score_map"], out["size_map"], out["offset_map"], window, with_peak=True)
        return out["score_map"], box, peak

    @torch.inference_mode()
    def __call__(self, search, window):
        with self._autocast():
            score_map, box, peak = self.forward(self.template, search, window)
        return score_map.float(), box.float(), peak


def quantize_torch_int8(model):
    """A copy of ``model`` whose Linear layers (attention, MLP: most of the ViT's compute) run int8 dynamic
    quantisation: int8 weights, activations quantised per call. The head's convolutions stay float32."""
    import copy
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():   # torch.ao eager quantisation is deprecated in favour of torchao (not installed)
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear}, dtype=torch.qint8)


class OnnxNetwork:
    """An exported tracker graph (:mod:`mimtrack.tracker.export`) in an ONNX Runtime session.

    Inputs ``template`` (1,3,Hz,Wz), ``search`` (1,3,Hx,Wx) and ``window`` (1,1,fs,fs) float32; outputs
    ``score_map``, ``box`` and ``peak`` (the tracking graph of :func:`mimtrack.tracker.export.export_onnx`).
    ``threads`` sets ONNX Runtime's intra-op threads (None: the physical cores).
    """

    def __init__(self, path, device="cpu", threads=None):
        import onnxruntime as ort

        self.device = torch.device(device)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or physical_cores()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UserError(f"--backend onnxruntime --device {device}: this onnxruntime has no CUDA provider "
                                f"(install onnxruntime-gpu)")
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device.index or 0}))
        self.session = ort.InferenceSession(os.fspath(path), options, providers=providers)
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != ["template", "search", "window"]:
            raise UserError(f"{path}: inputs {inputs}, not a tracking-step graph (template, search, window; "
                            f"mimtrack export --graph track)")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.template = None

    def set_template(self, template):
        self.template = template.detach().cpu().numpy().copy()

    def __call__(self, search, window):
        feed = {"template": self.template, "search": search.cpu().numpy(), "window": window.cpu().numpy()}
        outputs = self.session.run(self.output_names, feed)
        return tuple(torch.from_numpy(o).to(self.device) for o in outputs)


def openvino_core(cache_dir=None):
    """An OpenVINO ``Core`` that caches compiled models in ``cache_dir`` (the compile step is skipped next time)."""
    import openvino as ov

    core = ov.Core()
    if cache_dir is not None:
        core.set_property({"CACHE_DIR": os.fspath(cache_dir)})
    return core


def read_openvino_model(path, core=None):
    """The graph at ``path`` (ONNX or OpenVINO IR) as an OpenVINO model whose TopK nodes keep equal values in index
    order (ONNX TopK's rule, which OpenVINO's ONNX reader drops): candidate elimination's top-k then keeps the same
    tokens as torch and ONNX Runtime when a trained tracker's attention has exact zeros (ties)."""
    model = (core or openvino_core()).read_model(os.fspath(path))
    for op in model.get_ordered_ops():
        if op.get_type_name() == "TopK" and "stable" in op.get_attributes():
            op.set_attribute("stable", True)
    return model


class OpenVinoNetwork:
    """A tracking-step graph (:func:`mimtrack.tracker.export.export_onnx`'s ``track`` graph, or its int8 OpenVINO IR from
    :func:`mimtrack.tracker.export.quantize_openvino_int8`) compiled by OpenVINO for the CPU.

    Same inputs and outputs as :class:`OnnxNetwork`. Compiled with the latency hint (one stream, every thread on
    one request), ``threads`` inference threads (None: the physical cores) and ``precision`` as OpenVINO's
    inference precision: ``fp32`` (OpenVINO's CPU default is bf16 where the CPU has it, so it is always set) or
    ``bf16``. ``cache_dir``: OpenVINO's compiled-model cache.
    """

    def __init__(self, path, threads=None, precision="fp32", cache_dir=None):
        if precision not in OPENVINO_PRECISIONS:
            raise UserError(f"--precision {precision!r} with --backend openvino: expected one of "
                            f"{', '.join(OPENVINO_PRECISIONS)}")
        core = openvino_core(cache_dir)
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise UserError("--precision bf16: this CPU has no bf16 arithmetic (AVX512-BF16 or AMX); use fp32")
        self.device = torch.device("cpu")
        self.threads = threads or physical_cores()
        self.precision = precision
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads,
                  "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[precision]}
        self.compiled = core.compile_model(read_openvino_model(path, core), "CPU", config)
        inputs = [i.get_any_name() for i in self.compiled.inputs]
        if inputs != ["template", "search", "window"]:
            raise UserError(f"{path}: inputs {inputs}, not a tracking-step graph (template, search, window; "
                            f"mimtrack export --graph track)")
        self.request = self.compiled.create_infer_request()
        self.template = None

    def set_template(self, template):
        self.template = template.detach().cpu().numpy().copy()

    def __call__(self, search, window):
        outputs = self.request.infer([self.template, search.cpu().numpy(), window.cpu().numpy()])
        return tuple(torch.from_numpy(outputs[o]) for o in self.compiled.outputs)

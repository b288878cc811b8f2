"""Networks a :class:`mimtrack.tracker.inference.Tracker` can run: PyTorch (the reference) or ONNX Runtime.

A network is given the normalised template once (``set_template``) and then maps each normalised search image
and the score-map window (1, 1, fs, fs) to ``(score_map (1, 1, fs, fs), box (1, 4), peak (1,))`` on the
tracker's device: the raw score map, the box (cx, cy, w, h, normalised to the search crop) decoded at the peak of
``score_map * window`` and that peak's flat index (see :meth:`mimtrack.tracker.model.OSTrack.locate`). Cropping and mapping
the box back stay in the tracker, identical for every backend.
"""

import contextlib
import os

import torch

from mimtrack.errors import UserError
from mimtrack.tracker.model.head import decode

BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8", "torch-int8")
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


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
        raise UserError(f"--backend {backend}: int8 dynamic quantisation runs on the CPU only (got --device {device})")


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

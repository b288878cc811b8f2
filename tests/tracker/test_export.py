"""ONNX export and the onnxruntime backend against the torch backend (the reference)."""

import os

import numpy as np
import onnx
import pytest
import torch

import mimtrack.tracker.export as export
from mimtrack.cli import main
from mimtrack.errors import UserError
from mimtrack.tracker import build_model, load_tracker, read_image_rgb
from mimtrack.tracker.backends import OnnxNetwork
from mimtrack.tracker.checkpoints import save_tracker_checkpoint
from mimtrack.tracker.config import load_tracker_config
from tests.isolation import in_own_process


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A seeded, untrained vit_tiny_256_ce tracker checkpoint."""
    torch.manual_seed(0)
    model = build_model(load_tracker_config("vit_tiny_256_ce"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_tracker_checkpoint(path, model)
    return str(path)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("onnx_cache"))


class Recorder:
    """Wraps a network and keeps its last input and outputs."""

    def __init__(self, network):
        self.network, self.search, self.outputs = network, None, None

    def set_template(self, template):
        self.network.set_template(template)

    def __call__(self, search, window):
        self.search = search.clone()
        self.outputs = self.network(search, window)
        return self.outputs


def test_onnxruntime_matches_torch_over_crossing(shared_dir, checkpoint, cache_dir, tmp_path):
    """The acceptance parity test: the onnxruntime backend (``track`` graph) gives the torch backend's score maps
    and boxes; the ``maps`` graph gives its score, size and offset maps, all within 1e-4, over a real sequence."""
    import onnxruntime as ort

    folder = shared_dir / "data" / "otb" / "Crossing"
    frames = sorted((folder / "img").glob("*.jpg"))
    init = [float(v) for v in open(folder / "groundtruth_rect.txt").readline().replace(",", " ").split()]
    trackers = [load_tracker("vit_tiny_256_ce", checkpoint, backend=b, cache_dir=cache_dir, threads=1)
                for b in ("torch", "onnxruntime")]
    for t in trackers:
        t.network = Recorder(t.network)
        t.initialize(read_image_rgb(frames[0]), init)
    model, cfg = trackers[0].model, trackers[0].cfg
    maps_path = export.export_onnx(model, cfg, tmp_path / "maps.onnx", graph="maps")
    maps_graph = ort.InferenceSession(str(maps_path), providers=["CPUExecutionProvider"])
    with pytest.raises(UserError, match="not a tracking-step graph"):
        OnnxNetwork(maps_path)
    template = trackers[0].template.numpy()
    worst = {"score_map": 0.0, "box": 0.0, "size_map": 0.0, "offset_map": 0.0}
    for path in frames[1:]:
        image = read_image_rgb(path)
        reference, onnx_result = (t.track(image) for t in trackers)
        (score_t, box_t, peak_t), (score_o, box_o, peak_o) = (t.network.outputs for t in trackers)
        assert int(peak_t) == int(peak_o)
        worst["score_map"] = max(worst["score_map"], float((score_t - score_o).abs().max()))
        worst["box"] = max(worst["box"], float((box_t - box_o).abs().max()))
        np.testing.assert_allclose(onnx_result["box"], reference["box"], atol=1e-3, rtol=0)
        search = trackers[0].network.search
        with torch.inference_mode():
            expected = model(trackers[0].template, search)
        got = maps_graph.run(["size_map", "offset_map"], {"template": template, "search": search.numpy()})
        for name, value in zip(("size_map", "offset_map"), got):
            worst[name] = max(worst[name], float((torch.from_numpy(value) - expected[name]).abs().max()))
    assert len(frames) == 120 and max(worst.values()) <= 1e-4, worst


def test_export_is_cached_by_weights_and_config(checkpoint, cache_dir, monkeypatch):
    cfg = load_tracker_config("vit_tiny_256_ce")
    model = load_tracker("vit_tiny_256_ce", checkpoint).model
    path = export.cached_onnx(model, cfg, cache_dir=cache_dir)   # exported by the parity test or now
    assert path.is_file() and path.parent == type(path)(cache_dir)
    graph = onnx.load(path)
    assert [i.name for i in graph.graph.input] == ["template", "search", "window"]
    assert [o.name for o in graph.graph.output] == ["score_map", "box", "peak"]
    assert {o.domain: o.version for o in graph.opset_import}[""] == export.DEFAULT_OPSET
    dims = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input]
    assert dims == [[1, 3, 128, 128], [1, 3, 256, 256], [1, 1, 16, 16]]   # fixed shapes
    ops = [n.op_type for n in graph.graph.node]
    assert {"TopK", "ScatterElements"} & set(ops)   # candidate elimination is in
    assert ops.count("Attention") == 9             # fused attention in the 12 - 3 blocks that do not eliminate

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds the graph")

    monkeypatch.setattr(export, "export_onnx", no_export)
    assert export.cached_onnx(model, cfg, cache_dir=cache_dir) == path
    with torch.no_grad():
        model.box_head.conv5_ctr.bias += 1.0   # other weights -> another key
    assert export.model_key(model, cfg) not in path.name
    cfg.crop.search_factor = 5.0               # other crop -> another key
    assert export.model_key(load_tracker("vit_tiny_256_ce", checkpoint).model, cfg) not in path.name
    assert not [p for p in os.listdir(cache_dir) if p.startswith(".tmp")]   # atomic: no leftovers


def test_onnxruntime_int8_backend_runs(checkpoint, cache_dir):
    t = load_tracker("vit_tiny_256_ce", checkpoint, backend="onnxruntime-int8", cache_dir=cache_dir, threads=1)
    assert t.network.session.get_session_options().intra_op_num_threads == 1
    ops = {n.op_type for n in onnx.load(t.network.session._model_path).graph.node}
    assert ops & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul"}
    assert "QAttention" in ops   # the fused attention nodes are quantised too
    image = np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    t.initialize(image, [60, 40, 30, 30])
    box = t.track(image)["box"]
    assert np.all(np.isfinite(box)) and box[2] >= 10 and box[3] >= 10


@pytest.mark.parametrize("graph", ["track", "maps"])
def test_export_cli_writes_the_graph_and_checks_it(checkpoint, tmp_path, capsys, graph):
    out = tmp_path / "model.onnx"
    assert main(["export", "--config", "vit_tiny_256_ce", "--checkpoint", checkpoint, "--out", str(out),
                 "--graph", graph]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "max |torch - onnxruntime| on a random input: score_map" in printed
    model = onnx.load(out)
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == list(export.GRAPHS[graph][1])
    diffs = [float(w.split()[-1]) for w in printed.strip().split(": ")[-1].split(", ")]
    assert len(diffs) == 3 and max(diffs) <= 1e-4   # track: score_map, box, peak (0: the same cell)


def test_export_cli_rejects_bad_arguments(checkpoint, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", "--config", "vit_tiny_256_ce", "--out", str(out)]) == 2
    assert "--checkpoint is required" in capsys.readouterr().err
    assert main(["export", "--config", "vit_tiny_256_ce", "--checkpoint", checkpoint, "--out",
                 str(tmp_path / "model.txt")]) == 2
    assert main(["export", "--config", "vit_tiny_256_ce", "--checkpoint", checkpoint, "--out", str(out),
                 "--opset", "18"]) == 2
    assert "--opset 18: must be >= 20" in capsys.readouterr().err
    assert main(["export", "--config", "vit_tiny_256_ce", "--checkpoint", str(tmp_path / "missing.pth"),
                 "--out", str(out)]) == 2
    assert not out.exists()


# --- OpenVINO -----------------------------------------------------------------------------------------------------

@in_own_process
def test_openvino_matches_torch_over_crossing(shared_dir, checkpoint, cache_dir):
    """The acceptance parity test of the openvino backend (fp32): the torch backend's peaks, and its score maps and
    boxes within 1e-4, over a real sequence; bf16 runs the same graph in reduced precision (its boxes move)."""
    pytest.importorskip("openvino")
    folder = shared_dir / "data" / "otb" / "Crossing"
    frames = sorted((folder / "img").glob("*.jpg"))
    init = [float(v) for v in open(folder / "groundtruth_rect.txt").readline().replace(",", " ").split()]
    trackers = [load_tracker("vit_tiny_256_ce", checkpoint, backend=b, cache_dir=cache_dir, threads=1, precision=p)
                for b, p in (("torch", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"))]
    compiled = trackers[1].network.compiled
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert str(compiled.get_property("PERFORMANCE_HINT")) in ("LATENCY", "PerformanceMode.LATENCY")
    assert [str(t.network.compiled.get_property("INFERENCE_PRECISION_HINT")) for t in trackers[1:]] == \
        ["<Type: 'float32'>", "<Type: 'bfloat16'>"]
    for t in trackers:
        t.network = Recorder(t.network)
        t.initialize(read_image_rgb(frames[0]), init)
    worst = {"score_map": 0.0, "box": 0.0}
    bf16_moved = 0.0
    for path in frames[1:]:
        image = read_image_rgb(path)
        reference, result, bf16 = (t.track(image) for t in trackers)
        (score_t, box_t, peak_t), (score_v, box_v, peak_v) = (t.network.outputs for t in trackers[:2])
        assert int(peak_t) == int(peak_v)
        worst["score_map"] = max(worst["score_map"], float((score_t - score_v).abs().max()))
        worst["box"] = max(worst["box"], float((box_t - box_v).abs().max()))
        np.testing.assert_allclose(result["box"], reference["box"], atol=1e-3, rtol=0)
        bf16_moved = max(bf16_moved, float(np.abs(np.subtract(bf16["box"], result["box"])).max()))
        trackers[2].state = list(result["box"])   # teacher-forced: bf16 from the fp32 box, so it cannot drift away
    assert len(frames) == 120 and max(worst.values()) <= 1e-4, worst
    assert np.isfinite(bf16_moved) and bf16_moved > 0   # bf16 arithmetic is in use: the boxes move, a little


@in_own_process
def test_openvino_ranks_underflowed_attention_as_torch(cache_dir):
    """A trained tracker's attention underflows to 0 (and to denormals, which OpenVINO flushes): candidate
    elimination must keep the same tokens in every runtime. Scaled-up weights of a small tracker make that happen
    here; the scores then tie, and ties go by index (ONNX TopK's rule)."""
    pytest.importorskip("openvino")
    from mimtrack.tracker.backends import OpenVinoNetwork

    torch.manual_seed(0)
    cfg = load_tracker_config("vit_tiny_256_ce", ["model.backbone.depth=3", "model.ce.locations=[1]",
                                                  "model.ce.keep_ratio=[0.5]", "model.head.channels=32"])
    model = build_model(cfg).eval()
    with torch.no_grad():
        for block in model.backbone.blocks:
            block.attn.qkv.weight[:2 * block.attn.qkv.in_features].mul_(40.0)   # q, k: logits 1600x, softmax underflows
    template, search, window = export.example_inputs(cfg, seed=3)
    with torch.inference_mode():
        attn = model.backbone.blocks[1].forward_attention(
            model.backbone.blocks[0](torch.cat([model.backbone.embed_template(template),
                                                model.backbone.patch_embed(search) + model.backbone.pos_embed_x],
                                               1)), return_attention=True)[1]
        expected = export.GRAPH_MODULES["track"](model)(template, search, window)
    score = attn[:, :, :64, 64:][:, :, model.backbone.ce_template_index].mean(2).mean(1)
    assert int((score < torch.finfo(torch.float32).tiny).sum()) > 128   # the case: the kept half ends among zeros
    network = OpenVinoNetwork(export.cached_onnx(model, cfg, cache_dir=cache_dir), threads=1)
    network.set_template(template)
    got = network(search, window)
    assert int(got[2]) == int(expected[2])
    assert max(float((g - e).abs().max()) for g, e in zip(got[:2], expected[:2])) <= 1e-4


@in_own_process
def test_openvino_int8_calibrates_on_real_frames_and_is_cached(shared_dir, checkpoint, cache_dir, monkeypatch):
    pytest.importorskip("nncf")
    crossing = shared_dir / "data" / "otb" / "Crossing"
    cfg = load_tracker_config("vit_tiny_256_ce")
    model = load_tracker("vit_tiny_256_ce", checkpoint).model
    inputs = export.calibration_inputs(model, cfg, crossing, samples=8)
    assert len(inputs) == 8 and [sorted(i) for i in inputs[:1]] == [["search", "template", "window"]]
    assert inputs[0]["search"].shape == (1, 3, 256, 256) and np.abs(inputs[0]["search"]).max() < 3   # normalised
    assert len({i["search"].tobytes() for i in inputs}) == 8   # 8 different frames' crops

    monkeypatch.setattr(export, "CALIBRATION_SAMPLES", 8)
    t = load_tracker("vit_tiny_256_ce", checkpoint, backend="openvino-int8", calibration=str(crossing),
                     cache_dir=cache_dir, threads=1)
    xml = [p for p in os.listdir(cache_dir) if p.endswith(".xml") and "-int8-openvino-" in p]
    assert len(xml) == 1 and not [p for p in os.listdir(cache_dir) if p.startswith(".tmp")]
    ops = {op.get_type_name() for op in t.network.compiled.get_runtime_model().get_ordered_ops()}
    assert "FakeQuantize" in ops or any("int8" in str(op.get_output_element_type(0)) or "u8" in
                                        str(op.get_output_element_type(0))
                                        for op in t.network.compiled.get_runtime_model().get_ordered_ops())
    t.initialize(read_image_rgb(sorted((crossing / "img").glob("*.jpg"))[0]), [205, 151, 17, 50])
    box = t.track(read_image_rgb(sorted((crossing / "img").glob("*.jpg"))[1]))["box"]
    assert np.all(np.isfinite(box))

    def no_quantisation(*args, **kwargs):
        raise AssertionError("quantised again although the cache holds the model")

    monkeypatch.setattr(export, "quantize_openvino_int8", no_quantisation)
    load_tracker("vit_tiny_256_ce", checkpoint, backend="openvino-int8", calibration=str(crossing),
                 cache_dir=cache_dir, threads=1)
    with pytest.raises(UserError, match="--calibration"):
        load_tracker("vit_tiny_256_ce", checkpoint, backend="openvino-int8", cache_dir=cache_dir)
    with pytest.raises(UserError, match="--calibration"):
        load_tracker("vit_tiny_256_ce", checkpoint, backend="openvino", calibration=str(crossing))
    with pytest.raises(UserError, match="--precision 'fp16' with --backend openvino"):
        load_tracker("vit_tiny_256_ce", checkpoint, backend="openvino", precision="fp16")
    with pytest.raises(UserError, match="--precision 'bf16' with --backend onnxruntime"):
        load_tracker("vit_tiny_256_ce", checkpoint, backend="onnxruntime", precision="bf16")

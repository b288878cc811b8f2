"""``mimtrack eval`` end to end on fabricated benchmarks and on the real OTB Crossing sequence."""

import json
import os

import numpy as np
import pytest

from mimtrack.evaluation.datasets import load_dataset
from mimtrack.evaluation.protocols import get_protocol
from mimtrack.evaluation.results import load_results
from mimtrack.cli import main
from tests import fabricate as fab


def _write_results(folder, gts, rng, noise=3.0, layout="{name}.txt"):
    for name, gt in gts.items():
        path = os.path.join(folder, layout.format(name=name))
        fab.write_table(path, np.round(gt + rng.normal(0, noise, gt.shape), 2))


def _eval(capsys, *argv):
    status = main(["eval", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def otb(tmp_path):
    rng = np.random.default_rng(0)
    gts = {name: fab.random_boxes(rng, 40) for name in ("Basketball", "Crossing", "Walking")}
    fab.make_otb(tmp_path / "otb", gts)
    for tracker, noise in (("A", 1.0), ("B", 4.0)):
        _write_results(tmp_path / tracker, gts, rng, noise)
    return tmp_path


def test_otb_json_table_and_plots(otb, capsys):
    status, out, _ = _eval(capsys, "--dataset", "otb", "--root", otb / "otb", "--results", otb / "A", otb / "B",
                           "--names", "Alpha", "Beta", "--json", otb / "s.json", "--plots", otb / "plots")
    assert status == 0
    sequences = load_dataset("otb", otb / "otb")
    data = json.loads((otb / "s.json").read_text())
    assert list(data) == ["Alpha", "Beta"]
    for name, folder in (("Alpha", "A"), ("Beta", "B")):
        expected = get_protocol("official").evaluate(sequences, load_results(otb / folder, sequences)[0])
        assert data[name]["overall"] == pytest.approx(expected.overall, abs=1e-12)
        assert set(data[name]["per_sequence"]) == {"Basketball", "Crossing", "Walking"}
        assert data[name]["per_sequence"]["Crossing"] == pytest.approx(expected.per_sequence["Crossing"])
        row = next(line for line in out.splitlines() if line.startswith(name))
        assert row.split()[1] == f"{100 * expected.overall['auc']:.2f}"
        assert row.split()[4] == f"{100 * expected.overall['precision']:.2f}"
    assert "evaluated 3 of 100 sequences" in out
    for plot in ("success_plot.png", "precision_plot.png", "norm_precision_plot.png"):
        assert (otb / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parallel_workers_give_the_same_scores(otb, monkeypatch):
    """Parts read and scored by forked workers, summarised in the parent: the very numbers of one serial pass."""
    from mimtrack.evaluation import cli

    sequences = load_dataset("otb", otb / "otb")
    names = [s.name for s in sequences]
    protocol = get_protocol("official")
    direct = [protocol.evaluate(sequences, load_results(otb / t, sequences)[0]) for t in ("A", "B")]
    serial_facts, serial = cli.score_trackers([otb / "A", otb / "B"], "otb", otb / "otb", None, names, protocol,
                                              workers=1)
    monkeypatch.setattr(cli, "_PARALLEL_MIN_FILES", 0)
    facts, parallel = cli.score_trackers([otb / "A", otb / "B"], "otb", otb / "otb", None, names, protocol,
                                         workers=2)
    assert [f.name for f in facts] == [f.name for f in serial_facts] == names  # 3 parts, merged in order
    for expected, (_, a), (_, b) in zip(direct, serial, parallel):
        assert a.overall == b.overall == expected.overall
        assert a.per_sequence == b.per_sequence == expected.per_sequence
        assert list(b.per_sequence) == names


def test_lasot_attributes(tmp_path, capsys):
    rng = np.random.default_rng(1)
    names = ("airplane-1", "airplane-9", "basketball-1")
    gts = {n: fab.random_boxes(rng, 30) for n in names}
    occlusion = np.zeros(30, dtype=int)
    occlusion[10:15] = 1
    fab.make_lasot(tmp_path / "lasot", {n: dict(gt=g, full_occlusion=occlusion) for n, g in gts.items()})
    flags = {"airplane-1": [1] + [0] * 13, "airplane-9": [1, 1] + [0] * 12, "basketball-1": [0, 1] + [0] * 12}
    for name, row in flags.items():
        fab.write_table(str(tmp_path / "lasot" / "att" / f"{name}.txt"), [row])
    _write_results(tmp_path / "T", gts, rng)
    status, out, _ = _eval(capsys, "--dataset", "lasot", "--root", tmp_path / "lasot", "--results", tmp_path / "T",
                           "--attributes", "--json", tmp_path / "s.json")
    assert status == 0
    sequences = load_dataset("lasot", tmp_path / "lasot")
    scores = get_protocol("official").evaluate(sequences, load_results(tmp_path / "T", sequences)[0])
    assert json.loads((tmp_path / "s.json").read_text())["T"]["overall"] == pytest.approx(scores.overall)
    iv = scores.subset(["airplane-1", "airplane-9"]).overall["auc"]
    poc = scores.subset(["airplane-9", "basketball-1"]).overall["auc"]
    table = {line.split("(")[0].strip(): line.split()[-1] for line in out.splitlines() if "(2)" in line}
    assert table == {"IV": f"{100 * iv:.2f}", "POC": f"{100 * poc:.2f}"}
    assert "evaluated 3 of 280 sequences" in out


def test_got10k_val_ao(tmp_path, capsys):
    rng = np.random.default_rng(2)
    gts = {f"GOT-10k_Val_{i:06d}": fab.random_boxes(rng, 20) for i in (1, 2)}
    cover = np.full(20, 8)
    cover[5:8] = 0
    fab.make_got10k(tmp_path / "got", "val", {n: dict(gt=g, cover=cover) for n, g in gts.items()})
    _write_results(tmp_path / "T", gts, rng, layout="{name}/{name}_001.txt")
    status, out, _ = _eval(capsys, "--dataset", "got10k", "--root", tmp_path / "got", "--results", tmp_path / "T",
                           "--json", tmp_path / "s.json")
    assert status == 0
    sequences = load_dataset("got10k", tmp_path / "got", "val")
    expected = get_protocol("got10k").evaluate(sequences, load_results(tmp_path / "T", sequences)[0])
    overall = json.loads((tmp_path / "s.json").read_text())["T"]["overall"]
    assert overall == pytest.approx(expected.overall) and set(overall) >= {"ao", "sr50", "sr75"}
    assert "AO" in out and "SR0.5" in out and f"{100 * expected.overall['ao']:.2f}" in out


def test_parallel_got10k_val_pools_the_same_frames(tmp_path, monkeypatch):
    """GOT-10k pools frames (and times) over sequences: parts from workers must pool to the serial numbers."""
    from mimtrack.evaluation import cli

    rng = np.random.default_rng(5)
    gts = {f"GOT-10k_Val_{i:06d}": fab.random_boxes(rng, int(rng.integers(10, 30))) for i in range(1, 6)}
    fab.make_got10k(tmp_path / "got", "val", {n: dict(gt=g, cover=np.full(len(g), 8)) for n, g in gts.items()})
    _write_results(tmp_path / "T", gts, rng, layout="{name}/{name}_001.txt")
    for name, gt in gts.items():
        fab.write_table(str(tmp_path / "T" / name / f"{name}_time.txt"), rng.uniform(0.01, 0.1, (len(gt), 1)))
    names = list(gts)
    protocol = get_protocol("got10k")
    _, ((_, serial),) = cli.score_trackers([tmp_path / "T"], "got10k", tmp_path / "got", "val", names, protocol)
    monkeypatch.setattr(cli, "_PARALLEL_MIN_FILES", 0)
    _, ((_, parallel),) = cli.score_trackers([tmp_path / "T"], "got10k", tmp_path / "got", "val", names, protocol,
                                             workers=2)
    assert "fps" in serial.overall and parallel.overall == serial.overall
    assert parallel.per_sequence == serial.per_sequence


def test_real_crossing_with_shifted_ground_truth(shared_dir, tmp_path, capsys):
    """Results = GT moved by (3, 4) px: centre error 5 px, IoU (w-3)(h-4) / (2wh - (w-3)(h-4))."""
    gt = np.loadtxt(shared_dir / "data/otb/Crossing/groundtruth_rect.txt")  # tab-separated
    shifted = gt + [3, 4, 0, 0]
    (tmp_path / "T").mkdir()
    np.savetxt(tmp_path / "T" / "Crossing.txt", shifted, fmt="%.2f", delimiter=",")
    status, _, _ = _eval(capsys, "--dataset", "otb", "--root", shared_dir / "data/otb", "--sequences", "Crossing",
                         "--results", tmp_path / "T", "--json", tmp_path / "s.json")
    assert status == 0
    w, h = gt[:, 2], gt[:, 3]
    inter = (w - 3) * (h - 4)
    iou = inter / (2 * w * h - inter)
    iou[0] = 1.0  # the first frame is the initial box
    auc = np.mean([np.mean(iou > t) for t in np.linspace(0, 1, 21)])
    normalized = np.hypot(3 / w, 4 / h)
    normalized[0] = 0.0
    overall = json.loads((tmp_path / "s.json").read_text())["T"]["overall"]
    assert overall["auc"] == pytest.approx(auc, abs=1e-12)
    assert overall["precision"] == pytest.approx(1.0, abs=1e-12)  # 5 px <= 20 px everywhere
    assert overall["norm_precision"] == pytest.approx(np.mean(normalized <= 0.2), abs=1e-12)
    assert overall["op50"] == pytest.approx(np.mean(iou > 0.5), abs=1e-12)


def _bad(tmp_path, otb, kind):
    root, a, b = otb / "otb", otb / "A", otb / "B"
    args = ["--dataset", "otb", "--root", root, "--results", a, b]
    if kind == "malformed row":
        (a / "Walking.txt").write_text((a / "Walking.txt").read_text().replace(",", ",x", 1))
        return args, "Walking.txt: line 1"
    if kind == "row count":
        rows = (a / "Walking.txt").read_text().splitlines()
        (a / "Walking.txt").write_text("\n".join(rows[:-5]) + "\n")
        return args, "Walking.txt: 35 rows but sequence Walking has 40 frames"
    if kind == "missing sequence":
        os.remove(b / "Crossing.txt")
        return args, "no results for 1 of 3 sequences (Crossing); use --skip-missing"
    if kind == "missing annotation":
        os.remove(root / "Walking" / "groundtruth_rect.txt")
        return args[:4] + ["--sequences", "Walking"] + args[4:], "Walking"
    if kind == "unknown dataset":
        return ["--dataset", "lasot2", "--root", root, "--results", a], "unknown dataset 'lasot2'"
    if kind == "names count":
        return args + ["--names", "OnlyOne"], "--names: 1 names for 2 --results folders"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["malformed row", "row count", "missing sequence", "missing annotation",
                                  "unknown dataset", "names count"])
def test_bad_input_one_line_exit_2_no_output(otb, tmp_path, capsys, kind):
    args, message = _bad(tmp_path, otb, kind)
    status, out, err = _eval(capsys, *args, "--json", otb / "out" / "s.json", "--plots", otb / "out")
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("mimtrack eval: error: ") and "Traceback" not in err
    assert message in err
    assert not (otb / "out").exists()


def test_skip_missing_drops_the_sequence_for_every_tracker(otb, capsys):
    os.remove(otb / "B" / "Crossing.txt")
    status, out, _ = _eval(capsys, "--dataset", "otb", "--root", otb / "otb", "--results", otb / "A", otb / "B",
                           "--skip-missing", "--json", otb / "s.json")
    assert status == 0
    data = json.loads((otb / "s.json").read_text())
    assert set(data["A"]["per_sequence"]) == set(data["B"]["per_sequence"]) == {"Basketball", "Walking"}
    sequences = [s for s in load_dataset("otb", otb / "otb") if s.name != "Crossing"]
    expected = get_protocol("official").evaluate(sequences, load_results(otb / "A", sequences)[0])
    assert data["A"]["overall"] == pytest.approx(expected.overall, abs=1e-12)
    assert "skipped 1 sequence(s)" in out

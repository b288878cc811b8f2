"""Analysis: CKA against direct formulas, attention distance / entropy closed forms, layer outputs, the CLI."""

import itertools
import json
import math

import cv2
import numpy as np
import pytest
import torch

from mimtrack import cli
from mimtrack.pretrain.analysis.attention import attention_distance, attention_entropy, patch_only
from mimtrack.pretrain.analysis.cka import MinibatchCKA, gram, hsic, linear_cka
from mimtrack.pretrain.analysis.features import layer_outputs
from mimtrack.pretrain.analysis.probing import layer_probe_accuracy, split_held_out
from mimtrack.pretrain.vit import VisionTransformer

SMALL = dict(img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=4)


def small_vit(seed=0):
    torch.manual_seed(seed)
    return VisionTransformer(**SMALL).eval()


def test_biased_cka_matches_centring_matrix_formula():
    torch.manual_seed(0)
    x, y = torch.randn(20, 7).double(), torch.randn(20, 5).double()
    y[:, :3] += x[:, :3]
    n = x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - torch.ones(n, n, dtype=torch.float64) / n
    k, l = x @ x.T, y @ y.T

    def direct_hsic(a, b):
        return torch.trace(a @ h @ b @ h) / (n - 1) ** 2

    expected = direct_hsic(k, l) / torch.sqrt(direct_hsic(k, k) * direct_hsic(l, l))
    assert linear_cka(x, y, unbiased=False) == pytest.approx(expected.item(), rel=1e-10)


def test_unbiased_hsic_is_the_u_statistic():
    # Song et al. (2012): the unbiased HSIC is the mean over ordered distinct (i, j, q, r) of
    # k_ij l_ij + k_ij l_qr - 2 k_ij l_iq.
    torch.manual_seed(1)
    x, y = torch.randn(7, 4), torch.randn(7, 3)
    k, l = gram(x), gram(y + x[:, :3])
    terms = [k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
             for i, j, q, r in itertools.permutations(range(7), 4)]
    assert hsic(k, l).item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-9)


def test_cka_invariances():
    torch.manual_seed(2)
    x = torch.randn(30, 6).double()
    q, _ = torch.linalg.qr(torch.randn(6, 6).double())
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0, abs=1e-10)  # rotation and isotropic scaling
    assert linear_cka(x, torch.randn(30, 6).double()) < 0.5


def test_minibatch_cka_of_a_model_with_itself_has_unit_diagonal():
    vit = small_vit()
    cka = MinibatchCKA(SMALL["depth"] + 1, SMALL["depth"] + 1)
    for seed in (0, 1):
        torch.manual_seed(seed)
        reps, _ = layer_outputs(vit, torch.randn(6, 3, 32, 32))
        cka.update(reps, reps)
    result = cka.result()
    assert result.shape == (4, 4)
    torch.testing.assert_close(result.diagonal(), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(result, result.T)


def test_layer_outputs_agree_with_forward():
    vit = small_vit()
    images = torch.randn(2, 3, 32, 32)
    reps, attns = layer_outputs(vit, images, attention=True)
    assert len(reps) == SMALL["depth"] + 1 and len(attns) == SMALL["depth"]
    with torch.no_grad():
        torch.testing.assert_close(reps[-1], vit(images)[:, 1:])
        torch.testing.assert_close(reps[0], vit.blocks[0].norm1(vit.embed(images))[:, 1:])
    assert attns[0].shape == (2, 4, 17, 17)


def test_patch_only_renormalisation_equals_softmax_over_patch_logits():
    torch.manual_seed(3)
    logits = torch.randn(2, 3, 10, 10).double()
    torch.testing.assert_close(patch_only(logits.softmax(-1)), logits[..., 1:, 1:].softmax(-1))


def test_uniform_attention_distance_and_entropy_closed_form():
    gh, gw, patch = 3, 4, 16
    n = gh * gw
    cells = [(r, c) for r in range(gh) for c in range(gw)]
    mean_pairwise = sum(math.hypot(a[0] - b[0], a[1] - b[1]) for a in cells for b in cells) / n ** 2
    uniform = torch.full((2, 5, n, n), 1.0 / n)
    torch.testing.assert_close(attention_distance(uniform, gh, gw, patch),
                               torch.full((5,), mean_pairwise * patch, dtype=torch.float64))
    torch.testing.assert_close(attention_entropy(uniform, eps=0.0), torch.full((5,), math.log(n), dtype=torch.float64))
    # attending only to itself: distance 0, entropy 0
    own = torch.eye(n).expand(1, 2, n, n)
    assert attention_distance(own, gh, gw).abs().max() == 0
    assert attention_entropy(own, eps=0.0).abs().max() == 0


def test_layer_probing_on_separable_and_split():
    labels = [0] * 10 + [1] * 10 + [2] * 10
    fit, held = split_held_out(labels)
    assert len(held) == 6 and not set(fit) & set(held)
    torch.manual_seed(4)
    separable = torch.nn.functional.one_hot(torch.tensor(labels), 3).double() * 5 + torch.randn(30, 3) * 0.1
    noise = torch.randn(30, 3)
    acc = layer_probe_accuracy([separable, noise], labels, fit, held, 3)
    assert acc[0] == 1.0


def make_class_images(root, per_class=5):
    rng = np.random.default_rng(0)
    for c, name in enumerate(["a", "b"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 255, (40, 40, 3)).astype(np.uint8)
            img[..., c] = 255
            cv2.imwrite(str(root / name / f"{i}.png"), img)
    return root


def test_analyze_cli_writes_numbers_and_plots(tmp_path, capsys):
    images = make_class_images(tmp_path / "imgs")
    ckpt = tmp_path / "vit.pth"
    torch.save({"model": small_vit(5).state_dict()}, ckpt)
    out = tmp_path / "out"
    status = cli.main(["analyze", "--images", str(images), "--checkpoint", str(ckpt), "--checkpoint-b", "random",
                       "--num-heads", "4", "--output", str(out), "--batch-size", "5"])
    assert status == 0, capsys.readouterr().err
    result = json.loads((out / "analysis.json").read_text())
    assert result["images"] == 10
    assert np.array(result["cka"]).shape == (4, 4)
    assert len(result["attention_distance_px"]["vit.pth"]) == 3
    assert len(result["probing"]["accuracy"]["random init"]) == 4
    for name in ("cka.png", "attention_distance.png", "attention_entropy.png", "probing.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    # self-comparison: unit diagonal
    out2 = tmp_path / "self"
    assert cli.main(["analyze", "--images", str(images), "--checkpoint", str(ckpt), "--num-heads", "4",
                     "--output", str(out2), "--labels-from", "none", "--batch-size", "5"]) == 0
    np.testing.assert_allclose(np.diag(json.loads((out2 / "analysis.json").read_text())["cka"]), 1.0)


def test_analyze_bad_input_is_one_line(tmp_path, capsys):
    ckpt = tmp_path / "vit.pth"
    torch.save({"model": small_vit().state_dict()}, ckpt)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        cv2.imwrite(str(flat / f"{i}.png"), np.zeros((32, 32, 3), np.uint8))
    out = tmp_path / "out"
    cases = [
        (["--images", str(tmp_path / "missing"), "--checkpoint", str(ckpt)], "folder not found"),
        (["--images", str(flat), "--checkpoint", str(ckpt), "--labels-from", "folder"], "no class subfolders"),
        (["--images", str(flat), "--checkpoint", str(tmp_path / "nope.pth")], "checkpoint not found"),
        (["--images", str(flat), "--checkpoint", str(ckpt), "--num-heads", "5"], "does not divide"),
    ]
    for argv, needle in cases:
        assert cli.main(["analyze", *argv, "--output", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    assert not out.exists()

"""benchmarks/template_pairs.py: hit rates with the own and a swapped template, on hand-made pairs."""

import pytest
import torch


class _TemplateMatcher:
    """Peaks at cell 5 * k with score PEAKS[k], where k is the template's constant value: a perfect matcher when
    pair k's target sits at cell 5 * k."""

    PEAKS = (0.9, 0.2, 0.6)

    def __call__(self, template, search):
        score = torch.zeros(template.shape[0], 1, 4, 4)
        for i, k in enumerate(template[:, 0, 0, 0].long().tolist()):
            score.view(template.shape[0], -1)[i, 5 * k] = self.PEAKS[k]
        return {"score_map": score}


def _batch(present):
    n = len(present)
    heatmap = torch.zeros(n, 4, 4)
    for k in range(n):
        heatmap.view(n, -1)[k, 5 * k] = 1.0 if present[k] else 0.0
    return {"template": torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 2, 2).clone(),
            "search": torch.zeros(n, 3, 4, 4), "search_heatmap": heatmap,
            "target_present": torch.tensor(present, dtype=torch.float32)}


def test_a_matcher_hits_with_its_own_template_only(benchmark_script):
    rates = benchmark_script("template_pairs").hit_rates(_TemplateMatcher(), [_batch([1, 1, 1])])
    assert rates["own"] == 1.0 and rates["swapped"] == 0.0 and rates["pairs"] == 3
    assert rates["peak_present"] == pytest.approx((0.9 + 0.2 + 0.6) / 3)
    assert rates["peak_absent"] != rates["peak_absent"]      # NaN: no negative pairs


def test_negative_pairs_count_for_the_peaks_not_the_hits(benchmark_script):
    rates = benchmark_script("template_pairs").hit_rates(_TemplateMatcher(), [_batch([1, 0, 1])])
    assert rates["own"] == 1.0 and rates["swapped"] == 0.0
    assert rates["peak_present"] == pytest.approx(0.75) and rates["peak_absent"] == pytest.approx(0.2)

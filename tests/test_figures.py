"""Figures fit for a thesis page: the Pareto figure's accuracy band, labels, runtime; convergence."""

import itertools

import pytest

from leanml.report import figures


def _row(name, family, accuracy, size, latency, front=False, **extra):
    return {
        "name": name,
        "family": family,
        "accuracy": accuracy,
        "size_bytes": size,
        "latency_ms_p50": latency,
        "pareto_size": front,
        "pareto_latency": front,
        **extra,
    }


def _rows(**extra):
    """A baseline at 97 %, a crowd of close models (on the front), one model far below."""
    rows = [_row("train", "train", 0.97, 30_000, 0.050, **extra)]
    for i in range(8):  # near-identical points: labels must still not overlap
        rows.append(
            _row(
                f"compress/prune/s{i}",
                "compress",
                0.96 + 0.001 * i,
                20_000 + 50 * i,
                0.040,
                i % 2 == 0,
                **extra,
            )
        )
    rows.append(_row("search/ga", "search", 0.985, 60_000, 0.070, True, **extra))
    rows.append(_row("compress/lowrank/r10", "compress", 0.21, 5_000, 0.030, **extra))
    return rows


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [
        t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    ]


RUNTIME = "LiteRT 2.3.0, 1 thread"


@pytest.fixture(scope="module")
def pareto(tmp_path_factory):
    """One drawing of `_rows` (with a latency runtime) shared by the tests below: what
    `plot_pareto` returned, its rows, and the PNG's path."""
    rows = _rows(latency_runtime=RUNTIME)
    png = tmp_path_factory.mktemp("pareto") / "pareto.png"
    return figures.plot_pareto(rows, png, "artifact bytes"), rows, png


def test_pareto_zooms_to_the_informative_band_and_counts_the_models_below(pareto):
    info, rows, _ = pareto
    low, high = info["ylim"]
    # the band: the front and the baseline in view, the 21 % model below the lower limit
    assert 21 < low < 95 and high > 98.5
    assert low < min(
        100 * r["accuracy"] for r in rows if r["pareto_size"] or r["family"] == "train"
    )
    assert info["below"] == 1
    for ax in info["axes"]:
        assert ax.get_ylim() == pytest.approx((low, high))
        # drawn on the bottom edge, as a downward triangle
        edge = [c for c in ax.collections if c.get_offsets().shape[0] and not c.get_clip_on()]
        assert len(edge) == 1 and edge[0].get_offsets()[0][1] == pytest.approx(low)
    assert any(t.startswith("1 below ") for t in _texts(info["figure"]))


def test_pareto_numbers_front_models_without_overlapping_labels(pareto):
    info, rows, _ = pareto
    front = {r["name"] for r in rows if r["pareto_size"] or r["pareto_latency"]}
    numbers = info["numbers"]
    assert set(numbers) == front and sorted(numbers.values()) == list(range(1, len(front) + 1))
    assert numbers["search/ga"] == 1  # the most accurate first
    # the table beside the panels lists every number with its name
    assert info["table"] == [
        f"{n:>2}  {name}" for name, n in sorted(numbers.items(), key=lambda kv: kv[1])
    ]
    assert "\n".join(info["table"]) in _texts(info["figure"])
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(info["figure"]).get_renderer()  # the figure was closed
    for labels in info["labels"]:  # one list per panel: every number once, no two overlap
        assert sorted(int(t.get_text()) for t in labels) == sorted(numbers.values())
        boxes = [t.get_window_extent(renderer) for t in labels]
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b), (a, b)
        panel = labels[0].axes.bbox
        assert all(panel.x0 <= b.x0 and b.x1 <= panel.x1 for b in boxes)


def test_pareto_latency_axis_names_the_runtime_and_the_png_is_deterministic(pareto, tmp_path):
    info, rows, png = pareto
    assert info["axes"][1].get_xlabel() == f"CPU latency, batch 1, p50 (ms, {RUNTIME})"
    figures.plot_pareto(rows, tmp_path / "again.png", "artifact bytes")
    assert (tmp_path / "again.png").read_bytes() == png.read_bytes()


def test_pareto_without_a_far_point_or_a_runtime_shows_every_model(tmp_path):
    rows = [r for r in _rows() if r["accuracy"] > 0.5]
    info = figures.plot_pareto(rows, tmp_path / "p.png", "artifact bytes")
    assert info["below"] == 0 and info["ylim"][0] < 96
    assert not any("below" in t for t in _texts(info["figure"]))
    assert info["axes"][1].get_xlabel() == "CPU latency, batch 1, p50 (ms)"


def test_convergence_has_a_panel_per_budget(tmp_path):
    curves = {
        "ga": [
            {"evaluation": 1, "epochs": 3, "best_score": 0.5},
            {"evaluation": 2, "epochs": 4, "best_score": 0.7},
        ],
        "pso": [{"evaluation": 1, "epochs": 9, "best_score": 0.6}],
    }
    info = figures.plot_convergence(curves, tmp_path / "c.png", "search")
    evals, epochs = info["axes"]
    assert evals.get_xlabel() == "evaluations (models trained)"
    assert epochs.get_xlabel() == "training epochs spent"
    # the same ga curve, against each budget
    ga_evals = next(line for line in evals.get_lines() if line.get_label() == "ga")
    ga_epochs = next(line for line in epochs.get_lines() if line.get_label() == "ga")
    assert list(ga_evals.get_xdata()) == [1, 2] and list(ga_epochs.get_xdata()) == [3, 4]
    # curves from an older file without epochs: the evaluations panel only
    old = {"ga": [{"evaluation": 1, "best_score": 0.5}]}
    assert len(figures.plot_convergence(old, tmp_path / "o.png", "search")["axes"]) == 1


def test_convergence_curves_keep_epochs_and_skip_files_without_the_columns(tmp_path):
    from leanml.report.convergence import convergence_curves

    for name, text in {
        "ga": "evaluation,epochs,best_score,best_val_accuracy\n1,3,0.5,0.5\n2,4,0.7,0.7\n",
        "old": "evaluation,best_score\n1,0.4\n",
        "odd": "step,value\n1,0.4\n",  # no column by name: not guessed by position
    }.items():
        (tmp_path / "search" / name).mkdir(parents=True)
        (tmp_path / "search" / name / "convergence.csv").write_text(text)
    curves = convergence_curves(tmp_path, "search")
    assert curves == {
        "ga": [
            {"evaluation": 1, "epochs": 3, "best_score": 0.5},
            {"evaluation": 2, "epochs": 4, "best_score": 0.7},
        ],
        "old": [{"evaluation": 1, "best_score": 0.4}],
    }

"""The course's figures draw what their docstrings say."""
import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import StepPatch  # noqa: E402

from coursekit.plotting import plot_layer_histograms  # noqa: E402


def test_layer_histograms_draw_one_histogram_per_layer_of_its_values():
    rng = np.random.default_rng(0)
    layers = [np.tanh(rng.standard_normal((50, 20)) * scale) for scale in (0.1, 1.0, 10.0)]
    fig = plot_layer_histograms(layers, title="tanh", bins=10, value_range=(-1, 1))
    try:
        assert len(fig.axes) == 3 and fig._suptitle.get_text() == "tanh"
        for i, (ax, a) in enumerate(zip(fig.axes, layers), start=1):
            assert ax.get_title() == f"layer {i}"
            (bars,) = [p for p in ax.patches if isinstance(p, StepPatch)]
            counts, edges = bars.get_data()[:2]
            np.testing.assert_array_equal(counts, np.histogram(a, bins=10, range=(-1, 1))[0])
            np.testing.assert_allclose(edges, np.linspace(-1, 1, 11))
        # the narrowest layer (scale 0.1) piles up in the middle bins, the widest at +-1
        assert fig.axes[0].patches[0].get_data()[0][[4, 5]].sum() > 900
        assert fig.axes[2].patches[0].get_data()[0][[0, 9]].sum() > 700
    finally:
        plt.close(fig)

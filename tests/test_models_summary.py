"""coursekit.models.summary and the lecture's architectures: every number notebook 06 quotes
is asserted here against the tool, torchvision, or a hand calculation."""
import pytest
import torch
import torchvision
from torch import nn

from coursekit import models
from coursekit.models import summary
from coursekit.reference import architectures as arch, conv


@pytest.fixture(scope="module")
def alexnet():
    return models.alexnet(), summary(models.alexnet(), models.ALEXNET_INPUT)


@pytest.fixture(scope="module")
def vgg():
    model = models.vgg16()
    return model, summary(model, models.VGG16_INPUT)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_totals_equal_parameter_count_and_hand_macs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(inplace=True), nn.Conv2d(8, 4, 1, groups=2),
                          nn.Flatten(), nn.Linear(4 * 5 * 5, 7))
    s = summary(model, (3, 10, 10))
    assert s.total_params == n_params(model) == sum(r.params for r in s.rows)
    # conv: 8 x 5 x 5 outputs, 3 x 3 x 3 each; grouped 1x1: 4 x 5 x 5 outputs, 8/2 each; linear 100 x 7
    assert [r.macs for r in s.rows if r.macs] == [8 * 25 * 27, 4 * 25 * 4, 100 * 7]
    relu = [r for r in s.rows if r.kind == "ReLU"][0]
    flatten = [r for r in s.rows if r.kind == "Flatten"][0]
    assert relu.activations == 0 and flatten.activations == 0   # in place / a view: no new memory
    assert s.rows[0].name == "input" and s.rows[0].activations == 300


def test_parameters_outside_leaf_modules_are_still_counted():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(5))
            self.fc = nn.Linear(5, 5)

        def forward(self, x):
            return self.fc(x) * self.scale

    model = Scaled()
    s = summary(model, (5,))
    assert s.total_params == n_params(model) == 35
    assert s.row("(other)").params == 5
    assert s.row("Scaled (output)").activations == 5          # the product is new memory


def test_bad_input_is_refused_clearly():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        summary(lambda x: x, (3, 4, 4))
    with pytest.raises(ValueError, match="without the batch axis"):
        summary(nn.Linear(3, 3), 3)
    with pytest.raises(ValueError, match="unknown kind"):
        models.build([("x", "dense", 3)])


def test_summary_restores_training_mode():
    model = models.resnet18()
    summary(model, (3, 32, 32))
    assert model.training


def test_alexnet_lecture_numbers(alexnet):
    model, s = alexnet
    conv1 = s.row("conv1")
    assert conv1.out_shape == (96, 55, 55)
    assert model.conv1.weight.numel() == 34_848 and conv1.params == 34_848 + 96
    pool1 = s.row("pool1")
    assert pool1.out_shape == (96, 27, 27) and pool1.params == 0
    assert s.row("pool3").out_shape == (256, 6, 6)
    assert s.total_params == n_params(model) == 62_378_344          # "60M"
    assert s.output_shape == (1000,)


def test_vgg16_lecture_numbers(vgg):
    model, s = vgg
    tv = torchvision.models.vgg16()
    assert s.total_params == n_params(tv) == 138_357_544            # "138M parameters"
    assert [p.shape for p in model.parameters()] == [p.shape for p in tv.parameters()]
    assert s.row("conv1_1").activations == 224 * 224 * 64 == 3_211_264   # the slide's 3.2M
    assert s.row("pool1").activations == 802_816                          # 800K
    assert s.row("conv5_3").activations == 100_352 and s.row("pool5").activations == 25_088
    # The slide's own per-layer numbers add up to 15.2M values = 61 MB (input included), not
    # its quoted "24M x 4 bytes = 96 MB": the notebook says so.
    assert s.total_activations == 15_237_608
    assert round(s.total_memory / 1e6) == 61
    biggest_memory = max(s.rows, key=lambda r: r.memory)
    assert biggest_memory.name in ("conv1_1", "conv1_2")              # memory: early convs
    fc = sum(s.row(n).params for n in ("fc6", "fc7", "fc8"))
    assert max(s.rows, key=lambda r: r.params).name == "fc6" and fc / s.total_params > 0.85


def test_network_table_reference_matches_the_tool(alexnet, vgg):
    for (model, s), in_shape, layers in ((alexnet, models.ALEXNET_INPUT, models.ALEXNET_LAYERS),
                                         (vgg, models.VGG16_INPUT, models.VGG16_LAYERS)):
        for name, shape, params, activations, macs in arch.network_table(in_shape, layers):
            row = s.row(name)
            assert (row.out_shape, row.params, row.activations, row.macs) == (shape, params, activations, macs)


def test_inception_naive_and_bottleneck():
    naive = summary(models.Inception(256, 128, 192, 96), (256, 28, 28))
    assert naive.output_shape == (672, 28, 28)                        # 28x28x672
    assert naive.total_macs == 854_196_224                             # "854M ops"
    bottleneck = summary(models.Inception(256, 128, 192, 96, 64, 64, 64), (256, 28, 28))
    assert bottleneck.output_shape == (480, 28, 28)
    # the slide's six terms; they add up to 271M (the slide's total says 358M)
    terms = [28 * 28 * 64 * 256, 28 * 28 * 64 * 256, 28 * 28 * 128 * 256, 28 * 28 * 192 * 9 * 64,
             28 * 28 * 96 * 25 * 64, 28 * 28 * 64 * 256]
    assert bottleneck.total_macs == sum(terms) == 271_351_808
    assert arch.inception_stats((256, 28, 28), 128, 192, 96) == ((672, 28, 28), 854_196_224)
    assert arch.inception_stats((256, 28, 28), 128, 192, 96, 64, 64, 64) == ((480, 28, 28), 271_351_808)


@pytest.mark.parametrize("name,count", [("resnet18", 11_689_512), ("resnet34", 21_797_672),
                                        ("resnet50", 25_557_032)])
def test_resnets_equal_torchvision(name, count):
    ours, theirs = getattr(models, name)(), getattr(torchvision.models, name)()
    assert n_params(ours) == n_params(theirs) == count
    ours.load_state_dict(theirs.state_dict())                       # same names, same shapes
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_three_3x3_convs_against_one_7x7():
    c = 32
    for n, k, weights in ((3, 3, 27 * c * c), (1, 7, 49 * c * c)):
        stack = nn.Sequential(*[nn.Conv2d(c, c, k, padding=k // 2, bias=False) for _ in range(n)])
        assert summary(stack, (c, 16, 16)).total_params == weights == arch.stack_stats(n, k, c)[1]
        assert conv.receptive_field([(k, 1)] * n) == 7 == arch.stack_stats(n, k, c)[0]


def test_residual_connections_make_depth_trainable():
    """Notebook 06's experiment: 40 blocks, plain stays at ln 3, residual fits the spirals."""
    from coursekit.data import make_spirals
    X, y = (torch.tensor(a) for a in make_spirals(200, 3, seed=0))
    X = X.float()
    final = {}
    for residual in (False, True):
        torch.manual_seed(0)
        net = models.DeepMLP(2, 32, 40, 3, residual)
        optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(300):
            loss = nn.functional.cross_entropy(net(X), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        final[residual] = loss.item()
    assert abs(final[False] - 1.0986) < 0.01
    assert final[True] < 0.1


@pytest.mark.parametrize("build, shape", [
    (models.alexnet, models.ALEXNET_INPUT), (models.vgg16, models.VGG16_INPUT),
    (torchvision.models.resnet18, (3, 64, 64)),                       # in-place ReLU, x + shortcut
    (lambda: torchvision.models.googlenet(init_weights=False, aux_logits=False), (3, 64, 64)),  # torch.cat
], ids=["alexnet", "vgg16", "resnet18", "googlenet"])
def test_a_model_on_the_meta_device_gives_the_same_table(build, shape):
    """Notebook 06 and its checker build the big networks on the meta device (shapes without
    values: nothing to initialise, nothing computed); the table is the one of the real model,
    views and in-place results included."""
    torch.manual_seed(0)
    real = summary(build(), shape)
    with torch.device("meta"):
        meta = build()
    shapes_only = summary(meta, shape)
    assert shapes_only.rows == real.rows and shapes_only.total_params == real.total_params

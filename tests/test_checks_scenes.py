"""The checkers of notebook 07's networks pass a student's own right networks and name the
mistake in wrong ones, including "it does not learn" (the cheap memorisation task of
``coursekit.checks.scenes._learns``)."""

import pytest
import torch
from torch import nn

from coursekit.checks import CheckError
from coursekit.checks import scenes as check


class SimpleNet(nn.Module):
    """A student's own SimpleNet: 2 convs, 15 scores for 64x64 images."""

    def __init__(self, num_classes=15):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 5), nn.ReLU(), nn.MaxPool2d(3),
                                      nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(3))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(800, 100), nn.ReLU(), nn.Linear(100, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class SimpleNetFinal(nn.Module):
    """A student's own SimpleNetFinal: 3 conv + batch norm blocks."""

    def __init__(self, num_classes=15):
        super().__init__()
        block = lambda cin, cout: [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class Frozen(SimpleNet):
    """A slip copied from the transfer-learning exercise: every layer frozen, so the optimiser
    trains nothing but a bias added at the end."""

    def __init__(self, num_classes=15):
        super().__init__(num_classes)
        for p in self.parameters():
            p.requires_grad = False
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x):
        return super().forward(x) + self.bias


class FinalInAList(SimpleNetFinal):
    def __init__(self, num_classes=15):
        super().__init__(num_classes)
        self.layers = [self.features]
        del self.features

    def forward(self, x):
        return self.classifier(self.layers[0](x))


@pytest.mark.parametrize("seed", [0, 1, 7303])
def test_right_networks_pass_and_learn(seed):
    assert "it learns" in check.simple_net.__wrapped__(SimpleNet, seed=seed)
    assert "it learns" in check.final_net.__wrapped__(SimpleNetFinal, seed=seed)


def test_a_network_whose_layers_are_not_trained_does_not_learn():
    with pytest.raises(CheckError, match="cannot even memorise 8 images in 20 Adam steps.*left trainable"):
        check.simple_net.__wrapped__(Frozen)


def test_a_final_network_without_batch_norm_or_learning_is_told_which():
    class NoNorm(SimpleNetFinal):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*[m for m in self.features if not isinstance(m, nn.BatchNorm2d)])

    with pytest.raises(CheckError, match="no nn.BatchNorm2d"):
        check.final_net.__wrapped__(NoNorm)
    # its batch norm layers are there but unregistered: found by neither count nor training
    with pytest.raises(CheckError, match="no nn.BatchNorm2d"):
        check.final_net.__wrapped__(FinalInAList)

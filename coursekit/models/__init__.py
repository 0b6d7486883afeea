"""PyTorch models of the course and the per-layer summary tool."""
from .lecture import ALEXNET_INPUT, ALEXNET_LAYERS, VGG16_INPUT, VGG16_LAYERS, Inception, alexnet, build, vgg16
from .residual import DeepMLP
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50
from .summary import LayerRow, Summary, summary

__all__ = ["ALEXNET_INPUT", "ALEXNET_LAYERS", "BasicBlock", "Bottleneck", "DeepMLP", "Inception",
           "LayerRow", "ResNet", "Summary", "VGG16_INPUT", "VGG16_LAYERS", "alexnet", "build",
           "resnet18", "resnet34", "resnet50", "summary", "vgg16"]

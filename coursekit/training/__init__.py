"""Training on the device: batch augmentation on uint8 tensors, the Trainer, feature extraction."""
from .augment import Augment, augment, to_float
from .trainer import History, TrainConfig, Trainer, extract_features, pick_device

__all__ = ["Augment", "History", "TrainConfig", "Trainer", "augment", "extract_features",
           "pick_device", "to_float"]

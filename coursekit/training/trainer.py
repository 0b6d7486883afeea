"""Training image classifiers fast, on whatever device there is.

    trainer = Trainer(model, data.train, data.test, TrainConfig(epochs=10, image_size=64,
                      mean=mean, std=std))
    history = trainer.fit()          # tqdm bar per epoch; history.plot() draws the curves

* the device is picked for you (cuda > mps > cpu, or ``TrainConfig.device``);
* the images stay a uint8 tensor on that device; every batch is augmented and normalised
  there (:mod:`coursekit.training.augment`), so there are no loader workers to wait for;
* on a GPU: bf16 autocast and channels_last memory format; ``compile=True`` adds
  ``torch.compile``;
* ``seed`` makes a run repeatable (shuffling, augmentation, dropout); seed the model's
  initialisation yourself (``torch.manual_seed`` before building it);
* ``checkpoint=PATH`` saves everything after each epoch (atomically), and ``fit(resume=True)``
  continues from it, reproducing the uninterrupted run exactly on CPU;
* ``fit_or_load("simple.safetensors", train)`` trains and saves the model's weights as a
  student hands them in (:mod:`coursekit.models.weights`), or loads them instead of training.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import bar as progress_bar
from .augment import Augment, augment, to_float


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given, else the fastest available: cuda, then Apple's mps, then cpu."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class TrainConfig:
    """How to train. ``augment=None`` trains on the images as they are (only normalised)."""
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"            # 'sgd' (momentum 0.9, nesterov) or 'adamw'
    weight_decay: float = 5e-4
    schedule: str = "onecycle"        # 'onecycle', 'cosine' or 'constant'
    label_smoothing: float = 0.0
    augment: Augment | None = None
    image_size: int | None = None     # input size the model sees (None: as stored)
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.25, 0.25, 0.25)
    seed: int = 0
    device: str | None = None
    amp: bool | None = None           # bf16 autocast; default: on for cuda
    channels_last: bool | None = None  # default: on for cuda
    compile: bool = False
    tta_flip: bool = False            # evaluate on each image and its mirror image, averaged
    eval_every: int = 1               # evaluate on the test split every k epochs (and the last)
    checkpoint: str | os.PathLike | None = None
    progress: bool = True


@dataclass
class History:
    """Per-epoch numbers of a run; ``plot()`` draws loss and accuracy curves."""
    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)       # training seconds so far
    images: list = field(default_factory=list)        # training images seen so far
    loaded_from: str = ""                             # the weights file, when not trained here

    @property
    def images_per_s(self) -> float:
        return self.images[-1] / self.seconds[-1] if self.seconds and self.seconds[-1] else 0.0

    def plot(self, axes=None, title: str = "", eval_label: str = "test"):
        from ..plotting.training import plot_curves

        return plot_curves(self, axes=axes, title=title, eval_label=eval_label)


def _batches(n: int, batch_size: int, generator, device, drop_last: bool):
    order = torch.randperm(n, device=device, generator=generator)
    stop = n - n % batch_size if drop_last and n > batch_size else n
    for i in range(0, stop, batch_size):
        yield order[i:i + batch_size]


class Trainer:
    """Trains ``model`` on a training split (``x`` (N, 3, S, S) uint8, ``y`` (N,) int64) and
    evaluates on a test split; both are moved to the device once."""

    def __init__(self, model: nn.Module, train, test=None, config: TrainConfig | None = None, **kw):
        if config is not None and kw:
            raise TypeError("pass either a TrainConfig or keyword settings, not both")
        self.config = config = config or TrainConfig(**kw)
        self.device = pick_device(config.device)
        cuda = self.device.type == "cuda"
        self.amp = cuda if config.amp is None else config.amp
        self.channels_last = cuda if config.channels_last is None else config.channels_last
        torch.manual_seed(config.seed)
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = torch.compile(self.model) if config.compile else self.model
        self.train_x, self.train_y = self._check("train", train)
        self.test_x, self.test_y = self._check("test", test) if test is not None else (None, None)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters (all requires_grad=False)")
        if config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True,
                                             weight_decay=config.weight_decay)
        elif config.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {config.optimizer!r}")
        n = len(self.train_y)
        steps = config.epochs * max(1, n // config.batch_size if n > config.batch_size else 1)
        if config.schedule == "onecycle" and steps >= 4:
            # warm up over a quarter of the steps (at least two, which very short runs need)
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=config.lr, total_steps=steps, pct_start=max(0.25, 2 / steps))
        elif config.schedule == "onecycle":     # fewer than 4 steps: nothing to schedule
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)
        elif config.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(steps, 1))
        elif config.schedule == "constant":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)
        else:
            raise ValueError(f"schedule must be 'onecycle', 'cosine' or 'constant', got {config.schedule!r}")
        self.history = History()
        self.epoch = 0

    def _check(self, name, split):
        x, y = (split.x, split.y) if hasattr(split, "x") else split
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise TypeError(f"{name} images should be a uint8 tensor (N, 3, H, W), got "
                            f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        y = torch.as_tensor(y)
        if y.shape != (x.shape[0],) or y.dtype != torch.int64:
            raise TypeError(f"{name} labels should be int64 of shape ({x.shape[0]},), got "
                            f"{y.dtype} {tuple(y.shape)}")
        return x.to(self.device), y.to(self.device)

    # -- one batch ------------------------------------------------------------------------------

    def _inputs(self, xb: torch.Tensor, train: bool) -> torch.Tensor:
        c = self.config
        if train and c.augment is not None:
            out = augment(xb, c.mean, c.std, c.image_size, c.augment, generator=self.generator)
        else:
            out = to_float(xb, c.mean, c.std, c.image_size)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def _train_mode(self) -> None:
        self.model.train()
        # Batch norm inside a frozen backbone keeps its ImageNet statistics.
        for m in self.model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(
                    p.requires_grad for p in m.parameters(recurse=False)):
                m.eval()

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class scores (N, C) float32 on the CPU for uint8 images ``x`` (N, 3, H, W)."""
        self.model.eval()
        out = []
        for i in range(0, len(x), batch_size):
            xb = self._inputs(x[i:i + batch_size].to(self.device), train=False)
            with self._autocast():
                scores = self.forward(xb).float()
                if self.config.tta_flip:
                    scores = (scores + self.forward(xb.flip(-1)).float()) / 2
            out.append(scores.cpu())
        return torch.cat(out)

    def evaluate(self, x=None, y=None) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) on the test split (or on ``x``, ``y``)."""
        x = self.test_x if x is None else x
        y = self.test_y if y is None else y
        scores = self.logits(x)
        y = y.cpu()
        return F.cross_entropy(scores, y).item(), (scores.argmax(1) == y).float().mean().item()

    # -- the loop ---------------------------------------------------------------------------------

    def warm_up(self) -> float:
        """One forward and backward pass on a training batch, without an optimiser step: loads
        the GPU kernels (seconds for some networks, once per process) before the clock starts.
        Returns the seconds it took."""
        start = time.perf_counter()
        self._train_mode()
        xb = self._inputs(self.train_x[:self.config.batch_size], train=False)
        with self._autocast():
            loss = F.cross_entropy(self.forward(xb).float(), self.train_y[:self.config.batch_size])
        loss.backward()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def fit(self, resume: bool = False) -> History:
        """Train for ``config.epochs`` epochs (the remaining ones when resuming)."""
        c = self.config
        if resume:
            if c.checkpoint is None:
                raise ValueError("fit(resume=True) needs TrainConfig.checkpoint")
            if Path(c.checkpoint).is_file():
                self.load(c.checkpoint)
        n = len(self.train_y)
        bar = progress_bar(total=c.epochs, initial=self.epoch, desc=f"training on {self.device.type}",
                           unit="epoch", progress=c.progress)
        spent = self.history.seconds[-1] if self.history.seconds else 0.0
        seen = self.history.images[-1] if self.history.images else 0
        while self.epoch < c.epochs:
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            self._train_mode()
            total_loss = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device)
            count = 0
            for idx in _batches(n, c.batch_size, self.generator, self.device, drop_last=True):
                xb, yb = self._inputs(self.train_x[idx], train=True), self.train_y[idx]
                with self._autocast():
                    scores = self.forward(xb)
                    loss = F.cross_entropy(scores.float(), yb, label_smoothing=c.label_smoothing)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.scheduler.step()
                total_loss += loss.detach() * len(yb)
                correct += (scores.argmax(1) == yb).sum()
                count += len(yb)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            spent += time.perf_counter() - start
            seen += count
            self.epoch += 1
            h = self.history
            h.epoch.append(self.epoch)
            h.train_loss.append(total_loss.item() / count)
            h.train_acc.append(correct.item() / count)
            h.seconds.append(spent)
            h.images.append(seen)
            last = self.epoch == c.epochs
            if self.test_x is not None and (last or self.epoch % c.eval_every == 0):
                loss, acc = self.evaluate()
            else:
                loss, acc = float("nan"), float("nan")
            h.test_loss.append(loss)
            h.test_acc.append(acc)
            bar.set_postfix(loss=f"{h.train_loss[-1]:.3f}", train=f"{h.train_acc[-1]:.1%}",
                            test=f"{acc:.1%}")
            bar.update(1)
            if c.checkpoint is not None:
                self.save(c.checkpoint)
        bar.close()
        return self.history

    def fit_or_load(self, path: str | os.PathLike, train: bool = True) -> History:
        """Train (:meth:`fit`) and save the model's weights to ``path`` in the format a student
        hands in (:func:`coursekit.models.weights.save_weights`, with this run's image size and
        normalisation); with ``train=False``, load them from ``path`` instead of training."""
        from ..models.weights import load_weights, save_weights

        if not train:
            load_weights(self.model, path)
            self.model.to(self.device)
            self.history = History(loaded_from=str(path))
            return self.history
        history = self.fit()
        c = self.config
        save_weights(self.model, path, image_size=c.image_size or int(self.train_x.shape[-1]),
                     mean=c.mean, std=c.std)
        return history

    # -- checkpoints ------------------------------------------------------------------------------

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch,
                "history": asdict(self.history), "generator": self.generator.get_state(),
                "cpu_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "config": {k: v for k, v in asdict(self.config).items() if k != "augment"}}

    def save(self, path: str | os.PathLike) -> Path:
        """Write model, optimizer, schedule, epoch, history and random states (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)
        return path

    def load(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by :meth:`save` (same model and configuration)."""
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as exc:
            raise ValueError(f"{path} is not a readable checkpoint: {exc}") from exc
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ValueError(f"{path} holds the weights of a different model: {exc}") from exc
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        self.history = History(**state["history"])
        self.generator.set_state(state["generator"].cpu() if self.device.type == "cpu" else state["generator"])
        torch.set_rng_state(state["cpu_rng"].cpu())
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])


@torch.no_grad()
def extract_features(backbone: nn.Module, x: torch.Tensor, mean, std, size: int | None = None,
                     batch_size: int = 128, device: str | None = None, progress: bool = True) -> torch.Tensor:
    """Run a frozen backbone once over uint8 images ``x`` (N, 3, S, S): features (N, D) float32
    on the CPU. Training a linear head on them is the same as training it on top of the frozen
    backbone, without running the backbone every epoch."""
    dev = pick_device(device)
    backbone = backbone.to(dev).eval()
    amp = dev.type == "cuda"
    out = []
    for i in progress_bar(range(0, len(x), batch_size), desc="extracting features", progress=progress,
                          leave=False):
        xb = to_float(x[i:i + batch_size].to(dev), mean, std, size)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            out.append(backbone(xb).float().flatten(1).cpu())
    return torch.cat(out)

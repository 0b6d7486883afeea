"""The device trainer and its on-device augmentation (run on the CPU here; CI has no GPU)."""
import pytest
import torch

from coursekit.data import fifteen_scene as scenes
from coursekit.models.scene_nets import SimpleNet, SimpleNetDropout, SimpleNetFinal
from coursekit.training import Augment, TrainConfig, Trainer, augment, pick_device, to_float

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _images(n=8, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def test_to_float_normalises_and_resizes():
    x = _images()
    out = to_float(x, MEAN, STD)
    torch.testing.assert_close(out, (x.float() / 255 - 0.5) / 0.25)
    assert tuple(to_float(x, MEAN, STD, size=24).shape) == (8, 3, 24, 24)
    with pytest.raises(TypeError, match="uint8"):
        to_float(x.float(), MEAN, STD)


def test_augment_without_randomness_is_the_identity_and_flip_mirrors():
    x = _images()
    none = Augment(scale=(1, 1), ratio=(1, 1), flip=0, brightness=0, contrast=0, saturation=0)
    torch.testing.assert_close(augment(x, MEAN, STD, aug=none), to_float(x, MEAN, STD), atol=1e-5, rtol=0)
    flip = Augment(scale=(1, 1), ratio=(1, 1), flip=1.0, brightness=0, contrast=0, saturation=0)
    torch.testing.assert_close(augment(x, MEAN, STD, aug=flip), to_float(x, MEAN, STD).flip(-1), atol=1e-5, rtol=0)


def test_augment_gives_each_image_its_own_crop_and_is_seeded():
    x = _images(1).repeat(6, 1, 1, 1)
    out = augment(x, MEAN, STD, size=12, generator=torch.Generator().manual_seed(1))
    assert tuple(out.shape) == (6, 3, 12, 12)
    assert len({tuple(o.flatten()[:20].tolist()) for o in out}) == 6
    again = augment(x, MEAN, STD, size=12, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, again)


def test_pick_device_here_is_cpu_unless_asked():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected
    assert pick_device("cpu").type == "cpu"


@pytest.mark.parametrize("model, size", [(SimpleNet(), 64), (SimpleNetDropout(), 64), (SimpleNetFinal(), 64),
                                         (SimpleNetFinal(), 128)])
def test_models_give_fifteen_scores(model, size):
    model.eval()
    assert tuple(model(torch.zeros(2, 3, size, size)).shape) == (2, 15)


def test_dropout_net_is_random_in_training_only():
    model, x = SimpleNetDropout(), torch.randn(2, 3, 64, 64)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_bad_training_data_is_explained():
    with pytest.raises(TypeError, match=r"train images should be a uint8 tensor \(N, 3, H, W\), got torch.float32"):
        Trainer(SimpleNet(), (torch.zeros(4, 3, 64, 64), torch.zeros(4, dtype=torch.int64)), progress=False)
    with pytest.raises(TypeError, match=r"train labels should be int64 of shape \(4,\)"):
        Trainer(SimpleNet(), (_images(4, 64), torch.zeros(5, dtype=torch.int64)), progress=False)
    with pytest.raises(ValueError, match="optimizer must be"):
        Trainer(SimpleNet(), (_images(4, 64), torch.zeros(4, dtype=torch.int64)), optimizer="rmsprop",
                progress=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return scenes.open_scenes(size=64, home=tmp_path_factory.mktemp("gen"), progress=False)


def _config(**kw):
    base = dict(epochs=4, batch_size=32, lr=3e-3, optimizer="adamw", weight_decay=0.05,
                augment=Augment(scale=(0.6, 1)), mean=(0.5,) * 3, std=(0.25,) * 3, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_training_learns_the_generated_scenes(generated):
    history = Trainer(SimpleNetDropout(), generated.train, generated.test, _config(epochs=12)).fit()
    assert history.test_acc[-1] > 0.5, history.test_acc        # chance: 1/15
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.images[-1] == 12 * (300 - 300 % 32)


def test_resume_from_checkpoint_reproduces_the_uninterrupted_run(generated, tmp_path):
    torch.manual_seed(0)
    straight = Trainer(SimpleNetDropout(), generated.train, generated.test, _config(seed=3))
    straight.fit()
    torch.manual_seed(0)

    ckpt = tmp_path / "run.pt"
    first = Trainer(SimpleNetDropout(), generated.train, generated.test, _config(seed=3, epochs=4, checkpoint=ckpt))
    first.config.epochs = 2          # "interrupted" after two epochs
    first.fit()
    torch.manual_seed(1)                 # a fresh start: the weights come from the checkpoint
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2
    resumed = Trainer(SimpleNetDropout(), generated.train, generated.test, _config(seed=99, checkpoint=ckpt))
    resumed.fit(resume=True)
    assert resumed.epoch == 4
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.history.train_loss == pytest.approx(straight.history.train_loss, abs=0)
    assert resumed.history.test_acc == pytest.approx(straight.history.test_acc, abs=0)


def test_resume_refuses_a_checkpoint_of_another_model(generated, tmp_path):
    ckpt = tmp_path / "run.pt"
    Trainer(SimpleNet(), generated.train, None, _config(epochs=1, checkpoint=ckpt)).fit()
    other = Trainer(SimpleNetFinal(), generated.train, None, _config(epochs=2, checkpoint=ckpt))
    with pytest.raises(ValueError, match="weights of a different model"):
        other.fit(resume=True)


def test_bf16_autocast_and_channels_last_run_on_cpu(generated):
    trainer = Trainer(SimpleNetFinal(width=8), generated.train, generated.test,
                      _config(epochs=1, amp=True, channels_last=True))
    history = trainer.fit()
    assert trainer.amp and trainer.channels_last
    assert history.test_acc[-1] == history.test_acc[-1]          # not NaN
    assert trainer.warm_up() >= 0


def test_history_plot_draws_both_curves(generated):
    import matplotlib
    matplotlib.use("Agg")
    history = Trainer(SimpleNet(), generated.train, generated.test, _config(epochs=2)).fit()
    loss_ax, acc_ax = history.plot()
    assert [line.get_label() for line in acc_ax.get_lines()] == ["train", "test"]
    assert list(acc_ax.get_lines()[1].get_ydata()) == history.test_acc


@pytest.mark.parametrize("n, epochs", [(5, 1), (64, 1), (300, 1), (300, 3)])
def test_one_cycle_schedule_handles_very_short_runs(n, epochs):
    x, y = _images(n, 32), torch.arange(n) % 15
    history = Trainer(SimpleNet(), (x, y), None, _config(epochs=epochs, batch_size=64)).fit()
    assert len(history.train_loss) == epochs

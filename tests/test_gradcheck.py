"""nc.gradcheck (central differences, float64) on every layer and loss, and on layers that are
wrong on purpose, which it must catch."""

import numpy as np
import pytest

import numcnn as nc

F64 = np.float64


def randomized(layer, seed=0):
    """The layer with random params (and running stats), so no zero bias or unit scale hides a term."""
    rng = np.random.default_rng(seed)
    for value in layer.params.values():
        value[...] = rng.standard_normal(value.shape)
    for key, value in layer.buffers.items():
        if key == "running_mean":
            value[...] = rng.standard_normal(value.shape)
        elif key == "running_var":
            value[...] = rng.uniform(0.5, 2.0, value.shape)
    return layer


def away_from_zero(shape, seed=0):
    """Standard normals pushed at least 0.1 from 0, where relu-like layers have no derivative."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return x + 0.1 * np.sign(x)


class LossAsLayer:
    """A loss with a fixed target seen as a layer: forward(x) -> loss (0-d), backward(dout) -> dx."""

    def __init__(self, loss, target):
        self.loss, self.target = loss, target

    def forward(self, x):
        return np.asarray(self.loss.forward(x, self.target))

    def backward(self, dout):
        return self.loss.backward() * dout


LAYERS = {
    "Conv2d": (lambda: nc.Conv2d(3, 4, 3, padding=1, dtype=F64), (2, 3, 5, 5)),
    "Conv2d strided dilated grouped": (
        lambda: nc.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, dtype=F64),
        (2, 4, 7, 6)),
    "Conv2d depthwise, no bias": (lambda: nc.Conv2d(3, 3, 3, groups=3, bias=False, dtype=F64), (2, 3, 4, 5)),
    "Conv2d same, even kernel": (lambda: nc.Conv2d(2, 2, (2, 4), padding="same", dtype=F64), (1, 2, 5, 6)),
    "MaxPool2d": (lambda: nc.MaxPool2d(2), (2, 2, 4, 6)),
    "MaxPool2d overlapping padded": (lambda: nc.MaxPool2d(3, stride=2, padding=1), (2, 2, 5, 5)),
    "AvgPool2d": (lambda: nc.AvgPool2d(3, stride=2, padding=1), (2, 2, 5, 5)),
    "AvgPool2d count_include_pad=False": (lambda: nc.AvgPool2d((3, 2), stride=1, padding=(1, 1),
                                                               count_include_pad=False), (1, 2, 4, 4)),
    "GlobalAvgPool2d": (lambda: nc.GlobalAvgPool2d(), (2, 3, 3, 4)),
    "Linear": (lambda: nc.Linear(6, 4, dtype=F64), (3, 6)),
    "Linear 4-D input": (lambda: nc.Linear(12, 3, dtype=F64), (2, 3, 2, 2)),
    "Flatten": (lambda: nc.Flatten(), (2, 3, 2, 2)),
    "ReLU": (lambda: nc.ReLU(), (3, 4)),
    "LeakyReLU": (lambda: nc.LeakyReLU(0.1), (3, 4)),
    "Sigmoid": (lambda: nc.Sigmoid(), (3, 4)),
    "Tanh": (lambda: nc.Tanh(), (3, 4)),
    "Softmax": (lambda: nc.Softmax(), (3, 5)),
    "Softmax 4-D, over channels": (lambda: nc.Softmax(), (2, 3, 2, 2)),
    "Dropout train": (lambda: nc.Dropout(0.5, seed=0), (4, 5)),
    "Dropout eval": (lambda: nc.Dropout(0.5, seed=0).eval(), (4, 5)),
    "BatchNorm1d train": (lambda: nc.BatchNorm1d(3, dtype=F64), (5, 3)),
    "BatchNorm1d train, 3-D": (lambda: nc.BatchNorm1d(2, dtype=F64), (3, 2, 4)),
    "BatchNorm1d eval": (lambda: nc.BatchNorm1d(3, dtype=F64).eval(), (5, 3)),
    "BatchNorm2d train": (lambda: nc.BatchNorm2d(3, dtype=F64), (2, 3, 3, 2)),
    "BatchNorm2d eval": (lambda: nc.BatchNorm2d(3, dtype=F64).eval(), (2, 3, 3, 2)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_gradcheck_passes_on_every_layer(name):
    make, shape = LAYERS[name]
    layer = randomized(make())
    x = away_from_zero(shape)
    before = x.copy(), {k: v.copy() for k, v in layer.params.items()}, {k: v.copy() for k, v in layer.buffers.items()}
    assert nc.gradcheck(layer, x) is True
    # it perturbs copies or puts every value back: input, params and running statistics
    np.testing.assert_array_equal(x, before[0])
    for key, value in layer.params.items():
        np.testing.assert_array_equal(value, before[1][key], err_msg=f"param {key} changed")
    for key, value in layer.buffers.items():
        np.testing.assert_array_equal(value, before[2][key], err_msg=f"buffer {key} changed")


def _loss_cases():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 5)) * 3
    return {
        "cross-entropy, labels": (nc.SoftmaxCrossEntropy(), logits, rng.integers(0, 5, 4)),
        "cross-entropy, probabilities": (nc.SoftmaxCrossEntropy(), logits, rng.dirichlet(np.ones(5), 4)),
        "mse": (nc.MSELoss(), rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 2, 2))),
    }


LOSSES = _loss_cases()


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_passes_on_every_loss(name):
    loss, pred, target = LOSSES[name]
    assert nc.gradcheck(LossAsLayer(loss, target), pred) is True


class Scale:
    """y = x * scale (scale broadcast over the batch), with optional deliberate gradient bugs."""

    def __init__(self, wrong_dx=False, wrong_dscale=False):
        self.params = {"scale": np.random.default_rng(1).uniform(0.5, 1.5, 4)}
        self.grads = {}
        self.wrong_dx, self.wrong_dscale = wrong_dx, wrong_dscale

    def forward(self, x):
        self.x = x
        return x * self.params["scale"]

    def backward(self, dout):
        self.grads["scale"] = (dout * self.x).sum(axis=0) * (1.001 if self.wrong_dscale else 1.0)
        return dout * (self.params["scale"] ** 2 if self.wrong_dx else self.params["scale"])


def test_gradcheck_accepts_a_correct_custom_layer():
    assert nc.gradcheck(Scale(), np.random.default_rng(0).standard_normal((3, 4))) is True


def test_gradcheck_catches_a_wrong_input_gradient():
    with pytest.raises(nc.GradcheckError) as info:
        nc.gradcheck(Scale(wrong_dx=True), np.random.default_rng(0).standard_normal((3, 4)))
    assert isinstance(info.value, AssertionError)
    assert "scale" not in str(info.value)  # the mismatch is in dx, not in the parameter


def test_gradcheck_catches_a_wrong_parameter_gradient_and_names_it():
    with pytest.raises(nc.GradcheckError, match="scale"):
        nc.gradcheck(Scale(wrong_dscale=True), np.random.default_rng(0).standard_normal((3, 4)))


def test_gradcheck_skips_parameters_when_told():
    assert nc.gradcheck(Scale(wrong_dscale=True), np.random.default_rng(0).standard_normal((3, 4)),
                        check_params=False) is True


def test_gradcheck_works_without_params():
    class Square:
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, dout):
            return 2 * self.x * dout

    assert nc.gradcheck(Square(), np.random.default_rng(0).standard_normal((2, 3))) is True


def test_gradcheck_catches_a_dropout_whose_backward_ignores_the_mask():
    class MaskBlindDropout(nc.Dropout):
        def __init__(self):
            super().__init__(0.5, seed=0)

        def backward(self, dout):
            return dout * 2.0  # 1 / (1 - p), as if every unit had been kept

    with pytest.raises(nc.GradcheckError):
        nc.gradcheck(MaskBlindDropout(), np.random.default_rng(0).standard_normal((4, 5)))


def test_gradcheck_catches_a_batchnorm_whose_backward_forgets_the_batch_statistics():
    class NoStatsBatchNorm(nc.BatchNorm1d):
        """dx as if the batch mean and variance were constants: wrong in train mode."""

        def __init__(self):
            super().__init__(3, eps=1e-5, dtype=F64)

        def forward(self, x):
            self.x_seen = x
            return super().forward(x)

        def backward(self, dout):
            super().backward(dout)
            return dout * self.params["weight"] / np.sqrt(self.x_seen.var(axis=0) + 1e-5)

    with pytest.raises(nc.GradcheckError):
        nc.gradcheck(randomized(NoStatsBatchNorm()), away_from_zero((5, 3)))


def test_gradcheck_catches_a_softmax_whose_backward_treats_it_as_elementwise():
    class DiagonalSoftmax(nc.Softmax):
        def forward(self, x):
            self.y = super().forward(x)
            return self.y

        def backward(self, dout):
            return dout * self.y * (1 - self.y)  # the Jacobian's diagonal only: no coupling across classes

    with pytest.raises(nc.GradcheckError):
        nc.gradcheck(DiagonalSoftmax(), np.random.default_rng(0).standard_normal((3, 5)))

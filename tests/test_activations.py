"""Activation backbones: initialisation statistics, omega_0, the fast sine layer's gradients,
and timm's activations by name."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from relightzoo.errors import PluginError
from relightzoo.zoo import Backbone, create_activation, list_plugins


def _uniform_bound_ok(w: torch.Tensor, bound: float) -> None:
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.98 * bound  # fills the range
    assert abs(w.std().item() - bound / math.sqrt(3)) < 0.03 * bound  # uniform, not normal


def test_sine_init_follows_siren():
    sine = create_activation("sine", first_omega_0=10, hidden_omega_0=20)
    first = sine.layer(64, 256, first=True)
    hidden = sine.layer(256, 256, first=False)
    _uniform_bound_ok(first.weight.detach(), 1 / 64)
    _uniform_bound_ok(hidden.weight.detach(), math.sqrt(6 / 256) / 20)
    assert (first.omega, hidden.omega) == (10.0, 20.0)
    head = nn.Linear(256, 3)
    sine.init_head(head)
    assert head.weight.abs().max() <= math.sqrt(6 / 256) / 20


def test_sine_hidden_preactivation_has_unit_spread():
    # SIREN: arcsine-distributed inputs through a hidden layer give pre-activations ~ N(0, 1)
    torch.manual_seed(0)
    layer = create_activation("sine").layer(256, 256, first=False)
    x = torch.sin(torch.rand(4096, 256) * 2 * math.pi)
    with torch.no_grad():
        z = layer.omega * (x @ layer.weight.T)
    assert 0.9 < z.std().item() < 1.1
    y = layer(x)
    assert abs(y.mean().item()) < 0.05 and y.abs().max() <= 1


@pytest.mark.parametrize("name", ["sine", "cosine"])
def test_periodic_layer_matches_the_classic_formulation(name):
    torch.manual_seed(1)
    layer = create_activation(name, first_omega_0=7.0).layer(5, 9, first=True).double()
    x = torch.randn(33, 5, dtype=torch.float64, requires_grad=True)
    fn = torch.sin if name == "sine" else torch.cos
    reference = fn(layer.omega * (x @ layer.weight.T + layer.bias))
    out = layer(x)
    torch.testing.assert_close(out, reference)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x, layer.weight, layer.bias], g)
    ref_grads = torch.autograd.grad(reference, [x, layer.weight, layer.bias], g)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)
    with torch.no_grad():  # the inference path (no saved derivative) gives the same values
        torch.testing.assert_close(layer(x), reference.detach())


def test_cosine_uses_a_uniform_phase_so_it_is_zero_mean():
    torch.manual_seed(0)
    cosine = create_activation("cosine")
    layer = cosine.layer(256, 256, first=False)
    phase = layer.omega * layer.bias.detach()
    assert phase.min() < -2.8 and phase.max() > 2.8 and phase.abs().max() <= math.pi
    _uniform_bound_ok(layer.weight.detach(), math.sqrt(6 / 256) / 30)
    x = torch.sin(torch.rand(4096, 256) * 2 * math.pi)
    y = layer(x)
    assert abs(y.mean().item()) < 0.1  # cos with SIREN's small bias would average about 0.6
    assert 0.6 < y.std().item() < 0.8  # arcsine-like spread, like sine's 1/sqrt(2)


def test_omega_must_be_positive():
    with pytest.raises(PluginError, match="activation 'sine': hidden_omega_0 must be a positive number, got 0.0"):
        create_activation("sine", hidden_omega_0=0)
    with pytest.raises(PluginError, match="activation 'cosine' argument 'first_omega_0' expects a number"):
        create_activation("cosine", first_omega_0="fast")


def test_relu_uses_kaiming_init():
    torch.manual_seed(0)
    layer = create_activation("relu").layer(512, 512, first=False)
    assert abs(layer.weight.std().item() - math.sqrt(2 / 512)) < 0.02 * math.sqrt(2 / 512)
    y = layer(torch.randn(16, 512))
    assert (y >= 0).all() and (y == 0).any()


def test_timm_activations_are_registered_by_name():
    names = {i.name for i in list_plugins("activation")}
    assert {"gelu", "silu", "tanh", "mish", "leaky-relu", "elu"} <= names
    gelu = create_activation("gelu")
    assert isinstance(gelu, Backbone)
    layer = gelu.layer(256, 128, first=True)
    x = torch.randn(8, 256)
    torch.testing.assert_close(layer(x), nn.functional.gelu(x @ layer.weight.T + layer.bias))
    assert abs(layer.weight.std().item() - math.sqrt(2 / 256)) < 0.05 * math.sqrt(2 / 256)
    assert create_activation("leaky_relu").act_name == "leaky_relu"
    tanh = create_activation("tanh").layer(256, 256, first=False)
    assert abs(tanh.weight.std().item() - (5 / 3) * math.sqrt(1 / 256)) < 0.05 * (5 / 3) * math.sqrt(1 / 256)


def test_a_custom_backbone_passes_through():
    class Square(Backbone):
        def layer(self, in_features, out_features, *, first):
            return nn.Linear(in_features, out_features)

    sq = Square()
    assert create_activation(sq) is sq


def test_timm_activation_table_matches_timm():
    """The written-out table (kept so listing plugins does not import timm) is timm's own."""
    from timm.layers.create_act import _ACT_LAYER_DEFAULT

    from relightzoo.builtins.activations import TIMM_ACTIVATION_CLASSES

    expected = {k: v.__name__ for k, v in _ACT_LAYER_DEFAULT.items() if k not in {"relu", "hardsigmoid", "hardswish"}}
    assert TIMM_ACTIVATION_CLASSES == expected

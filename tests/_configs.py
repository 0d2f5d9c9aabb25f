"""Small run configs shared by the GUI and engine-server tests (seconds to train on one CPU thread)."""

TINY_ISING = """
[system]
name = "ising"
size = "3x3"
[model]
kind = "ao-arm"
arch = "mlp"
hidden = 16
layers = 1
[conditions]
T = [1.5, 3.5]
T_points = 2
mu = [-0.4, 0.4]
mu_points = 2
[training]
batch = 16
steps = {steps}
lr = 2e-3
device = "cpu"
checkpoint_every = {checkpoint_every}
log_every = 1
"""


def tiny_ising(steps: int, checkpoint_every: int = 20) -> str:
    return TINY_ISING.format(steps=steps, checkpoint_every=checkpoint_every)

"""The per-level gradient maps are grad-cam's own arithmetic: same numbers as its classes on a CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pytest_camaudit.methods.gradient import level_cams


class _TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("name, cls", [("gradcam", "GradCAM"), ("gradcam++", "GradCAMPlusPlus"), ("xgradcam", "XGradCAM"),
                                       ("hirescam", "HiResCAM"), ("layercam", "LayerCAM")])
def test_level_map_equals_grad_cams_class(name, cls):
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _TinyClassifier().eval()
    x = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(1))
    with getattr(pytorch_grad_cam, cls)(model, [model.features]) as cam:  # stride 1: its map is at feature size
        theirs = cam(x, targets=[ClassifierOutputTarget(2)])[0]
    acts = model.features(x)
    (grads,) = torch.autograd.grad(model.fc(acts.mean(dim=(2, 3)))[0, 2], [acts])
    ours = np.maximum(level_cams()[name](acts.detach().numpy(), grads.numpy()), 0)
    def unit(m: np.ndarray) -> np.ndarray:  # grad-cam's scale_cam_image, without its 1e-7
        return (m - m.min()) / (m.max() - m.min())

    np.testing.assert_allclose(unit(ours), unit(theirs), atol=1e-4)

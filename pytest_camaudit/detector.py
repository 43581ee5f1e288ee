"""What the plugin needs to know about a detector, and how ``--camaudit-model`` builds one.

A :class:`Detector` bundles the ``nn.Module`` with its class names, a stable identity (a hash of
its weights), the *target layer* whose output the CAMs are computed from, and a function that
turns that output into named feature levels. The small protocol a model must follow:

* ``model(images)`` in eval mode takes a list of ``FloatTensor[3, H, W]`` in ``[0, 1]`` and returns
  one dict per image with ``boxes`` ``FloatTensor[N, 4]`` (``[x1, y1, x2, y2]`` in input pixels),
  ``labels`` ``Int64Tensor[N]`` and ``scores`` ``FloatTensor[N]`` — the torchvision convention.
* ``target_layer`` returns a ``Tensor[B, C, h, w]`` or a dict of them (an FPN), computed in the
  same forward; gradients of the scores must reach it for the gradient methods.
* If the model resizes / pads its input, it does so in ``model.transform`` (a torchvision
  ``GeneralizedRCNNTransform``) so the CAM can be mapped back exactly; otherwise the feature maps
  are assumed to cover the input image as is.

Per-architecture knowledge — default target layer and levels for every torchvision detector,
class names from the weights' metadata, and how AblationCAM re-scores one box — lives in
:mod:`pytest_camaudit.adapters`, whose docstring spells out the protocol for your own model.
"""

from __future__ import annotations

import hashlib
import importlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .adapters import adapter_for, default_levels, num_classes, torchvision_class_names
from .errors import ModelLoadError
from .options import TORCHVISION_BUILDERS, ZOO_NAMES, Settings

LevelsFn = Callable[[Any], "OrderedDict[str, torch.Tensor]"]


def weights_identity(model: nn.Module) -> str:
    """``sha1`` over parameter and buffer names, shapes and bytes: changes when any weight does."""
    h = hashlib.sha1()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


@dataclass
class Detector:
    """A detector ready for auditing.

    Attributes:
        model: the ``nn.Module`` (eval mode, on ``device``).
        class_names: ``class_names[label]`` is the name of label index ``label``; index 0 is
            ``__background__`` for torchvision detectors.
        name: how reports call it (``"shapes"``, ``"fasterrcnn_resnet50_fpn"``…).
        target_layer: the module whose output feeds the CAMs (default ``model.backbone``).
        levels: turns ``target_layer``'s output into ``name → Tensor[B, C, h, w]``.
        device: where ``model`` lives.
        identity: hash of the weights (see :func:`weights_identity`).
        meta: anything else worth showing (checkpoint path, training facts…).
    """

    model: nn.Module
    class_names: list[str]
    name: str
    target_layer: nn.Module
    levels: LevelsFn = default_levels
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    identity: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def wrap(
        cls,
        model: nn.Module,
        class_names: Sequence[str] | None = None,
        name: str | None = None,
        target_layer: nn.Module | None = None,
        levels: LevelsFn | None = None,
        device: str | torch.device | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Detector:
        """Wrap a torchvision-style detector (see the module docstring for the protocol).

        ``class_names`` defaults to ``model.class_names`` / ``model.classes`` when present, else
        COCO's when the model has 91 classes, else ``class_1 … class_N``. ``target_layer``
        defaults to ``model.backbone``.
        """
        if not isinstance(model, nn.Module):
            raise ModelLoadError(f"expected a torch.nn.Module detector, got {type(model).__name__}")
        adapter = adapter_for(model)
        layer = target_layer
        if layer is None:
            layer = adapter.target_layer(model) if adapter is not None else getattr(model, "backbone", None)
        if layer is None:
            raise ModelLoadError(
                f"{type(model).__name__} has no `backbone`; pass `target_layer=` (the module whose output "
                "the CAM should explain) to Detector.wrap"
            )
        names = list(class_names) if class_names is not None else _guess_class_names(model)
        dev = torch.device(device) if device is not None else _model_device(model)
        model = model.to(dev).eval()
        return cls(
            model=model,
            class_names=names,
            name=name or type(model).__name__,
            target_layer=layer,
            levels=levels or (adapter.levels if adapter is not None and target_layer is None else default_levels),
            device=dev,
            identity=weights_identity(model),
            meta={**({"adapter": adapter.name} if adapter is not None else {}), **dict(meta or {})},
        )

    def label_name(self, label: int) -> str:
        """Name of ``label``, or ``"class <label>"`` when out of range."""
        return self.class_names[label] if 0 <= label < len(self.class_names) else f"class {label}"

    def label_index(self, name_or_index: str | int) -> int:
        """Index of a class given by name (or passed through when an int).

        Raises:
            ExpectationError: unknown class name; the message lists the known ones.
        """
        from .errors import ExpectationError

        if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
            if 0 < name_or_index < len(self.class_names):
                return name_or_index
            raise ExpectationError(f"class index {name_or_index} is out of range 1..{len(self.class_names) - 1} for {self.name}")
        if name_or_index in self.class_names[1:]:
            return self.class_names.index(name_or_index)
        known = [c for c in self.class_names[1:] if c and c != "N/A"]
        shown = ", ".join(known[:30]) + (" …" if len(known) > 30 else "")
        raise ExpectationError(f"unknown class {name_or_index!r} for detector {self.name}; known classes: {shown}")


def _model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _guess_class_names(model: nn.Module) -> list[str]:
    for attr in ("class_names", "classes", "categories"):
        names = getattr(model, attr, None)
        if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
            return list(names)
    n = _num_classes(model)
    if n == 91:
        return coco_categories()
    return ["__background__"] + [f"class_{i}" for i in range(1, (n or 2))]


def _num_classes(model: nn.Module) -> int | None:
    return num_classes(model)


def coco_categories() -> list[str]:
    """torchvision's 91 COCO category names (index 0 ``__background__``), from code, offline."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    return list(FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


def resolve_device(device: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"--camaudit-device={device} but CUDA is not available on this machine; use --camaudit-device=cpu or auto"
        )
    return torch.device(device)


def _load_state_dict_file(path: Path) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    if not path.is_file():
        raise ModelLoadError(f"weights file {path} does not exist; check --camaudit-weights")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"weights file {path} is corrupt or not a PyTorch state dict ({type(exc).__name__}: {exc}); "
            "re-export it with torch.save(model.state_dict(), path)"
        ) from exc
    classes = None
    if isinstance(payload, dict):
        for key in ("state_dict", "model"):
            if isinstance(payload.get(key), dict):
                classes = payload.get("classes") or payload.get("class_names")
                payload = payload[key]
                break
    if not isinstance(payload, dict) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ModelLoadError(f"weights file {path} does not hold a state dict (name → tensor)")
    return payload, (list(classes) if classes else None)


def torchvision_weights_path(builder: str, enum_name: str) -> tuple[Any, Path]:
    """The torchvision weights enum ``builder``/``enum_name`` and where torch hub caches its file."""
    from torchvision.models import get_model_weights

    enum_cls = get_model_weights(builder)
    try:
        weights = enum_cls.DEFAULT if enum_name.upper() == "DEFAULT" else enum_cls[enum_name.split(".")[-1]]
    except KeyError:
        raise ModelLoadError(
            f"unknown weights {enum_name!r} for {builder}; expected a file path or one of "
            f"{', '.join(['DEFAULT'] + [w.name for w in enum_cls])}"
        ) from None
    return weights, Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def build_torchvision(builder: str, weights: str | None) -> tuple[nn.Module, list[str], dict[str, Any]]:
    """Build a torchvision detector offline: random weights, a state-dict file, or a cached enum."""
    import torchvision.models.detection as tvd

    fn = getattr(tvd, builder)
    meta: dict[str, Any] = {"builder": builder}
    if weights is None:
        model = fn(weights=None, weights_backbone=None)
        meta["weights"] = "random (weights=None)"
        return model, torchvision_class_names(builder, model) or _guess_class_names(model), meta
    path = Path(weights)
    if path.suffix in (".pt", ".pth", ".bin") or path.exists():
        state, classes = _load_state_dict_file(path)
        kwargs: dict[str, Any] = {}
        if "roi_heads.box_predictor.cls_score.weight" in state:
            kwargs["num_classes"] = int(state["roi_heads.box_predictor.cls_score.weight"].shape[0])
        model = fn(weights=None, weights_backbone=None, **kwargs)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelLoadError(f"weights file {path} does not fit {builder}: {str(exc).splitlines()[0]} …") from exc
        meta["weights"] = str(path)
        return model, classes or torchvision_class_names(builder, model) or _guess_class_names(model), meta
    enum, cached = torchvision_weights_path(builder, weights)
    if not cached.is_file():
        raise ModelLoadError(
            f"weights {enum} are not in the local torch cache: expected {cached}. This run cannot download "
            f"them; copy the file from {enum.url} to that path, or pass a local file with --camaudit-weights=PATH"
        )
    model = fn(weights=enum, weights_backbone=None, progress=False)
    meta["weights"] = f"{enum} ({cached})"
    return model, list(enum.meta["categories"]), meta


def _import_callable(spec: str) -> Callable[[], Any]:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot import module {module_name!r} for --camaudit-model={spec} ({type(exc).__name__}: {exc}); "
            "check that it is importable (on sys.path / installed)"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelLoadError(f"module {module_name!r} has no attribute {attr!r} (from --camaudit-model={spec})") from None
    if not callable(obj):
        raise ModelLoadError(f"--camaudit-model={spec} names a {type(obj).__name__}, not a callable returning a model")
    return obj


def load_detector(settings: Settings) -> Detector:
    """Build the detector a run's settings name, in eval mode on the chosen device.

    Raises:
        ModelLoadError: the model or its weights cannot be loaded; the message names the file or
            option and what to do.
    """
    from .zoo.model import ZooCheckpointError, load_zoo_detector

    device = resolve_device(settings.device)
    spec = settings.model
    meta: dict[str, Any] = {"model_option": spec}
    if spec in ZOO_NAMES or spec.endswith((".pt", ".pth")):
        if settings.weights is not None:
            raise ModelLoadError(
                f"--camaudit-weights does not apply to --camaudit-model={spec} (an embedded detector or a zoo "
                "checkpoint file, which carries its own weights); drop --camaudit-weights, or pass the checkpoint "
                "file itself as --camaudit-model"
            )
        try:
            model, classes, zmeta = load_zoo_detector(spec)
        except ZooCheckpointError as exc:
            raise ModelLoadError(str(exc)) from exc
        meta.update(zmeta)
        return Detector.wrap(model, classes, name=str(zmeta.get("name", spec)), device=device, meta=meta)
    if spec in TORCHVISION_BUILDERS:
        model, classes, tmeta = build_torchvision(spec, settings.weights)
        meta.update(tmeta)
        return Detector.wrap(model, classes, name=spec, device=device, meta=meta)
    factory = _import_callable(spec)
    try:
        made = factory()
    except Exception as exc:
        raise ModelLoadError(f"--camaudit-model={spec} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(made, Detector):
        made.model.to(device).eval()
        made.device = device
        return made
    classes = None
    if isinstance(made, tuple) and len(made) == 2:
        made, classes = made
    if settings.weights is not None:
        state, file_classes = _load_state_dict_file(Path(settings.weights))
        try:
            made.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelLoadError(f"weights file {settings.weights} does not fit {spec}: {str(exc).splitlines()[0]}") from exc
        classes = classes or file_classes
    return Detector.wrap(made, classes, name=spec, device=device, meta=meta)

"""Per-box gradients, before and after: a backward through the whole forward against the box's own path.

* **old** — one forward with autograd (``CamEngine.analyze(image, grad=True)`` keeps
  ``analysis.capture.graph``), then one backward per box through that graph
  (``Detector.graph_gradients(graph, det)``): ``RoIAlign`` and the box head backward for every
  proposal of the image, each time.
* **new** — the capturing forward runs without autograd and keeps the proposal each detection was
  regressed from; ``ImageAnalysis.gradients(det)`` runs ``RoIAlign`` + the box head for that one
  proposal on a detached leaf of its level and backpropagates only that.
* **grad-cam** (the historical comparison) — one ``GradCAM(model, [backbone.body.layer4])(x,
  targets=[FasterRCNNBoxScoreTarget])`` call per box: a forward with autograd and a backward each
  (grad-cam cannot hook the FPN's dict output; issues #42 / #228 / #384).

Each figure is in *forward-equivalents*: seconds over one plain forward (``model([x])`` under
``no_grad``) measured in the same round. Every round runs the plain forward, the new path (capture,
then the K boxes one by one) and the old path (autograd capture, then K backwards), in an order that
turns each round; figures are medians over rounds [quartiles]. "per box" is the mean over the first K
boxes; "total" is 1 capture + K boxes. grad-cam is timed after all rounds (its autograd forwards slow
the process's later forwards), each call paired with a plain forward, on box 0; its total is K × that.
The gradients of the two paths are compared box by box (Pearson r over all levels concatenated); the
worst r must be ≥ 0.999. "+ map" adds ``cam_for(analysis, "gradcam", det)`` on the stored gradient.

Models: the shipped ``shapes`` detector on its 160×160 scene (score threshold lowered to 0.001 so it
returns ≥ 16 boxes), and ``fasterrcnn_resnet50_fpn`` with random weights (seed 0) on a 480×640
image, run at 480×640 (``min_size=480, max_size=640``; ``--size 800 1333`` for torchvision's
default resize). A model that returns fewer than max(K) boxes gets its threshold lowered to 0.001,
then 0.

    python benchmarks/bench_gradients.py                        # shapes + R50 480x640, K = 5 16, 1 thread
    python benchmarks/bench_gradients.py --threads 2 --rounds 15 5
    python benchmarks/bench_gradients.py --quick                # shapes only, 5 rounds
    python benchmarks/bench_gradients.py --boxes 8 --size 480   # R50 resized to 480 px (min = max size)

Target: new ≤ 0.25 forward-equivalents per box on both models. Times are noisy on a shared machine;
the ratios measured in the same round are the figures to quote (the script prints the scatter).
"""

from __future__ import annotations

import argparse
import statistics
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from _common import Bench, add_threads_arg, load, noise, paired, quartiles, set_threads, spread, timeit

from pytest_camaudit.datatypes import Detection


@dataclass
class Rounds:
    """Seconds per round: the plain forward, and per path the capture and each box."""

    plain: list[float] = field(default_factory=list)
    capture: dict[str, list[float]] = field(default_factory=lambda: {"old": [], "new": []})
    boxes: dict[str, list[list[float]]] = field(default_factory=lambda: {"old": [], "new": [], "map": []})

    def per_box(self, path: str, k: int) -> list[float]:
        """Per round: mean seconds of the first ``k`` boxes / the round's plain forward."""
        return [sum(b[:k]) / k / p for b, p in zip(self.boxes[path], self.plain, strict=True)]

    def total(self, path: str, k: int) -> list[float]:
        """Per round: (capture + first ``k`` boxes) / the round's plain forward."""
        return [(c + sum(b[:k])) / p for c, b, p in zip(self.capture[path], self.boxes[path], self.plain, strict=True)]

    def capture_ratio(self, path: str) -> list[float]:
        return [c / p for c, p in zip(self.capture[path], self.plain, strict=True)]


def flat(grads: OrderedDict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads.values()]).double()


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def ensure_boxes(bench: Bench, k: int) -> str:
    """Lower the score threshold until the image yields ≥ ``k`` boxes; what was done, in words."""
    n = bench.count_boxes()
    if n >= k:
        return f"{n} boxes at its default threshold"
    for thresh in (0.001, 0.0):
        bench.set_score_thresh(thresh)
        n = bench.count_boxes()
        if n >= k:
            return f"{n} boxes at score threshold {thresh}"
    raise SystemExit(f"{bench.describe()} returns {n} boxes even at threshold 0; ask for fewer (--boxes)")


def measure(bench: Bench, k_max: int, rounds: int) -> tuple[Rounds, float, tuple[int, int]]:
    """The rounds, the worst r between the two paths' gradients over the first ``k_max`` boxes, and
    the size the model resized the image to."""
    image = bench.loaded()
    plain = bench.forward()
    r = Rounds()
    resized: list[tuple[int, int]] = []

    def new_path(record: bool) -> list[OrderedDict[str, torch.Tensor]]:
        from pytest_camaudit.methods import cam_for

        engine = bench.engine("gradcam")
        t_cap = timeit(lambda: engine.analyze(image))
        a = engine.analyze(image)
        dets: list[Detection] = a.detections[:k_max]
        resized[:] = [(int(a.geometry.resized[0]), int(a.geometry.resized[1]))]
        times, maps, grads = [], [], []
        for d in dets:
            times.append(timeit(lambda d=d: grads.append(a.gradients(d))))
            maps.append(timeit(lambda d=d: cam_for(a, "gradcam", d)))
        if record:
            r.capture["new"].append(t_cap)
            r.boxes["new"].append(times)
            r.boxes["map"].append(maps)
        return grads

    def old_path(record: bool) -> list[OrderedDict[str, torch.Tensor]]:
        engine = bench.engine("gradcam")
        t_cap = timeit(lambda: engine.analyze(image, grad=True))
        a = engine.analyze(image)
        graph = a.capture.graph
        assert graph is not None, "analyze(grad=True) kept no graph"
        times, grads = [], []
        for d in a.detections[:k_max]:
            times.append(timeit(lambda d=d: grads.append(bench.detector.graph_gradients(graph, d))))
        if record:
            r.capture["old"].append(t_cap)
            r.boxes["old"].append(times)
        engine.clear()
        return grads

    steps: list[Callable[[bool], object]] = [lambda record: r.plain.append(timeit(plain)) if record else plain(), new_path, old_path]
    plain()  # warm-up round, which also gives the gradients to compare
    new, old = new_path(False), old_path(False)
    worst = min(pearson(flat(o), flat(n)) for o, n in zip(old, new, strict=True))
    for i in range(rounds):
        for step in steps[i % 3:] + steps[: i % 3]:
            step(True)
    return r, worst, resized[0]


def gradcam_call(bench: Bench) -> Callable[[], object]:
    """One grad-cam ``GradCAM`` map of box 0 (a forward with autograd and a backward)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

    model = bench.model
    det = bench.engine().analyze(bench.loaded()).detections[0]
    target = FasterRCNNBoxScoreTarget([det.label], [torch.tensor(det.box)])
    x = bench.tensor[None]

    def call() -> None:
        with GradCAM(model, [model.backbone.body.layer4]) as cam:
            cam(x, targets=[target])

    return call


def report(bench: Bench, resized: tuple[int, int], how: str, r: Rounds, worst: float, ks: list[int],
           gradcam: list[float] | None) -> None:
    print(f"\n{bench.describe()}, run at {resized[0]}x{resized[1]}; {how}")
    print(f"one plain forward {statistics.median(r.plain) * 1000:.1f} ms (median of {len(r.plain)} rounds, "
          f"quartiles {quartiles(r.plain)[0] * 1000:.1f}-{quartiles(r.plain)[2] * 1000:.1f} ms: scatter ±{noise(r.plain) / 2:.0%}); "
          f"capture: old (autograd) {spread(r.capture_ratio('old'), '.2f')}, new {spread(r.capture_ratio('new'), '.2f')} forwards")
    gc = f"grad-cam {spread(gradcam, '.2f')} forwards per box ({len(gradcam)} pairs)" if gradcam else "grad-cam not timed"
    print(f"worst r(old, new gradient) over {max(ks)} boxes: {worst:.6f}; {gc}")
    head = f"{'K':>3} {'old / box':>18} {'new / box':>18} {'old/new':>8} {'new+map / box':>14} {'old total':>18} {'new total':>18}"
    print(head + (f" {'grad-cam total':>15}" if gradcam else ""))
    for k in ks:
        old, new = r.per_box("old", k), r.per_box("new", k)
        speedup = statistics.median(o / n for o, n in zip(old, new, strict=True))
        with_map = statistics.median(n + m for n, m in zip(new, r.per_box("map", k), strict=True))
        line = (f"{k:>3} {spread(old):>18} {spread(new):>18} {speedup:>7.1f}x {with_map:>14.3f} "
                f"{spread(r.total('old', k), '.2f'):>18} {spread(r.total('new', k), '.2f'):>18}")
        print(line + (f" {k * statistics.median(gradcam):>15.2f}" if gradcam else ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boxes", type=int, nargs="+", default=[5, 16], help="values of K (default 5 16)")
    p.add_argument("--size", type=int, nargs="+", default=[480, 640], metavar="PX",
                   help="R50 resize: min_size [max_size] (one value: both; default 480 640, the image's own size)")
    p.add_argument("--rounds", type=int, nargs="+", default=[15, 5], metavar="N", help="rounds on shapes [R50] (default 15 5)")
    p.add_argument("--gradcam", type=int, default=3, metavar="N", help="grad-cam GradCAM calls paired with a forward (0: skip; default 3)")
    p.add_argument("--seed", type=int, default=0, help="R50 weights seed")
    p.add_argument("--quick", action="store_true", help="shapes only, 5 rounds")
    add_threads_arg(p)
    args = p.parse_args()
    threads = set_threads(args.threads)
    k_max = max(args.boxes)
    rounds = args.rounds + args.rounds[-1:]
    runs: list[tuple[Callable[[], Bench], int]] = [(lambda: load("shapes"), 5 if args.quick else rounds[0])]
    if not args.quick:
        size = args.size + args.size[-1:]
        runs.append((lambda: load("r50", seed=args.seed, min_size=size[0], max_size=size[1]), rounds[1]))
    print(f"torch {torch.__version__}, {threads} thread(s); per box and totals in forward-equivalents "
          "(seconds / one plain forward of the same round), median [quartiles] over rounds")
    for make, n in runs:
        bench = make()
        how = ensure_boxes(bench, k_max)
        r, worst, resized = measure(bench, k_max, n)
        gc = paired(bench.forward(), gradcam_call(bench), args.gradcam).ratios if args.gradcam else None
        report(bench, resized, how, r, worst, args.boxes, list(gc) if gc else None)
        if worst < 0.999:
            raise SystemExit(f"old and new gradients disagree: r = {worst:.6f} < 0.999")


if __name__ == "__main__":
    main()

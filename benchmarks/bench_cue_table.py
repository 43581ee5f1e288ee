"""Which CAM method sees a shortcut? Cue mass relative to chance on the ``shapes-shortcut`` world.

In the ``shapes-shortcut`` world every annotated triangle carries an 8×8 checkerboard tag just
outside one corner of its box (``Layout.cue_box``), and unannotated triangle *decals* carry none,
so a detector trained there (the ``shapes-shortcut`` twin) scores triangles by the tag. The clean
``shapes`` detector, trained without tags, sees the same images.

For every triangle both detectors find (IoU ≥ 0.5, label triangle), each method's map of that
detection (EigenCAM: of the image) is measured as

    ratio = (map mass inside the cue box / total map mass) / (cue box area / image area)

1 is chance; a map that ignores the tag scores ≤ 1 there, one that sees it ≫ 1. The table prints
the mean ratio for the twin and for the clean model, and how far each detector's triangle score
falls when the tag is removed (what the map *should* reveal).

    python benchmarks/bench_cue_table.py                      # 12 scenes, D-RISE 1000 masks on a 32x32 grid
    python benchmarks/bench_cue_table.py --drise-cells 16 --drise-masks 500   # coarser, cheaper D-RISE
    python benchmarks/bench_cue_table.py --methods eigencam,eigengradcam      # a subset
    python benchmarks/bench_cue_table.py --quick                              # 2 scenes, D-RISE 100 masks on 16x16
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import add_threads_arg, load, set_threads

from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import DetectorRuntimeError
from pytest_camaudit.methods import cam_for, drise_method, get_method, method_names, register
from pytest_camaudit.zoo.world import CLASSES, CUE_CLASS, make_layout, render, render_variant

TRIANGLE = CLASSES.index(CUE_CLASS)


def _iou(a, b) -> float:  # type: ignore[no-untyped-def]
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / u if u > 0 else 0.0


def cue_ratio(values: np.ndarray, cue_box: tuple[int, int, int, int]) -> float:
    """Mass inside ``cue_box`` over its area share; NaN for an all-zero map."""
    total = float(values.sum())
    if total <= 0:
        return float("nan")
    x1, y1, x2, y2 = cue_box
    h, w = values.shape
    mass = float(values[max(0, y1) : min(h, y2), max(0, x1) : min(w, x2)].sum()) / total
    return mass / ((x2 - x1) * (y2 - y1) / (h * w))


def triangle_score(engine: CamEngine, pixels: np.ndarray, box) -> float:  # type: ignore[no-untyped-def]
    dets = engine.detect([pixels])[0]
    return max((d.score for d in dets if d.label == TRIANGLE and _iou(d.box, box) >= 0.5), default=0.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=12, help="scenes with at least one triangle")
    p.add_argument("--seed", type=int, default=41_000_000, help="first layout seed")
    p.add_argument("--drise-masks", type=int, default=1000)
    p.add_argument("--drise-cells", type=int, default=32, help="D-RISE mask grid (32: 5 px cells on 160 px scenes; the tag is 8 px)")
    p.add_argument("--methods", default=",".join(method_names()),
                   help="comma-separated subset (default: all; one the shapes detectors cannot run prints n/a)")
    p.add_argument("--twin", default="shapes-shortcut", help="the shortcut detector: shipped name or a zoo checkpoint file")
    p.add_argument("--quick", action="store_true", help="2 scenes, D-RISE 100 masks on a 16x16 grid")
    add_threads_arg(p)
    args = p.parse_args()
    if args.quick:
        args.scenes, args.drise_masks, args.drise_cells = 2, 100, 16
    methods = [get_method(m).name for m in args.methods.split(",")]
    set_threads(args.threads)
    register(drise_method(masks=args.drise_masks, cells=args.drise_cells, batch_size=16, seed=0, progress=False))

    layouts, seed = [], args.seed
    while len(layouts) < args.scenes:
        lay = make_layout(seed)
        seed += 1
        if any(o.label == TRIANGLE for o in lay.objects):
            layouts.append(lay)

    engines = {name: load(source).engine("eigencam") for name, source in (("shapes-shortcut", args.twin), ("shapes", "shapes"))}

    ratios: dict[str, dict[str, list[float]]] = {n: {m: [] for m in methods} for n in engines}
    drops: dict[str, list[tuple[float, float]]] = {n: [] for n in engines}
    seconds = dict.fromkeys(methods, 0.0)
    unsupported: dict[str, str] = {}
    found = 0
    for lay in layouts:
        pixels = render_variant(lay, "shapes-shortcut")
        analyses = {n: e.analyze(load_image(pixels)) for n, e in engines.items()}
        for i, obj in enumerate(lay.objects):
            if obj.label != TRIANGLE:
                continue
            dets = {}
            for n, a in analyses.items():
                cands = [d for d in a.detections if d.label == TRIANGLE and _iou(d.box, obj.box) >= 0.5]
                dets[n] = max(cands, key=lambda d: d.score, default=None)
            if any(d is None or d.score < 0.3 for d in dets.values()):
                continue  # both detectors must find it to compare their maps
            found += 1
            cues_without = tuple(j for j in range(len(lay.objects)) if lay.objects[j].label == TRIANGLE and j != i)
            without = render(lay, cues_without, decals=True)
            for n, e in engines.items():
                drops[n].append((dets[n].score, triangle_score(e, without, obj.box)))
                for m in methods:
                    if m in unsupported:
                        continue
                    t0 = time.perf_counter()
                    try:
                        cam = cam_for(analyses[n], m, dets[n] if get_method(m).per_box else None)
                    except DetectorRuntimeError as exc:  # e.g. attention: transformer detectors only
                        unsupported[m] = str(exc).split(";")[0]
                        continue
                    seconds[m] += time.perf_counter() - t0
                    ratios[n][m].append(cue_ratio(cam.values, lay.cue_box(i)))

    print(f"{found} triangles in {len(layouts)} shapes-shortcut scenes (seeds {args.seed}..{seed - 1}), "
          f"D-RISE {args.drise_masks} masks on a {args.drise_cells}x{args.drise_cells} grid, chance = 1.0")
    for n in engines:
        w, wo = np.array(drops[n]).T
        print(f"{n:16s} triangle score with tag {w.mean():.3f}, tag removed {wo.mean():.3f}")
    print()
    print("| method | cue mass / chance: shortcut twin | clean model | twin maps above chance | s per map |")
    print("|---|---:|---:|---:|---:|")
    for m in methods:
        if m in unsupported:
            print(f"| {m} | n/a: {unsupported[m]} | | | |")
            continue
        t, c = np.array(ratios["shapes-shortcut"][m]), np.array(ratios["shapes"][m])
        print(f"| {m} | {np.nanmean(t):.2f} | {np.nanmean(c):.2f} | {np.mean(t > 1):.0%} | {seconds[m] / max(1, 2 * found):.2f} |")


if __name__ == "__main__":
    main()

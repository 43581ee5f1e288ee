"""The regions of a context profile and box-normalised crops (pytest_camaudit.surroundings)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_camaudit.surroundings import (
    CROP_CELLS,
    MIN_RING_PX,
    PLACES,
    REGIONS,
    SECTORS,
    box_crop,
    crop_cells,
    decode_grid,
    encode_grid,
    outer_rect,
    region_masks,
    ring_width,
)


def test_regions_tile_the_image_outside_the_box():
    masks = region_masks((40.0, 50.0, 80.0, 70.0), (160, 200))
    places = np.stack([masks[p] for p in PLACES])
    assert (places.sum(axis=0) <= 1).all()  # disjoint
    assert np.array_equal(places.any(axis=0), masks["outside"])  # their union is everything outside the box
    assert not masks["outside"][50:70, 40:80].any() and masks["outside"].sum() == 160 * 200 - 20 * 40
    assert set(masks) == set(REGIONS)


def test_the_ring_is_half_the_side_or_at_least_its_minimum_in_pixels():
    assert ring_width((0, 0, 100, 40)) == (50.0, 20.0) and ring_width((0, 0, 100, 20)) == (50.0, MIN_RING_PX)
    masks = region_masks((40.0, 40.0, 56.0, 56.0), (160, 160))  # a 16-px object: the ring is 12 px, not 8
    assert masks["top-left"].sum() == 12 * 12 and masks["top"][28:40, 40:56].all() and masks["right"][40:56, 56:68].all()
    # the shortcut twin's tag: 8 px, 2 px past the top-left corner, lies wholly in that sector
    assert masks["top-left"][30:38, 30:38].all()
    assert not masks["far"][28:68, 28:68].any() and masks["far"][:28].all()


def test_regions_are_clipped_to_the_image_and_may_be_empty():
    masks = region_masks((0.0, 0.0, 30.0, 30.0), (100, 100))
    assert not masks["top-left"].any() and not masks["top"].any() and not masks["left"].any()
    assert masks["bottom-right"].sum() == 15 * 15
    assert outer_rect((0.0, 0.0, 30.0, 30.0), (100, 100)) == (0, 0, 45, 45)


def test_fractional_boxes_keep_every_pixel_they_touch():
    masks = region_masks((10.5, 10.5, 20.2, 20.2), (64, 64))
    assert not masks["outside"][10:21, 10:21].any() and masks["outside"][9, 10] and masks["outside"][21, 21]


def test_a_crop_is_the_map_in_box_coordinates():
    values = np.zeros((100, 100), np.float32)
    values[20:40, 30:50] = 1.0  # exactly the box
    crop = box_crop(values, (30.0, 20.0, 50.0, 40.0))
    assert crop.shape == (CROP_CELLS, CROP_CELLS)
    inner = slice(CROP_CELLS // 4, CROP_CELLS - CROP_CELLS // 4)
    np.testing.assert_allclose(crop[inner, inner], 1.0, atol=1e-6)
    assert crop.sum() == pytest.approx(crop[inner, inner].sum())
    # a box at the image's corner: the crop past the image is 0, its mass the same
    corner = np.zeros((50, 50), np.float32)
    corner[:10, :10] = 1.0
    c = box_crop(corner, (0.0, 0.0, 10.0, 10.0))
    assert c[:5].sum() == 0 and c[:, :5].sum() == 0 and c[5:15, 5:15].min() == pytest.approx(1.0)


def test_a_crop_reads_only_the_pixels_its_window_touches():
    from pytest_camaudit.surroundings import crop_window

    rng = np.random.default_rng(3)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(8, 120, 2))
        values = rng.random((h, w)).astype(np.float32)
        x1, y1 = rng.uniform(-15, w + 5), rng.uniform(-15, h + 5)
        box = (x1, y1, x1 + rng.uniform(0.5, w), y1 + rng.uniform(0.5, h))
        wx1, wy1, wx2, wy2 = crop_window(box)
        edges_x, edges_y = np.linspace(wx1, wx2, CROP_CELLS + 1), np.linspace(wy1, wy2, CROP_CELLS + 1)
        px, py = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)  # every pixel of the image
        cols = np.clip(np.minimum(edges_x[1:, None], px + 1) - np.maximum(edges_x[:-1, None], px), 0, None)
        rows = np.clip(np.minimum(edges_y[1:, None], py + 1) - np.maximum(edges_y[:-1, None], py), 0, None)
        whole = rows @ values.astype(np.float64) @ cols.T / (((wx2 - wx1) / CROP_CELLS) * ((wy2 - wy1) / CROP_CELLS))
        np.testing.assert_allclose(box_crop(values, box), whole.astype(np.float32), rtol=1e-6, atol=1e-7)


def test_a_crop_of_the_same_object_scaled_is_the_same_crop():
    small = np.zeros((80, 80), np.float32)
    small[10:30, 10:30] = 1.0
    small[30:34, 30:34] = 2.0  # a cue past the bottom-right corner
    big = np.kron(small, np.ones((3, 3), np.float32))
    np.testing.assert_allclose(box_crop(small, (10, 10, 30, 30)), box_crop(big, (30, 30, 90, 90)), atol=1e-5)


def test_crops_travel_as_a_few_hundred_bytes_and_come_back():
    rng = np.random.default_rng(0)
    grid = rng.random((CROP_CELLS, CROP_CELLS)).astype(np.float32)
    text = encode_grid(grid)
    assert len(text) < 600
    np.testing.assert_allclose(decode_grid(text), grid / grid.max(), atol=1 / 255)
    assert decode_grid(encode_grid(np.zeros((CROP_CELLS, CROP_CELLS)))).max() == 0
    with pytest.raises(ValueError, match="400 bytes"):
        decode_grid(encode_grid(np.ones((4, 4))))


def test_crop_cells_name_the_ring_cells_in_box_coordinates():
    cells = crop_cells()
    n = CROP_CELLS
    assert cells["box"].sum() == (n // 2) ** 2
    assert cells["top-left"][0, 0] and cells["bottom-right"][-1, -1] and cells["top"][0, n // 2] and cells["left"][n // 2, 0]
    assert sum(cells[s].sum() for s in SECTORS) + cells["box"].sum() == n * n

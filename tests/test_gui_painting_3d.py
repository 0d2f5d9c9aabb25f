"""The 3D crystal view: projection and picking maths for a known camera, painting through it (click and drag, one
undo step a stroke), the layer kept in sync with the 2D editor both ways, and sites at the engine's positions."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from lattherm.app.crystal3d import (Camera, CrystalView, conventional_edge, nearest_distance, pick,  # noqa: E402
                                    project, site_positions)
from lattherm.app.lattice import LatticeEditor  # noqa: E402

FCC = [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
SC = np.eye(3).tolist()
BCC = [[-1, 1, 1], [1, -1, 1], [1, 1, -1]]


def test_positions_follow_the_primitive_vectors_in_site_order():
    r = site_positions((2, 2, 3), FCC)
    assert r.shape == (12, 3)
    # site index (g1*n2 + g2)*n3 + g3 sits at g @ A
    g = np.array([1, 0, 2])
    assert np.allclose(r[(1 * 2 + 0) * 3 + 2], g @ np.array(FCC))
    assert np.allclose(site_positions((2, 3), np.eye(2))[5], [1, 2, 0])  # a square lattice lies in z = 0
    with pytest.raises(ValueError):
        site_positions((2, 2, 2), np.eye(2))


def test_conventional_cell_and_neighbour_distance_of_cubic_lattices():
    assert conventional_edge(FCC) == pytest.approx(2.0) and nearest_distance(FCC) == pytest.approx(math.sqrt(2))
    assert conventional_edge(BCC) == pytest.approx(2.0) and nearest_distance(BCC) == pytest.approx(math.sqrt(3))
    assert conventional_edge(SC) == pytest.approx(1.0) and nearest_distance(SC) == pytest.approx(1.0)
    assert conventional_edge([[1, 0, 0], [0.5, math.sqrt(3) / 2, 0], [0, 0, 1.6]]) is None  # hexagonal: no cube


def test_orthographic_projection_of_a_known_camera():
    cam = Camera(center=(0, 0, 0), extent=1.0, yaw=0.0, pitch=0.0, zoom=1.0, perspective=False)
    s = 0.46 * 200 / 1.0
    pr = project(np.array([[0, 0, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]]), cam, 300, 200)
    assert np.allclose(pr.xy[0], [150, 100])
    assert np.allclose(pr.xy[1], [150 + s, 100])  # world x to the right
    assert np.allclose(pr.xy[2], [150, 100 - s])  # world z up
    assert np.allclose(pr.xy[3], [150, 100]) and pr.depth[3] == pytest.approx(1.0)  # world y into the screen
    # a quarter turn of yaw brings world y to the right; pan shifts in pixels
    pr = project(np.array([[0, 1, 0]]), Camera(yaw=math.pi / 2, pitch=0, perspective=False, pan=(5, -7)), 300, 200)
    assert np.allclose(pr.xy[0], [150 + 5 - s, 100 - 7]) or np.allclose(pr.xy[0], [150 + 5 + s, 100 - 7])


def test_perspective_draws_far_sites_smaller():
    cam = Camera(yaw=0.0, pitch=0.0, perspective=True)
    pr = project(np.array([[0, -0.5, 0], [0, 0.5, 0]]), cam, 200, 200)
    assert pr.depth[0] < pr.depth[1] and pr.scale[0] > pr.scale[1]


def test_picking_selects_the_clicked_site_and_the_front_most_wins():
    pts = site_positions((3, 3, 3), SC)
    cam = Camera.fit(pts, 300, 300, yaw=0.0, pitch=0.0, perspective=False)
    pr = project(pts, cam, 300, 300)
    # end-on along world y: the three sites (x, *, z) coincide on screen; the one at y = 0 is in front
    for x in range(3):
        for z in range(3):
            behind = (x * 3 + 2) * 3 + z  # g = (x, 2, z)
            front = (x * 3 + 0) * 3 + z
            assert pick(pts, cam, 300, 300, *pr.xy[behind], radius=0.3) == front
    assert pick(pts, cam, 300, 300, 2.0, 2.0, radius=0.3) is None  # a corner of the view: nothing
    # turned so no two discs overlap: each site's projected centre picks that site
    cam = Camera.fit(pts, 300, 300, yaw=0.35, pitch=0.3, perspective=True)
    pr = project(pts, cam, 300, 300)
    d = np.sqrt(((pr.xy[:, None] - pr.xy[None]) ** 2).sum(-1)) + np.eye(len(pts)) * 1e9
    r = 0.5 * d.min() / pr.scale.max()  # a radius small enough that the discs are disjoint
    assert all(pick(pts, cam, 300, 300, *pr.xy[i], radius=r) == i for i in range(len(pts)))


def _view(qtbot, shape=(2, 2, 3), vectors=FCC):
    ed = LatticeEditor(shape)
    qtbot.addWidget(ed)
    view = CrystalView()
    qtbot.addWidget(view)
    view.resize(420, 380)
    view.set_lattice(shape, vectors, 1.9)
    view.attach(ed)
    with qtbot.waitExposed(view):
        view.show()
    return ed, view


def _front_sites(view) -> list[int]:
    """Sites whose centre no other disc covers at the view's disc radius (so a click there is unambiguous)."""
    pr = view.projection()
    rad = 0.32 * view.nn * pr.scale
    out = []
    for i in range(len(view.points)):
        d = np.sqrt(((pr.xy - pr.xy[i]) ** 2).sum(1))
        if not any(d[j] <= rad[j] and pr.depth[j] < pr.depth[i] for j in range(len(d)) if j != i):
            out.append(i)
    return out


def test_click_in_3d_sets_the_site_and_drag_sets_several_in_one_stroke(qtbot):
    ed, view = _view(qtbot)
    ed.brush = 1
    front = _front_sites(view)
    assert len(front) >= 3
    a, b, c = front[:3]
    pos = lambda i: view.screen_pos(i).toPoint()  # noqa: E731
    QTest.mouseClick(view, Qt.LeftButton, Qt.NoModifier, pos(a))
    assert ed.values[view.site_index(a)] == 1 and ed.n_fixed() == 1
    ed.brush = -1
    QTest.mousePress(view, Qt.LeftButton, Qt.NoModifier, pos(b))
    QTest.mouseMove(view, pos(c))
    QTest.mouseMove(view, pos(a))
    QTest.mouseRelease(view, Qt.LeftButton, Qt.NoModifier, pos(a))
    assert [ed.values[view.site_index(i)] for i in (a, b, c)] == [-1, -1, -1] and ed.n_fixed() == 3
    ed.undo()  # the drag is one step
    assert ed.values[view.site_index(a)] == 1 and ed.n_fixed() == 1
    ed.undo()
    assert ed.n_fixed() == 0
    ed.redo()
    ed.redo()
    assert ed.n_fixed() == 3


def test_drag_from_empty_space_rotates_and_paints_nothing(qtbot):
    ed, view = _view(qtbot)
    yaw = view.cam.yaw
    QTest.mousePress(view, Qt.LeftButton, Qt.NoModifier, QPoint(3, 3))
    QTest.mouseMove(view, QPoint(60, 3))
    QTest.mouseRelease(view, Qt.LeftButton, Qt.NoModifier, QPoint(60, 3))
    assert view.cam.yaw == pytest.approx(yaw + 0.57) and ed.n_fixed() == 0 and not ed.undo_stack


def test_layer_sync_both_ways(qtbot, offline_engine):
    from lattherm.app.painting import PaintingPanel

    panel = PaintingPanel(offline_engine)
    qtbot.addWidget(panel)
    panel.model.set_choices([("bundled: cuau", "/m/cuau")])
    panel._got_info("/m/cuau", {"size": [2, 2, 4], "system": "cuau", "lattice": "fcc", "species": ["Cu", "Au"],
                                "model": {"kind": "ao-arm"}, "vectors": FCC, "unit_length": 1.9})
    panel.resize(1200, 800)
    with qtbot.waitExposed(panel):
        panel.show()
    view = panel.crystal
    assert view.shape == (2, 2, 4) and not view.isHidden()
    panel.layer.setValue(2)  # slider -> editor and 3D
    assert panel.editor.layer == 2 and view.layer == 2 and panel.layer_label.text() == "layer 3 / 4"
    # 3D -> slider and editor: a press on a site of another layer makes that layer current and paints the site
    i = next(i for i in _front_sites(view) if view.site_layer(i) != 2)
    k = view.site_layer(i)
    QTest.mouseClick(view, Qt.LeftButton, Qt.NoModifier, view.screen_pos(i).toPoint())
    assert panel.layer.value() == k and panel.editor.layer == k and view.layer == k
    g = view.site_index(i)
    assert panel.editor.values[g] == 1 and g[2] == k
    assert panel.count_label.text().startswith("1 of 16 sites fixed")
    # what the 2D editor paints on its layer is what the 3D view shows
    panel.editor.values[0, 1, k] = -1
    assert view.current_values()[(0 * 2 + 1) * 4 + k] == -1


def test_a_square_lattice_hides_the_3d_view(qtbot, offline_engine):
    from lattherm.app.painting import PaintingPanel

    panel = PaintingPanel(offline_engine)
    qtbot.addWidget(panel)
    panel.model.set_choices([("run: a", "/runs/a")])
    panel._got_info("/runs/a", {"size": [4, 4], "system": "ising", "lattice": "square", "species": ["down", "up"],
                                "model": {"kind": "ao-arm"}, "vectors": SC[:2], "unit_length": 1.0})
    assert panel.crystal_box.isHidden() and panel.layer.isHidden()


def test_model_info_gives_positions_the_engine_lattice_has():
    """The view places sites from the engine's description, not from lattice-specific maths of its own."""
    from lattherm.engine.lattices import fcc
    from lattherm.engine.tasks import describe_model

    info = describe_model("cuau-2x2x4-ao-mlp")
    assert np.allclose(site_positions(info["size"], info["vectors"]), fcc(*info["size"]).positions)
    assert info["unit_length"] == pytest.approx(fcc(1, 1, 1).unit_length)
    assert conventional_edge(info["vectors"]) * info["unit_length"] == pytest.approx(3.8)  # a of CuAu

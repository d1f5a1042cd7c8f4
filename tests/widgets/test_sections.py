"""The dock's parts build and work on their own (no viewer, no dock)."""

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets import _sections as S


def test_input_section_offers_modalities_and_frame_axes(qtbot):
    part = S.InputSection()
    qtbot.addWidget(part)
    assert [part.modality_combo.itemData(i) for i in range(part.modality_combo.count())] == list(C.MODALITIES)
    assert [part.frames_combo.itemData(i) for i in range(part.frames_combo.count())] == list(C.FRAME_CHOICES)
    assert part.kind_combo.count() == 4


def test_sampling_section_reports_every_change(qtbot):
    part = S.SamplingSection(("cartesian", "radial"))
    qtbot.addWidget(part)
    seen = []
    for signal in part.changed_signals():
        signal.connect(lambda *a: seen.append(a))
    part.ratio_spin.setValue(0.4)
    part.mask_combo.setCurrentText("radial")
    part.preview_check.setChecked(False)
    assert len(seen) == 3


def test_method_section_holds_form_and_run_bar(qtbot):
    part = S.MethodSection()
    qtbot.addWidget(part)
    assert not part.run_bar.stop_button.isEnabled() and part.run_bar.run_button.text() == "Run"
    assert part.device_combo.findText("auto") == 0 and part.param_form is not None


def test_results_tabs(qtbot):
    part = S.ResultsTabs()
    qtbot.addWidget(part)
    assert [part.tabText(i) for i in range(part.count())] == ["Live plot", "Compare"]
    assert part.table.columnCount() == 4

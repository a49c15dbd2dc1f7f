"""Dataset names and paths resolve to data YAMLs, or say how to prepare them."""
import pytest

from scsa_yolo.data.layout.paths import DatasetNotPrepared, default_data_root, resolve_data


def test_default_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCSA_YOLO_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("SCSA_YOLO_DATA")
    monkeypatch.chdir(tmp_path)
    assert default_data_root() == tmp_path / "datasets"


def test_prepared_name_and_explicit_yaml_resolve(tmp_path):
    (tmp_path / "voc").mkdir()
    (tmp_path / "voc" / "data.yaml").write_text("names: [a]\n")
    assert resolve_data("voc", tmp_path) == (tmp_path / "voc" / "data.yaml").resolve()
    custom = tmp_path / "mine.yaml"
    custom.write_text("names: [a]\n")
    assert resolve_data(str(custom)) == custom.resolve()


def test_unprepared_name_gives_the_prepare_command(tmp_path):
    with pytest.raises(DatasetNotPrepared, match=f"scsa-yolo data prepare visdrone --root {tmp_path}"):
        resolve_data("visdrone", tmp_path)
    with pytest.raises(DatasetNotPrepared, match="data YAML not found"):
        resolve_data(str(tmp_path / "missing.yaml"))

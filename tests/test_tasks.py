"""The task dimension (issue 29): segmentation, classification, pose and OBB models carry
their task in the identity, take the placements their structure allows, build from
Ultralytics' own task YAMLs, and resolve by name through the stock model loader."""
import pytest
import torch

from scsa_yolo.identity import PLACEMENTS, TASKS, IdentityError, ModelId, RunSpec
from scsa_yolo.integration.specs import resolve_model
from scsa_yolo.integration.checkpoints import load_yolo


@pytest.mark.parametrize("name, task, model, yaml_scaled, run", [
    ("yolov8n-seg-scsa-block.yaml", "segment", "yolov8n-seg", "yolov8n-seg-scsa-block.yaml", "yolov8n-seg-scsa-block-s0"),
    ("yolo11s-cls-se", "classify", "yolo11s-cls", "yolo11s-cls-se-backbone-res.yaml", "yolo11s-cls-se-backbone-res-s0"),
    ("yolo26m-pose", "pose", "yolo26m-pose", "yolo26m-pose.yaml", "yolo26m-pose-none-s0"),
    ("yolov8n-obb-cbam-neck-res", "obb", "yolov8n-obb", "yolov8n-obb-cbam-neck-res.yaml", "yolov8n-obb-cbam-neck-res-s0"),
    ("yolov8n-se-block", "detect", "yolov8n", "yolov8n-se-block.yaml", "yolov8n-se-block-s0"),
])
def test_names_carry_the_task_after_the_scale_as_ultralytics_names_its_files(name, task, model, yaml_scaled, run):
    model_id = ModelId.parse(name)
    assert (model_id.task, model_id.model, model_id.yaml_name(scaled=True), model_id.run_name(0)) == \
           (task, model, yaml_scaled, run)
    assert ModelId.parse(model_id.name) == model_id  # the text form parses back to the same identity
    assert ModelId.from_json(model_id.to_json()) == model_id  # and so does the record's JSON form
    spec = RunSpec.create("synthetic", model, model_id.attn, model_id.placement, 0, 1, 64, 2)
    assert RunSpec.from_json(spec.to_json()) == spec and spec.model_id.task == task


def test_a_classification_model_takes_only_the_backbone_placements():
    placements = TASKS["classify"].placements()
    assert {"backbone", "backbone-res", "block"} <= set(placements) and not {"neck", "neck-res"} & set(placements)
    assert TASKS["segment"].placements() == list(PLACEMENTS)
    for placement in ("neck", "neck-res"):
        with pytest.raises(IdentityError, match=f"placement '{placement}' needs a neck.*yolov8n-cls.*choose one of: "
                                                "backbone, backbone-res, block"):
            ModelId.create("yolov8n-cls", "scsa", placement)
    with pytest.raises(IdentityError, match="has no scale; add one of n, s, m, l, x \\(e.g. yolo11n-cls\\)"):
        ModelId.create("yolo11-cls", "scsa")


@pytest.mark.parametrize("model, placement, expected", [
    ("yolov8n-seg", "neck-res", "SegmentationModel"),
    ("yolo11n-cls", "block", "ClassificationModel"),
    ("yolo26n-pose", "backbone", "PoseModel"),
    ("yolo11n-obb", "neck", "OBBModel"),
])
def test_each_task_builds_its_own_model_class_with_the_attention(tmp_path, monkeypatch, model, placement, expected):
    monkeypatch.setenv("SCSA_YOLO_CACHE", str(tmp_path))
    built = load_yolo(resolve_model(model, "scsa", placement).argument, verbose=False)
    plain = load_yolo(f"{model}.yaml", verbose=False)
    assert type(built.model).__name__ == type(plain.model).__name__ == expected
    assert sum(type(m).__name__ == "SCSA" for m in built.model.modules()) > 0
    assert sum(p.numel() for p in built.model.parameters()) > sum(p.numel() for p in plain.model.parameters())
    built.model.eval()(torch.zeros(1, 3, 64, 64))


def test_the_stock_loader_takes_a_task_name_with_no_committed_file(tmp_path, monkeypatch):
    """`yolo train model=yolov8n-pose-scsa-block.yaml` from any folder: the name is generated on demand."""
    monkeypatch.setenv("SCSA_YOLO_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    model = load_yolo("yolov8s-pose-eca-block.yaml", verbose=False)
    assert model.task == "pose" and model.model.yaml["scale"] == "s"
    assert (tmp_path / "cache" / "models" / "yolov8s-pose-eca-block.yaml").is_file()


def test_a_dataset_folder_is_keyed_by_its_name():
    from scsa_yolo.identity import DatasetRef

    assert DatasetRef("datasets/synthetic-cls").key == "synthetic-cls"  # no slash in a run folder's name
    assert DatasetRef("synthetic-cls").key == "synthetic-cls"
    assert DatasetRef("/d/visdrone/data.yaml").key == "visdrone" and DatasetRef("x/coco8.yaml").key == "coco8"


@pytest.mark.parametrize("name, committed", [
    ("yolov8n-seg-scsa.yaml", "yolov8-seg-scsa-backbone-res.yaml"),
    ("yolo26s-seg-cbam-neck-res.yaml", "yolo26-seg-cbam-neck-res.yaml"),
    ("yolo11n-cls-scsa-block.yaml", "yolo11-cls-scsa-block.yaml"),
])
def test_a_seg_or_cls_name_resolves_to_its_committed_yaml_from_any_folder(tmp_path, monkeypatch, name, committed):
    """`YOLO(name)` and the stock `yolo segment train model=name` (both through Ultralytics'
    yaml_model_load) read the committed file; nothing is generated into the cache."""
    from ultralytics import YOLO

    from scsa_yolo.integration.ultralytics import resolve_model_yaml
    from scsa_yolo.models.catalog import cfg_models_dir

    monkeypatch.setenv("SCSA_YOLO_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert resolve_model_yaml(name) == cfg_models_dir() / committed
    assert resolve_model(name).kind == "committed"
    model = YOLO(name)
    assert model.task == ModelId.parse(name).task and model.model.yaml["scale"] == ModelId.parse(name).scale
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
@pytest.mark.parametrize("model, placement, writer, model_class", [
    ("yolov8n-pose", "backbone-res", "write_pose_dataset", "PoseModel"),
    ("yolov8n-obb", "neck", "write_obb_dataset", "OBBModel"),
])
def test_scsa_yolo_train_trains_a_pose_and_an_obb_model_for_one_epoch(tmp_path, monkeypatch, model, placement,
                                                                      writer, model_class):
    """Pose and OBB have no committed YAMLs: the model is generated on demand and trained by
    `scsa-yolo train`; our evaluation covers detect/segment/classify, so the run says it is skipped."""
    import _task_data
    from click.testing import CliRunner

    from scsa_yolo.cli.train import train
    from scsa_yolo.nn.placement import ResidualAttention

    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("SCSA_YOLO_CACHE", str(tmp_path / "cache"))
    data = getattr(_task_data, writer)(tmp_path / "data")  # 4 train and 2 val images of 64 px
    result = CliRunner().invoke(train, [
        "--data", str(data), "--model", model, "--attn", "scsa", "--placement", placement, "--epochs", "1",
        "--imgsz", "64", "--batch", "2", "--device", "cpu", "--project", str(tmp_path / "runs"), "--name", "run",
        "workers=0", "plots=False",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    best = tmp_path / "runs" / "run" / "weights" / "best.pt"
    assert best.is_file() and f"best weights: {best}" in result.output
    task = ModelId.parse(model).task
    assert f"evaluation skipped: scsa-yolo val and the bench evaluate detect, segment, classify models, not {task}" \
           in result.output and "scsa-yolo val --model" not in result.output
    trained = load_yolo(best).model
    assert type(trained).__name__ == model_class and trained.yaml["scale"] == "n"
    layers = [m for m in trained.modules() if type(m).__name__ == "SCSA"]
    assert len(layers) == 3  # on P3/P4/P5 (backbone-res) or on the three head inputs (neck)
    wrapped = [m for m in trained.model if isinstance(m, ResidualAttention)]
    assert len(wrapped) == (3 if placement == "backbone-res" else 0)


def test_a_task_base_the_installed_ultralytics_lacks_is_refused_before_any_work(tmp_path, monkeypatch):
    """Issue 29's bad input: `scsa-yolo train --model yolo26n-obb` with an Ultralytics that ships
    no yolo26-obb.yaml (an older release; simulated by a copy of its cfg/models without the file)."""
    import shutil

    from click.testing import CliRunner

    import scsa_yolo.models.catalog as catalog
    from scsa_yolo.cli.main import main

    shipped = tmp_path / "cfg-models"
    shutil.copytree(catalog.ultralytics_models_dir(), shipped)
    (shipped / "26" / "yolo26-obb.yaml").unlink()
    monkeypatch.setattr(catalog, "ultralytics_models_dir", lambda: shipped)
    monkeypatch.setenv("SCSA_YOLO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SCSA_YOLO_DATA", str(tmp_path / "data"))
    result = CliRunner().invoke(main, ["train", "--model", "yolo26n-obb", "--attn", "scsa", "--placement", "neck",
                                       "--data", "synthetic", "--epochs", "1"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "the installed ultralytics" in result.output and "has no 26/yolo26-obb.yaml" in result.output
    assert "pip install -U ultralytics" in result.output
    assert not (tmp_path / "data").exists()  # refused before the synthetic set was generated

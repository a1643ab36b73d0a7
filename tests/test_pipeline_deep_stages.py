"""The deep image stages (oncolab.pipeline.stages.deep and .outputs), the presets built on them,
the detector's mAP inside the system, and feature importance over every fusion input.

The systems here are tiny (a few epochs on small images), so their numbers mean nothing
clinically; every relation checked must hold for any setting.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from oncolab.data import synthetic_cohort, train_val_test_split
from oncolab.pipeline import STAGES, OncoLabSystem, SystemConfig, preset, read_inputs
from oncolab.pipeline.stages import Targets, crossfit_folds
from oncolab.pipeline.stages.deep import (
    PathologyTileResNet,
    PathologyTileViT,
    RadiographViT,
)
from oncolab.pipeline.stages.outputs import CrossFittedEncoder, align_rotation
from oncolab.vision.encoders import image_classifier

TINY = dict(tile_epochs=1, cnn_epochs=1, mil_epochs=3, max_tiles=4, epochs=15, patience=15, hidden=8, folds=2,
            seed=0, progress=False)


@pytest.fixture(scope="module")
def data():
    cohort = synthetic_cohort(72, seed=5, image_size=96, slide_size=128)
    split = train_val_test_split(cohort, seed=0)
    train = np.sort(np.concatenate([split["train"], split["val"]]))
    return SimpleNamespace(cohort=cohort, train=train, test=split["test"], ctr=cohort.subset(train),
                           cte=cohort.subset(split["test"]))


def _same_predictions(system, cohort, path):
    system.save(path)
    loaded = OncoLabSystem.load(path)
    a, b = system.predict(cohort), loaded.predict(cohort)
    pd.testing.assert_frame_equal(a, b)
    return loaded


# --------------------------------------------------------------------------------------------
# building blocks: Procrustes, tile shrinking, penultimate features
# --------------------------------------------------------------------------------------------
def test_align_rotation_matches_scipy_and_recovers_a_rotation():
    from scipy.linalg import orthogonal_procrustes
    from scipy.stats import special_ortho_group

    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 4))
    R = special_ortho_group.rvs(4, random_state=1)
    B = A @ R + 0.01 * rng.normal(size=(50, 4))
    ours = align_rotation(A, B)
    np.testing.assert_allclose(ours, orthogonal_procrustes(A, B)[0], atol=1e-10)
    np.testing.assert_allclose(ours, R, atol=0.01)
    np.testing.assert_allclose(ours @ ours.T, np.eye(4), atol=1e-10)
    with pytest.raises(ValueError, match="one shape"):
        align_rotation(A, B[:, :3])


def test_downsample_tiles_is_area_averaging():
    from skimage.transform import downscale_local_mean

    from oncolab.vision.pathology import downsample_tiles

    tiles = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    small = downsample_tiles(tiles, 4)
    ref = np.rint(downscale_local_mean(tiles.astype(float), (1, 2, 2, 1))).astype(np.uint8)
    assert small.dtype == np.uint8 and small.shape == (3, 4, 4, 3)
    np.testing.assert_array_equal(small, ref)
    assert downsample_tiles(tiles, 8) is tiles or np.array_equal(downsample_tiles(tiles, 8), tiles)
    with pytest.raises(ValueError, match="must divide"):
        downsample_tiles(tiles, 3)


@pytest.mark.parametrize("name,kwargs,chans", [("small_resnet", {}, 1), ("small_vit", {}, 3),
                                              ("resnet18", {}, 3)])
def test_pre_logits_are_what_the_head_reads(name, kwargs, chans):
    from oncolab.vision import classifier_head, extract_features, image_encoder

    model = image_encoder(name, in_chans=chans, num_classes=3, seed=0, **kwargs)
    imgs = np.random.default_rng(1).integers(0, 256, (5, 64, 64) if chans == 1 else (5, 64, 64, 3), dtype=np.uint8)
    logits = extract_features(model, imgs, progress=False)
    pre = extract_features(model, imgs, progress=False, pre_logits=True)
    assert pre.shape == (5, model.num_features)
    with torch.no_grad():
        np.testing.assert_allclose(classifier_head(model)(torch.from_numpy(pre)).numpy(), logits, atol=1e-5)
    assert len(classifier_head(model)._forward_hooks) == 0   # the hook is removed


def test_pretrained_encoder_fails_fast_offline():
    import time

    from oncolab.env import HubUnavailableError

    t = time.perf_counter()
    with pytest.raises(HubUnavailableError):
        image_classifier("vit", True, 3, 3, 32, 0)
    assert time.perf_counter() - t < 5
    with pytest.raises(ValueError, match="multiple of 8"):
        image_classifier("vit", False, 3, 3, 36, 0)
    with pytest.raises(ValueError, match="family"):
        image_classifier("vgg", False, 3, 3, 32, 0)


# --------------------------------------------------------------------------------------------
# the registry and the settings
# --------------------------------------------------------------------------------------------
def test_new_stages_are_registered_and_settings_checked():
    assert STAGES["pathology"]["resnet_tiles"] is PathologyTileResNet
    assert STAGES["pathology"]["vit_tiles"] is PathologyTileViT
    assert STAGES["radiograph"]["vit"] is RadiographViT
    assert issubclass(RadiographViT, CrossFittedEncoder) and issubclass(PathologyTileViT, CrossFittedEncoder)
    for bad, match in [({"stage_output": "embedding"}, "stage_output"), ({"tile_pooling": "max"}, "tile_pooling"),
                       ({"tile_pixels": 24}, "tile_pixels"), ({"feature_components": 0}, "feature_components"),
                       ({"pretrained": "yes"}, "pretrained"), ({"lab_narration": "some"}, "lab_narration")]:
        with pytest.raises(ValueError, match=match):
            SystemConfig(**bad)
    with pytest.raises(ValueError, match="crop_size"):
        RadiographViT(crop_size=60)
    with pytest.raises(ValueError, match="output"):
        PathologyTileResNet(output="logits")
    with pytest.raises(ValueError, match="pooling"):
        PathologyTileResNet(pooling="max")


def test_cli_reads_the_new_settings():
    from oncolab.cli import build_parser
    from oncolab.pipeline.config import config_from_args

    args = build_parser().parse_args(["run", "--preset", "handcrafted", "--pathology-encoder", "vit_tiles",
                                      "--stage-output", "features", "--pretrained", "false", "--max-tiles", "4"])
    cfg = config_from_args(args)
    assert (cfg.pathology_encoder, cfg.stage_output, cfg.pretrained, cfg.max_tiles) == ("vit_tiles", "features",
                                                                                        False, 4)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--pretrained", "perhaps"])


# --------------------------------------------------------------------------------------------
# the tile stages
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("encoder,pooling,output", [("resnet_tiles", "mean", "logp"),
                                                    ("vit_tiles", "attention", "features")])
def test_tile_stage_fits_saves_and_loads(data, tmp_path, encoder, pooling, output):
    cfg = SystemConfig(modalities=("pathology", "clinical"), pathology_encoder=encoder, tile_pooling=pooling,
                       stage_output=output, feature_components=4, **TINY)
    s = OncoLabSystem(cfg).fit(data.ctr)
    stage = s.stages["pathology"]
    assert isinstance(stage, STAGES["pathology"][encoder]) and len(stage.models) == cfg.folds
    names = stage.feature_names()
    assert s.dims_["pathology"] == len(names) == (3 if output == "logp" else 4)
    assert all(n.startswith(encoder) for n in names)
    assert (stage.models[0].pool is None) == (pooling == "mean")
    loaded = _same_predictions(s, data.cte, tmp_path / "m")
    assert loaded.stages["pathology"].settings() == stage.settings()
    # a tile map for the report: one weight per tile
    raw = read_inputs(data.cte, cfg).raw["pathology"]
    w, coords, t, what = stage.tile_weights(raw, 0)
    assert len(w) == len(coords) == len(raw["tiles"][0]) and t == cfg.tile_size
    if pooling == "attention":
        assert np.isclose(w.sum(), 1.0) and "attention" in what
    else:
        assert ((w >= 0) & (w <= 1)).all() and "P(" in what


@pytest.mark.slow
def test_features_are_cross_fitted_and_aligned(data):
    """A training patient's features come from the fold model that did not see it, reduced and rotated."""
    cfg = SystemConfig(pathology_encoder="resnet_tiles", stage_output="features", feature_components=3, **TINY)
    raw, usable, _ = PathologyTileResNet.read(data.ctr, cfg)
    rows = np.flatnonzero(usable)
    targets = Targets(data.ctr.y, list(data.ctr.classes))
    stage = PathologyTileResNet.from_config(cfg)
    Z = stage.fit_transform(raw, rows, targets)
    assert Z.shape == (len(usable), 3)
    inputs = stage.prepare(raw, rows, None)
    folds = crossfit_folds(rows, targets.y, cfg.folds, cfg.seed)
    for j, (_, held) in enumerate(folds):
        own = stage._reduce(j, stage.embed_model(stage.models[j], inputs, held))
        np.testing.assert_allclose(Z[held], own, atol=1e-8)
        other = stage._reduce(1 - j, stage.embed_model(stage.models[1 - j], inputs, held))
        assert not np.allclose(Z[held], other)
    # each fold's scores have unit variance on its own fitting patients before the rotation
    pca, scale, rot = stage.reducers_[1]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-10)
    assert np.allclose(stage.reducers_[0][2], np.eye(3))
    # a new patient gets the mean of the aligned features of both fold models
    new = stage.transform(raw)
    mean = np.mean([stage._reduce(j, stage.embed_model(m, inputs, rows)) for j, m in enumerate(stage.models)], 0)
    np.testing.assert_allclose(new[rows], mean, atol=1e-8)


# --------------------------------------------------------------------------------------------
# the radiograph ViT
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_radiograph_vit_shares_the_cnn_window_and_round_trips(data, tmp_path):
    from oncolab.detection.crops import centred_window, roi_crop

    cfg = SystemConfig(modalities=("radiograph", "clinical"), radiograph_encoder="vit", stage_output="features",
                       feature_components=4, **TINY)
    s = OncoLabSystem(cfg).fit(data.ctr)
    stage = s.stages["radiograph"]
    assert isinstance(stage, RadiographViT) and stage.detector.name == "finder"
    assert s.feature_names()["radiograph"][0] == "radiograph: vit feature PC1"
    _same_predictions(s, data.cte, tmp_path / "m")
    raw = read_inputs(data.cte, cfg).raw["radiograph"]
    box = stage.boxes(raw)[0]
    crop = roi_crop(raw["images"][0], centred_window(box, raw["images"][0].shape, stage.window), stage.crop_size,
                    margin=0.0)
    np.testing.assert_array_equal(stage.crops(raw, stage.boxes(raw))[0], crop)
    amap = stage.attention_map(crop)
    assert amap.shape == crop.shape and np.isclose(amap.max(), 1) and np.isclose(amap.min(), 0)
    with pytest.raises(TypeError, match="attention_map"):
        stage.grad_cam(crop)


# --------------------------------------------------------------------------------------------
# the detector inside the system: mAP on held-out patients
# --------------------------------------------------------------------------------------------
def test_detection_metrics_of_the_finder(data):
    from oncolab.detection import evaluate_detections
    from oncolab.pipeline.experiments import detection_metrics, detector_scores

    s = OncoLabSystem(preset("handcrafted", modalities=("radiograph", "clinical"), **{k: v for k, v in TINY.items()
                                                                                       if k in ("epochs", "seed")},
                             progress=False)).fit(data.ctr)
    tab = detection_metrics(s, data.cte, n_boot=50).set_index("metric")
    assert list(tab.index) == ["detector_map50", "detector_map50_95"]
    images = [data.cte.radiograph(i) for i in range(len(data.cte))]
    preds = detector_scores(s.stages["radiograph"].detector, images)
    truth = data.cte.boxes[["x0", "y0", "x1", "y1"]].to_numpy(float)
    direct = evaluate_detections(preds, [b[None] for b in truth])
    assert tab.at["detector_map50", "value"] == pytest.approx(direct.map50)
    assert tab.at["detector_map50_95", "value"] == pytest.approx(direct.map50_95)
    assert tab.at["detector_map50", "ci_low"] <= direct.map50 <= tab.at["detector_map50", "ci_high"]
    assert tab.at["detector_map50", "n"] == len(data.cte) and "score the detector" in tab.at["detector_map50", "note"]
    _, found = s.stages["radiograph"].detector.finder.predict(images)
    scores = np.array([p.scores[0] for p in preds])
    assert ((scores == 0) == ~found).all() and (scores[found] > 0).all()


def test_detection_metrics_refuses_the_annotated_detector_and_a_cohort_without_boxes(data):
    from oncolab.data import Cohort
    from oncolab.pipeline.experiments import detection_metrics

    s = OncoLabSystem(preset("annotated_box", modalities=("radiograph",), epochs=5, progress=False)).fit(data.ctr)
    with pytest.raises(ValueError, match="annotated"):
        detection_metrics(s, data.cte)
    no_boxes = Cohort({k: v for k, v in data.cte.tables.items() if k != "boxes"}, images=data.cte.images,
                      meta=data.cte.meta)
    s2 = OncoLabSystem(preset("handcrafted", modalities=("radiograph",), epochs=5, progress=False)).fit(data.ctr)
    with pytest.raises(ValueError, match="boxes"):
        detection_metrics(s2, no_boxes)


# --------------------------------------------------------------------------------------------
# feature importance and explanations of the risk
# --------------------------------------------------------------------------------------------
def test_feature_importance_covers_clinical_factors_and_the_risk(data):
    from oncolab.explain import permutation_importance
    from oncolab.fusion import predict_model
    from oncolab.pipeline.report import feature_importance
    from oncolab.survival import harrell_c

    s = OncoLabSystem(preset("handcrafted", modalities=("genes", "clinical"), epochs=30, patience=30, seed=0,
                             progress=False)).fit(data.ctr)
    names = s.feature_names()
    for target in ("diagnosis", "risk"):
        tab = feature_importance(s, data.cte, target=target, n_repeats=2, seed=1)
        assert sorted(tab.index) == sorted(names["genes"] + names["clinical"])
        assert set(tab["modality"]) == {"genes", "clinical"} and tab["rank"].is_monotonic_increasing
        assert any(n.startswith("clinical: age") for n in tab.index)
    X, mask = s.embed(data.cte)
    lab = data.cte.labels
    risk = predict_model(s.model, X, mask)["risk"]
    assert tab.attrs["baseline"] == pytest.approx(harrell_c(lab["time"].to_numpy(float), lab["event"].to_numpy(bool),
                                                            risk))
    # the same numbers as permutation_importance on the concatenated inputs
    A = np.hstack([X["genes"], X["clinical"]])
    d = X["genes"].shape[1]

    def c_index(B, _):
        r = predict_model(s.model, {"genes": B[:, :d], "clinical": B[:, d:]}, mask)["risk"]
        return harrell_c(lab["time"].to_numpy(float), lab["event"].to_numpy(bool), r)

    ref = permutation_importance(c_index, A, np.zeros(len(A)), n_repeats=2, seed=1)
    np.testing.assert_allclose(tab.loc[names["genes"] + names["clinical"], "importance_mean"].to_numpy(),
                               ref["importance_mean"].to_numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="target"):
        feature_importance(s, data.cte, target="grade")


def test_explain_patient_explains_the_risk_of_a_survival_system(data):
    from oncolab.explain import integrated_gradients_captum
    from oncolab.pipeline import explain_patient

    s = OncoLabSystem(preset("handcrafted", modalities=("labs", "genes", "clinical"), task="survival", epochs=30,
                             patience=30, seed=0, progress=False)).fit(data.ctr)
    recs = explain_patient(s, data.cte.subset(np.arange(4)), steps=16)
    assert len(recs) == 4 and recs[0].predicted is None and recs[0].probabilities == {}
    assert set(recs[0].risk_contributions) == {"labs", "genes", "clinical"}
    assert abs(sum(recs[0].risk_contributions.values()) - 1) < 1e-9
    pred = s.predict(data.cte.subset(np.arange(4)))
    np.testing.assert_allclose([r.risk for r in recs], pred["risk"], atol=1e-6)
    # the top risk attribution is the largest of captum's
    X, mask = s.embed(data.cte.subset(np.arange(4)))
    cap = integrated_gradients_captum(s.model, X, mask, "risk", steps=16)
    names = s.feature_names()
    flat = {n: cap[m][0, k] for m in cap for k, n in enumerate(names[m])}
    top_name, top_value = recs[0].risk_top_features[0]
    assert top_value == pytest.approx(flat[top_name], abs=1e-5)
    assert abs(top_value) == pytest.approx(max(abs(v) for v in flat.values()), abs=1e-5)


# --------------------------------------------------------------------------------------------
# the presets of the seed systems
# --------------------------------------------------------------------------------------------
def test_seed_presets_are_valid_configurations():
    bone, vision = preset("bone_tumor"), preset("oncovision")
    assert bone.modalities == ("radiograph", "pathology", "labs")
    assert (bone.detector, bone.radiograph_encoder, bone.pathology_encoder) == ("yolo", "cnn", "resnet_tiles")
    assert bone.labs_encoder in ("bert", "biobert") and bone.lab_narration == "abnormal"
    assert bone.stage_output == "features" and bone.task == "diagnosis"
    assert vision.modalities == ("pathology", "genes", "clinical")
    assert (vision.pathology_encoder, vision.fusion, vision.task) == ("vit_tiles", "attention", "multitask")
    assert not bone.reads_labels_at_prediction and not vision.reads_labels_at_prediction


@pytest.mark.slow
def test_oncovision_reports_explain_the_risk(data, tmp_path):
    import json

    from oncolab.pipeline import patient_report

    cfg = preset("oncovision", **TINY)
    s = OncoLabSystem(cfg).fit(data.ctr)
    assert s.task_ == "multitask"
    path = patient_report(s, data.cte, 0, tmp_path)
    text = path.read_text()
    assert "attribution of the risk" in text and "attribution of the predicted class" in text
    record = json.loads((tmp_path / f"{data.cte.ids[0]}_explanation.json").read_text())
    assert record["risk"] is not None and record["predicted"] is not None
    assert abs(sum(record["risk_contributions"].values()) - 1) < 1e-9


@pytest.mark.slow
def test_cli_runs_the_bone_tumor_preset_and_reports_the_detector_map(tmp_path):
    from oncolab.cli import main

    out = tmp_path / "run"
    rc = main(["run", "--preset", "bone_tumor", "--n-patients", "70", "--image-size", "96", "--slide-size", "128",
               "--detector-epochs", "1", "--detector-imgsz", "64", "--cnn-epochs", "1", "--tile-epochs", "1",
               "--max-tiles", "4", "--bert-epochs", "1", "--epochs", "10", "--folds", "2", "--n-boot", "20",
               "--reports", "1", "--no-ablation", "--quiet", "--out", str(out)])
    assert rc == 0
    metrics = pd.read_csv(out / "metrics.csv").set_index("metric")
    for m in ("macro_precision", "macro_recall", "macro_f1", "macro_auc", "detector_map50"):
        assert m in metrics.index
        assert 0 <= metrics.at[m, "value"] <= 1
    assert "c_index" not in metrics.index
    assert "score the detector" in metrics.at["detector_map50", "note"]


# --------------------------------------------------------------------------------------------
# narrating the abnormal markers only
# --------------------------------------------------------------------------------------------
def test_abnormal_narration_names_exactly_the_abnormal_values(data):
    import zlib

    from oncolab.text import flag_panel, narrate, narrate_cohort, patient_seed
    from oncolab.text.narrator import NARRATIONS

    assert NARRATIONS == ("all", "abnormal")
    seen_abnormal = seen_normal = 0
    for pid in data.cohort.ids[:30]:
        row = data.cohort.labs.loc[pid]
        sex, age = data.cohort.clinical.at[pid, "sex"], data.cohort.clinical.at[pid, "age"]
        results = flag_panel(row, sex, age)
        short = narrate(row, sex, age, seed=3, narration="abnormal")
        full = narrate(row, sex, age, seed=3)
        for r in results:
            if r.flag == "not measured":
                continue
            token = f"{r.value_text} {r.unit}"
            if r.abnormal:
                assert token in short and token in full
                seen_abnormal += 1
            else:
                assert token in full and token not in short
                seen_normal += 1
        assert "not measured" not in short.lower()
        assert len(short) <= len(full)
    assert seen_abnormal > 0 and seen_normal > 0
    sub = data.cohort.subset(np.arange(5))
    texts = narrate_cohort(sub, seed=0, by="id", narration="abnormal")
    assert texts == [narrate(sub.labs.iloc[i], sub.clinical["sex"].iloc[i], sub.clinical["age"].iloc[i],
                             seed=patient_seed(0, zlib.crc32(str(pid).encode())), narration="abnormal")
                     for i, pid in enumerate(sub.ids)]
    with pytest.raises(ValueError, match="narration"):
        narrate(data.cohort.labs.iloc[0], narration="some")


# --------------------------------------------------------------------------------------------
# the radiograph CNN hands over features too; the lab-text stages narrate as configured
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_radiograph_cnn_hands_over_reduced_features_and_round_trips(data, tmp_path):
    from oncolab.pipeline.stages import RadiographCNN

    cfg = SystemConfig(modalities=("radiograph", "clinical"), radiograph_encoder="cnn", stage_output="features",
                       feature_components=3, **TINY)
    s = OncoLabSystem(cfg).fit(data.ctr)
    stage = s.stages["radiograph"]
    assert type(stage) is RadiographCNN and isinstance(stage, CrossFittedEncoder)
    assert (stage.output, stage.components, stage.settings()["output"]) == ("features", 3, "features")
    assert s.feature_names()["radiograph"] == [f"radiograph: cnn feature PC{k}" for k in (1, 2, 3)]
    # a training patient's features: the PCA scores of the fold model that did not see it, unit variance
    Z = stage.transform(read_inputs(data.ctr, cfg).raw["radiograph"])
    assert Z.shape == (len(data.ctr), 3) and np.all(np.isfinite(Z))
    _same_predictions(s, data.cte, tmp_path / "m")
    # the log-probability output is unchanged by the new settings' defaults
    assert RadiographCNN().output == "logp"


def test_lab_text_stage_narrates_as_the_config_says(data):
    from oncolab.pipeline.stages import STAGES as REG
    from oncolab.text import narrate_cohort

    sub = data.cohort.subset(np.arange(6))
    cls = REG["labs"]["tfidf"]
    for narration in ("all", "abnormal"):
        texts, usable, _ = cls.read(sub, SystemConfig(labs_encoder="tfidf", lab_narration=narration))
        assert usable.all()
        assert list(texts) == narrate_cohort(sub, seed=0, by="id", narration=narration)
    short = cls.read(sub, SystemConfig(labs_encoder="tfidf", lab_narration="abnormal"))[0]
    full = cls.read(sub, SystemConfig(labs_encoder="tfidf"))[0]
    assert all(len(a) <= len(b) for a, b in zip(short, full)) and list(short) != list(full)


def test_run_help_describes_every_preset(capsys):
    from oncolab.cli import build_parser
    from oncolab.pipeline import PRESETS
    from oncolab.pipeline.presets import PRESET_SUMMARIES

    assert set(PRESET_SUMMARIES) == set(PRESETS)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    out = capsys.readouterr().out
    for name, summary in PRESET_SUMMARIES.items():
        assert f"  {name} " in out and summary.split(":")[0] in out


def test_a_pretrained_stage_is_rebuilt_with_the_pretrained_architecture_without_the_hub():
    """Loading a stage trained from ImageNet weights builds timm's network (no download), not the small one."""
    from oncolab.pipeline.stages import RadiographCNN

    ref_resnet = image_classifier("resnet", True, 1, 3, 64, 0, download=False)
    small = image_classifier("resnet", False, 1, 3, 64, 0)
    assert ref_resnet.num_features == 512 and small.num_features != 512
    rebuilt = RadiographCNN(pretrained=True).new_model(3, config={}, fold=0)
    assert rebuilt.state_dict().keys() == ref_resnet.state_dict().keys()
    tile = PathologyTileViT(tile_pixels=32, pretrained=True).new_model(3, config={}, fold=0)
    ref_vit = image_classifier("vit", True, 3, 3, 32, 0, download=False)
    assert {k[len("encoder."):] for k in tile.state_dict() if k.startswith("encoder.")} == set(ref_vit.state_dict())
    assert ref_vit.patch_embed.patch_size == (16, 16)

"""`lea-audit run --model`: skops files load, pickles only with --trust-model, clear errors."""

from __future__ import annotations

import json
import pickle

import joblib
import numpy as np
import pytest
import skops.io as sio

from lea_ai_audit import cli
from lea_ai_audit.datasets import FEATURES, make_demo
from lea_ai_audit.errors import ModelError
from lea_ai_audit.models import load_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    demo = make_demo(4000, bias=0.0, seed=5)
    cases = demo.test.drop(columns=["risk", "flagged"])
    cases.to_csv(d / "cases.csv", index=False)
    sio.dump(demo.model, d / "model.skops")
    joblib.dump(demo.model, d / "model.joblib")
    with open(d / "model.pkl", "wb") as fh:
        pickle.dump(demo.model, fh)
    import lightgbm as lgb
    X = demo.train[["age", "prior_contacts", "prior_convictions"]]
    gbm = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, demo.train["rearrested"])
    sio.dump(gbm, d / "gbm.skops")
    (d / "model.txt").write_text("not a model")
    return d, demo


def _run(d, *extra):
    return cli.main(["run", "--data", str(d / "cases.csv"), "--target", "reoffended",
                     "--sensitive", "ethnicity", "--out", str(d / "out"), "-q",
                     "--checks", "fairness,performance", *extra])


def test_skops_model_is_audited_with_its_digest(files, capsys):
    d, demo = files
    assert _run(d, "--model", str(d / "model.skops")) in (0, 1)
    rep = json.loads((d / "out" / "report.json").read_text())
    assert rep["subject"]["prediction_source"] == "model"
    from lea_ai_audit._io import sha256_file
    assert rep["subject"]["model"]["file_sha256"] == sha256_file(d / "model.skops")
    # the audit's accuracy equals the model's own on the same rows
    perf = next(c for c in rep["checks"] if c["check_id"] == "performance.metrics")
    want = float(np.mean(demo.model.predict(demo.test[FEATURES]) == demo.test["reoffended"]))
    assert perf["metrics"]["accuracy"] == pytest.approx(want)


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib"])
def test_pickle_refused_without_trust_and_nothing_written(files, capsys, name):
    d, _ = files
    out = d / f"out-{name}"
    code = cli.main(["run", "--data", str(d / "cases.csv"), "--target", "reoffended",
                     "--sensitive", "ethnicity", "--out", str(out), "--model", str(d / name)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: model file '{d / name}' is a pickle: loading it would run")
    assert "--trust-model" in err and "skops" in err and "Traceback" not in err
    assert not out.exists()


def test_pickle_loads_with_trust(files):
    d, _ = files
    assert _run(d, "--model", str(d / "model.pkl"), "--trust-model") in (0, 1)


def test_skops_with_untrusted_types_lists_them(files, capsys):
    d, _ = files
    with pytest.raises(ModelError, match=r"lightgbm\.sklearn\.LGBMClassifier"):
        load_model(str(d / "gbm.skops"))
    model, info = load_model(str(d / "gbm.skops"), trust=True)
    assert info["format"] == "skops" and hasattr(model, "predict_proba")


@pytest.mark.parametrize("target,msg", [
    ("model.txt", "has an unknown format (.txt)"),
    ("missing.skops", "does not exist"),
    (".", "is a directory"),
])
def test_bad_model_paths(files, capsys, target, msg):
    d, _ = files
    assert _run(d, "--model", str(d / target)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1


def test_model_with_prediction_column_is_refused(files, capsys):
    d, _ = files
    assert _run(d, "--model", str(d / "model.skops"), "--prediction-col", "age") == 2
    assert "both --model and --prediction-col" in capsys.readouterr().err


def test_mlflow_uri_that_does_not_exist(files, capsys, tmp_path, monkeypatch):
    d, _ = files
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    assert _run(d, "--model", "models:/no-such-model/1") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot load the MLflow model 'models:/no-such-model/1'")


def test_mlflow_registered_model_is_audited(files, tmp_path, monkeypatch):
    import mlflow
    import mlflow.sklearn

    d, demo = files
    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    exp = mlflow.MlflowClient().create_experiment(  # artifacts in tmp_path, not ./mlruns
        "lea-test-models", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp):
        mlflow.sklearn.log_model(demo.model, name="model", registered_model_name="triage",
                                 serialization_format="skops")
    assert _run(d, "--model", "models:/triage/1") in (0, 1)
    rep = json.loads((d / "out" / "report.json").read_text())
    assert rep["data"]["source"]["model_uri"] == "models:/triage/1"
    assert rep["subject"]["prediction_source"] == "model"

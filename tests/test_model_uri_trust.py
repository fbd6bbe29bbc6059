"""An MLflow model URI follows the pickle rule: a model logged in the sklearn flavour's
``cloudpickle``/``pickle`` format is refused unless trusted (``trust=True``, ``--trust-model``),
and refusing it unpickles nothing; one logged as ``skops`` loads without trust, through skops's
own allow-list, never the one written in its ``MLmodel`` file by whoever logged it.

The model logged here is a real scikit-learn model whose unpickling writes a marker file (its
``__reduce__``), so a test that loaded it by mistake would see the marker. Everything runs on a
SQLite tracking store in ``tmp_path``; nothing external is started.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from lea_ai_audit import cli
from lea_ai_audit.datasets import make_demo
from lea_ai_audit.errors import ModelError
from lea_ai_audit.models import load_model

#: the trap model's inputs (numbers without missing values: a bare LogisticRegression)
INPUTS = ["age", "prior_contacts", "prior_convictions"]


def _spring(marker: str, params: dict, state: dict) -> LogisticRegression:
    """What unpickling a :class:`TrapModel` calls: leaves the marker, returns a working model."""
    Path(marker).write_text("the model's pickle ran code on loading")
    model = LogisticRegression(**params)
    model.__setstate__(state)
    return model


class TrapModel(LogisticRegression):
    """A logistic regression that runs code (writes ``self.marker``) when it is unpickled."""

    marker = ""

    def __reduce__(self):
        return (_spring, (self.marker, self.get_params(), self.__getstate__()))


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A SQLite registry holding ``trap`` (cloudpickle, version 1) and ``safe`` (skops,
    version 1); returns (cases CSV, marker path, run URI of the trap model)."""
    import mlflow
    import mlflow.sklearn

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    demo = make_demo(3000, bias=0.0, seed=3)
    marker = tmp_path / "PICKLE_RAN"
    trap = TrapModel(max_iter=500).fit(demo.train[INPUTS], demo.train["rearrested"])
    trap.marker = str(marker)
    cases = tmp_path / "cases.csv"
    demo.test.drop(columns=["risk", "flagged"]).to_csv(cases, index=False)
    # artifacts beside the store, not in ./mlruns of wherever the tests run
    exp = mlflow.MlflowClient().create_experiment(
        "lea-test-uri-trust", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        # pip_requirements given: MLflow would otherwise load the model to infer them
        mlflow.sklearn.log_model(trap, name="model", registered_model_name="trap",
                                 serialization_format="cloudpickle",
                                 pip_requirements=["scikit-learn"])
        mlflow.sklearn.log_model(
            TrapModel(max_iter=500).fit(demo.train[INPUTS], demo.train["rearrested"]),
            name="trusting", registered_model_name="self-trusting",
            serialization_format="skops", pip_requirements=["scikit-learn"],
            skops_trusted_types=[f"{TrapModel.__module__}.TrapModel"])
        mlflow.sklearn.log_model(demo.model, name="safe", registered_model_name="safe",
                                 serialization_format="skops",
                                 pip_requirements=["scikit-learn"])
    marker.unlink(missing_ok=True)  # whatever logging did, the tests start without it
    return cases, marker, f"runs:/{run.info.run_id}/model"


@pytest.mark.parametrize("which", ["models:/trap/1", "run"])
def test_pickled_mlflow_model_refused_without_trust(registry, which: str) -> None:
    _, marker, run_uri = registry
    uri = run_uri if which == "run" else which
    with pytest.raises(ModelError) as err:
        load_model(uri)
    msg = str(err.value)
    assert msg.startswith(f"the MLflow model {uri!r} is stored in the sklearn flavour's "
                          "'cloudpickle' format, a pickle: loading it would run any code")
    assert "--trust-model" in msg and "serialization_format='skops'" in msg
    assert "\n" not in msg
    assert not marker.exists(), "refusing the model unpickled it"


def test_pickled_mlflow_model_loads_with_trust(registry) -> None:
    _, marker, _ = registry
    model, info = load_model("models:/trap/1", trust=True)
    assert info == {"uri": "models:/trap/1", "format": "mlflow",
                    "serialization_format": "cloudpickle"}
    assert hasattr(model, "predict_proba")
    assert marker.exists(), "the trap did not spring: the refusal test above proves nothing"


def test_skops_mlflow_model_loads_without_trust_and_without_pickle(registry, monkeypatch):
    import mlflow.sklearn

    def no_pickle(*args, **kwargs):
        raise AssertionError("mlflow.sklearn.load_model was called for a skops model")

    monkeypatch.setattr(mlflow.sklearn, "load_model", no_pickle)
    model, info = load_model("models:/safe/1")
    assert info["serialization_format"] == "skops" and hasattr(model, "predict_proba")


def test_skops_trusted_types_written_by_the_logger_are_not_used(registry) -> None:
    _, marker, _ = registry
    with pytest.raises(ModelError, match=r"needs types that skops does not trust by default: "
                                         r".*TrapModel"):
        load_model("models:/self-trusting/1")
    model, _ = load_model("models:/self-trusting/1", trust=True)
    assert isinstance(model, TrapModel)
    assert not marker.exists()  # skops builds the object without unpickling it


def test_cli_refuses_a_pickled_registered_model(registry, tmp_path, capsys) -> None:
    cases, marker, _ = registry
    argv = ["run", "--data", str(cases), "--target", "reoffended", "--sensitive", "ethnicity",
            "--checks", "fairness,performance", "-q", "--out", str(tmp_path / "out"),
            "--model", "models:/trap/1"]
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("error: the MLflow model 'models:/trap/1' is stored in the "
                               "sklearn flavour's 'cloudpickle' format, a pickle"), lines[0]
    assert " — " in lines[0] and "--trust-model" in lines[0]
    assert not marker.exists() and not (tmp_path / "out").exists()

    assert cli.main([*argv, "--trust-model"]) in (0, 1)
    assert marker.exists()
    assert (tmp_path / "out" / "report.json").is_file()

"""The compatibility module on the Airflow under test (make test-matrix runs this on 3.0 to 3.3)."""

from __future__ import annotations

import gzip
import io
import json
import warnings

import pytest

from airflow_provider_rtcim import compat


@pytest.mark.parametrize("name", sorted(compat._WHERE))
def test_every_airflow_name_resolves_on_this_airflow(name):
    value = getattr(compat, name)
    assert value is not None
    assert getattr(compat, name) is value  # resolved once, then kept


def test_exceptions_are_the_ones_the_task_runner_catches():
    # The task runner of 3.0 and 3.1 catches airflow.exceptions' classes, 3.2+ airflow.sdk.exceptions'
    # (airflow.exceptions re-exports them there): the package must raise those very classes.
    import airflow.exceptions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3.2+ deprecates airflow.exceptions' re-exports
        for name in (
            "AirflowException",
            "AirflowFailException",
            "AirflowSkipException",
            "AirflowSensorTimeout",
        ):
            assert getattr(compat, name) is getattr(airflow.exceptions, name), name
    assert issubclass(compat.AirflowFailException, compat.AirflowException)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        compat.Nope  # noqa: B018


class _NoIter:
    """A binary file without ``__iter__``, as Airflow 3.0's ``ObjectStoragePath.open()`` returns."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    def readline(self, size: int = -1) -> bytes:
        return self._buffer.readline(size)


def test_iter_lines_reads_a_file_that_cannot_be_iterated():
    data = b'{"a": 1}\n{"b": 2}\nlast line without newline'
    with pytest.raises(TypeError):
        iter(_NoIter(data))
    assert list(compat.iter_lines(_NoIter(data))) == list(io.BytesIO(data))
    assert list(compat.iter_lines(io.BytesIO(data))) == [
        b'{"a": 1}\n',
        b'{"b": 2}\n',
        b"last line without newline",
    ]
    assert list(compat.iter_lines(_NoIter(b""))) == []


def test_open_lines_reads_local_and_gzip_files(tmp_path):
    from airflow_provider_rtcim.storage import open_lines

    rows = [json.dumps({"n": n}).encode() + b"\n" for n in range(3)]
    (tmp_path / "plain.jsonl").write_bytes(b"".join(rows))
    with gzip.open(tmp_path / "packed.jsonl.gz", "wb") as out:
        out.write(b"".join(rows))
    assert list(open_lines(str(tmp_path / "plain.jsonl"), field="path")) == rows
    assert list(open_lines(f"file://{tmp_path}/packed.jsonl.gz", field="path")) == rows


def test_task_state_store_prefers_the_context_one():
    store = object()
    assert compat.task_state_store({"task_state_store": store, "ti": object()}) is store
    assert compat.task_state_store({}) is None  # no task instance: nothing to scope a store to


def test_task_state_falls_back_to_a_variable_store_scoped_to_the_task_instance():
    class TI:
        dag_id, run_id, task_id, map_index = "d", "manual__1", "t", 3

    store = compat.task_state_store({"ti": TI()})
    assert isinstance(store, compat.VariableTaskStateStore)
    assert store.scope == {"dag_id": "d", "run_id": "manual__1", "task_id": "t", "map_index": 3}
    other = compat.VariableTaskStateStore(dag_id="d", run_id="manual__1", task_id="t", map_index=4)
    name = store.variable_key("baseline")
    assert name.startswith(compat.VARIABLE_PREFIX) and len(name) <= 250  # Airflow's key limit
    assert name != other.variable_key("baseline") != store.variable_key("other")
    assert name == store.variable_key("baseline")  # stable across pokes and retries
    with pytest.raises(ValueError, match="None"):
        store.set("baseline", None)


def test_connection_form_behaviour_for_the_hook_methods_matches_the_provider_info():
    from airflow_provider_rtcim.get_provider_info import get_provider_info
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

    (entry,) = get_provider_info()["connection-types"]
    behaviour = RtcImHook.get_ui_field_behaviour()
    assert behaviour == {
        "hidden_fields": entry["ui-field-behaviour"]["hidden-fields"],
        "relabeling": entry["ui-field-behaviour"]["relabeling"],
        "placeholders": entry["ui-field-behaviour"]["placeholders"],
    }


def test_connection_form_widgets_for_airflow_before_3_2():
    """Airflow 3.0 and 3.1 build the form's extra fields from these wtforms fields."""
    try:
        import wtforms
    except ImportError:
        # 3.2+ reads conn-fields and never calls the hook; without wtforms the method says so.
        from airflow_provider_rtcim.hooks.rtcim import RtcImHook

        with pytest.raises(ImportError):
            RtcImHook.get_connection_form_widgets()
        return
    from airflow_provider_rtcim.get_provider_info import get_provider_info
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

    (entry,) = get_provider_info()["connection-types"]
    widgets = RtcImHook.get_connection_form_widgets()
    assert set(widgets) == set(entry["conn-fields"])
    form = wtforms.Form()
    fields = {name: field.bind(form, name) for name, field in widgets.items()}
    for name, spec in entry["conn-fields"].items():
        assert fields[name].label.text == spec["label"], name
        assert fields[name].description == spec["description"], name
    assert widgets["session_token"].field_class is wtforms.PasswordField
    assert widgets["app_id"].field_class is wtforms.IntegerField
    assert widgets["max_retries"].field_class is wtforms.IntegerField
    assert widgets["region"].field_class is wtforms.StringField
    assert fields["region"].default == "cn-north-1"
    assert fields["max_qps"].default == 95
    # an enum is an any_of validator, the UI's select; every field may stay empty
    region_choices = [v.values for v in fields["region"].validators if hasattr(v, "values")]
    assert region_choices == [["cn-north-1", "ap-southeast-1"]]  # the 3.0 UI fails on a null choice
    assert all(any(type(v).__name__ == "Optional" for v in f.validators) for f in fields.values())

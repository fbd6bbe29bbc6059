"""The CLI's extension hooks (lea_ai_audit/commands): options, kwargs, after-audit, gate reasons."""

from __future__ import annotations

import types

import pytest

from lea_ai_audit import cli


@pytest.fixture()
def fake_extension(monkeypatch):
    calls: dict[str, object] = {}

    def add_commands(sub, kit):
        p = sub.add_parser("hello", help="say hello")
        p.add_argument("--name", required=True)
        kit.add_verbose(p)

        def handler(args):
            kit.console().print(f"hello {args.name}")
            return kit.EXIT_PASS
        p.set_defaults(func=handler)

    def add_gate_options(p):
        p.add_argument("--need-ticket", action="store_true")

    def gate_reasons(args, report):
        return ["no change ticket"] if args.need_ticket else []

    def after_gate(args, report, opened, reasons):
        calls["after_gate"] = (opened, list(reasons))
        return "after-gate ran"

    def add_audit_options(p):
        p.add_argument("--label-for-test")

    def audit_kwargs(args):
        calls["kwargs"] = args.label_for_test
        return {"metadata": {"owner": args.label_for_test}} if args.label_for_test else {}

    def after_audit(args, report, out):
        calls["after_audit"] = (report.subject.get("metadata"), out)
        return "after-audit ran"

    mod = types.SimpleNamespace(**{k: v for k, v in locals().items() if callable(v)})
    monkeypatch.setattr(cli, "_extensions", lambda: [mod])
    return calls


def test_extension_command_and_audit_hooks(fake_extension, tmp_path, capsys):
    assert cli.main(["hello", "--name", "officer"]) == 0
    assert "hello officer" in capsys.readouterr().out
    code = cli.main(["demo", "--rows", "3000", "--bias", "0", "--out", str(tmp_path / "a"),
                     "--label-for-test", "Unit <7>", "-q"])
    assert code == 0
    meta, out = fake_extension["after_audit"]
    # the extension's metadata reached the audit, over the demo's own words
    assert meta == {**cli.DEMO_METADATA, "owner": "Unit <7>"} and str(out) == str(tmp_path / "a")
    assert "after-audit ran" in capsys.readouterr().out


def test_extension_gate_reason_closes_an_open_gate(fake_extension, tmp_path, capsys):
    assert cli.main(["demo", "--rows", "3000", "--bias", "0", "--out", str(tmp_path), "-q"]) == 0
    assert cli.main(["gate", str(tmp_path), "-q"]) == 0
    assert fake_extension["after_gate"] == (True, [])
    capsys.readouterr()
    assert cli.main(["gate", str(tmp_path), "-q", "--need-ticket"]) == 1
    captured = capsys.readouterr()
    assert "gate closed: no change ticket" in captured.err
    assert fake_extension["after_gate"] == (False, ["no change ticket"])

"""`terraform fmt -check` and checkov over infra/terraform: zero failed checks, every skip
justified inline. (`terraform validate` needs provider downloads, impossible here.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra import terraform_model as tm

CHECKOV = tm.PROJECT_ROOT / ".venv-tools" / "bin" / "checkov"
SKIP_COMMENT = re.compile(r"#checkov:skip=(CKV2?_[A-Z]+_\d+)(?::(.*))?")
MIN_REASON_LENGTH = 30


def test_terraform_fmt_check():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not on PATH: fmt cannot be checked on this machine")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(tm.TERRAFORM_ROOT)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"terraform fmt would change files:\n{result.stdout}"


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} missing: run scripts/setup.sh (it creates .venv-tools with checkov)")
    # --skip-download: no Prisma Cloud look-ups (there is no network here, and CI needs none).
    result = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(tm.TERRAFORM_ROOT),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tm.PROJECT_ROOT,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_reports_zero_failed_checks(checkov_report):
    summary = checkov_report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for c in checkov_report["results"]["failed_checks"]
    ]
    assert failed == []
    assert summary["parsing_errors"] == 0
    # It really scanned the estate (a broken module path would silently shrink this).
    assert summary["resource_count"] >= 100
    assert summary["passed"] >= 300


def _inline_skips() -> list[tuple[str, str, str]]:
    skips = []
    for path in sorted(tm.TERRAFORM_ROOT.rglob("*.tf")):
        for match in SKIP_COMMENT.finditer(path.read_text()):
            skips.append((path.relative_to(tm.TERRAFORM_ROOT).as_posix(), match.group(1), (match.group(2) or "").strip()))
    return skips


def test_every_checkov_skip_is_justified_inline():
    skips = _inline_skips()
    assert skips, "expected the documented skips (replication, event notifications, key policies, ...)"
    for path, check, reason in skips:
        assert len(reason) >= MIN_REASON_LENGTH, f"{path}: skip of {check} needs a real justification"


def test_checkov_skips_come_only_from_inline_comments(checkov_report):
    inline = {(check, "/" + path) for path, check, _ in _inline_skips()}
    for skipped in checkov_report["results"]["skipped_checks"]:
        assert (skipped["check_id"], skipped["file_path"]) in inline, skipped["check_id"]
        assert skipped["check_result"]["suppress_comment"].strip()


# --- terraform validate against the provider mirror ------------------------------------------

PLUGIN_MIRROR = Path(os.environ.get("PAYMENTS_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
MIRROR_HOST = "registry.terraform.io"
CANARY = """\
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

data "aws_region" "current" {}

output "broken" {
  value = data.aws_region.current.no_such_attribute
}
"""
# Stand-ins for resources of providers missing from the mirror (kubernetes): the namespace
# the EMR virtual cluster registers becomes the plain variable it is created from.
UNMIRRORED_REFERENCES = {"kubernetes_namespace_v1.emr.metadata[0].name": "var.emr_namespace"}


def _mirrored(source: str) -> bool:
    return (PLUGIN_MIRROR / MIRROR_HOST / source).is_dir()


def _unmirrored_providers() -> set[str]:
    names = set()
    for directory in tm.all_directories():
        for name, spec in tm.parse_file(directory / "versions.tf")["terraform"][0]["required_providers"][0].items():
            if isinstance(spec, dict) and not _mirrored(spec["source"]):
                names.add(name)
    return names


def _strip_blocks(text: str, pattern: str) -> tuple[str, int]:
    """Remove top-level (or terraform-level) blocks whose header matches ``pattern``."""
    return re.subn(rf"(?m)^( *){pattern} \{{\n(?:.*\n)*?\1\}}\n", "", text)


def _without_providers(text: str, providers: set[str]) -> str:
    for provider in providers:
        text, _ = _strip_blocks(text, rf'resource "{provider}_\w+" "\w+"')
        text, _ = _strip_blocks(text, rf'provider "{provider}"')
        text, _ = _strip_blocks(text, rf"{provider} =")
    for reference, stand_in in UNMIRRORED_REFERENCES.items():
        text = text.replace(reference, stand_in)
    return text


@pytest.fixture(scope="module")
def validate_report(tmp_path_factory) -> dict:
    """`terraform validate -json` of envs/dev (which calls all ten modules) in a copy of the
    tree, with providers from the local filesystem mirror; blocks of providers that are not
    mirrored are stripped, the backend is dropped, and a canary module with one deliberate
    error is added, which validate must report."""
    terraform = shutil.which("terraform")
    if terraform is None or not PLUGIN_MIRROR.is_dir():
        pytest.skip(f"terraform or the provider mirror {PLUGIN_MIRROR} is absent: providers cannot be downloaded here")
    unmirrored = _unmirrored_providers()
    root = tmp_path_factory.mktemp("validate")
    shutil.copytree(tm.TERRAFORM_ROOT, root / "infra" / "terraform", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    (root / "include" / "sql").mkdir(parents=True)
    shutil.copy(tm.PROJECT_ROOT / "include" / "sql" / "tables.json", root / "include" / "sql" / "tables.json")
    stripped = 0
    for path in (root / "infra" / "terraform").rglob("*.tf"):
        original = path.read_text()
        text = _without_providers(original, unmirrored)
        stripped += text != original
        path.write_text(text)
    env_dir = root / "infra" / "terraform" / "envs" / "dev"
    main = env_dir / "main.tf"
    main_text, backends = _strip_blocks(main.read_text(), 'backend "s3"')
    assert backends == 1
    main.write_text(main_text + '\nmodule "canary" {\n  source = "./canary"\n}\n')
    (env_dir / "canary").mkdir()
    (env_dir / "canary" / "main.tf").write_text(CANARY)
    (root / "cli.tfrc").write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{PLUGIN_MIRROR}"\n  }}\n}}\n')
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(root / "cli.tfrc"), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    init = subprocess.run(
        [terraform, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=env_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    result = subprocess.run(
        [terraform, "validate", "-json", "-no-color"], cwd=env_dir, env=env, capture_output=True, text=True, timeout=300
    )
    return {"unmirrored": sorted(unmirrored), "stripped_files": stripped, **json.loads(result.stdout)}


def _is_canary(diagnostic: dict) -> bool:
    return diagnostic.get("range", {}).get("filename", "").startswith("canary/")


def test_terraform_validate_passes_for_the_whole_env(validate_report):
    """Real `terraform validate` of envs/dev and all ten modules (no download: local mirror)."""
    problems = [
        f"{d['severity']}: {d['summary']} ({d.get('range', {}).get('filename', '?')}): {d.get('detail', '')}"
        for d in validate_report["diagnostics"]
        if not _is_canary(d)
    ]
    assert problems == []


def test_terraform_validate_reports_the_canary_error(validate_report):
    """Proves the run above really type-checks against the provider schema."""
    [canary] = [d for d in validate_report["diagnostics"] if _is_canary(d)]
    assert canary["severity"] == "error" and canary["summary"] == "Unsupported attribute"
    assert validate_report["valid"] is False and validate_report["error_count"] == 1


def test_blocks_of_unmirrored_providers_are_named(validate_report):
    if validate_report["unmirrored"]:
        pytest.skip(
            f"validated without the blocks of {', '.join(validate_report['unmirrored'])} (not in {PLUGIN_MIRROR}): "
            f"the EMR namespace, the Cluster Autoscaler release and the kubernetes and helm provider configurations "
            "are checked by checkov and the HCL tests only"
        )

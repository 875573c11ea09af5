"""`mpo-serve serve` refuses a bad manifest with its reason before any engine starts."""

import subprocess
import sys

import yaml

from tests.checkpoints import with_policies


def test_serve_with_a_bad_adapter_exits_with_the_reason(test_manifest, tmp_path):
    spec = yaml.safe_load(test_manifest.read_text())
    spec["reference"]["path"] = str(test_manifest.parent / "ref")
    spec = with_policies(spec, [{"name": "alpha", "adapter": str(tmp_path / "missing-lora")}])
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--manifest", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"MPO_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"mpo-serve: invalid manifest {str(manifest)!r}: component 'alpha': "
        f"adapter folder {str(tmp_path / 'missing-lora')!r} does not exist"
    )
    assert "Traceback" not in done.stderr

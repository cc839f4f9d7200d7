"""validate: Axolotl's own validate_config errors come back located (needs the [train] extra)."""

from __future__ import annotations

import pytest
from render_fixtures import MINIMAL

from axo_helper.validate.check import validate_text
from axo_helper.versions import axolotl_installed


@pytest.mark.axolotl
def test_axolotl_own_errors_come_back_as_path_line_message() -> None:
    if not axolotl_installed():
        pytest.skip("Axolotl is not installed")
    # Valid for the schema; Axolotl refuses the fused LoRA kernels on an 8-bit base.
    text = MINIMAL + "adapter: lora\nload_in_8bit: true\nlora_mlp_kernel: true\n"
    report = validate_text(text)
    assert not report.valid
    (err,) = [e for e in report.errors if e.source == "axolotl"]
    assert "8-bit" in err.message
    assert err.path == "lora_mlp_kernel" and err.line == 10
    assert report.axolotl.startswith("checked with Axolotl")
    assert validate_text(MINIMAL).valid

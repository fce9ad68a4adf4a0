"""fairseq-kprune killed with SIGKILL in the middle of its search leaves the outputs of an earlier run
in its --save-dir exactly as they were (it writes only at the end, each file atomically)."""
import pytest

from tests.common.encoder_fixtures import REPO
from tests.common.interrupt import partial_files, sigkill_env

pytestmark = pytest.mark.integration


def test_killed_mid_search_leaves_earlier_outputs_intact(tiny_encoder, tiny_classifier, tmp_path, cli):
    out = tmp_path / "out"
    out.mkdir()
    earlier = {"checkpoint_pruned.pt": b"the checkpoint of an earlier run",
               "kprune_log.json": b'{"earlier": true}\n'}
    for name, content in earlier.items():
        (out / name).write_bytes(content)
    # the second of the four sublayers' knowledge measurements: the search is half done
    kill = sigkill_env("fairseq-kprune", "user_dir.kprune.prune:measure_knowledge", 2)
    proc = cli(["env", *[f"{k}={v}" for k, v in kill.items()], "fairseq-kprune", tiny_encoder.data_dir,
                "--user-dir", REPO / "user_dir", "--path", tiny_classifier, "--constraint", "0.5",
                "--num-tokens", "500", "--save-dir", out, "--cpu"], check=False)
    assert proc.returncode == -9 or proc.returncode == 137, proc.stdout[-3000:]
    assert "layer 0 attention" in proc.stdout  # killed inside the search, after its first step
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier
    assert not partial_files(out)

"""Fixtures of the SRP tests: a tiny binarised corpus and the stock fairseq-train command line."""
import pytest

from tests.conftest import USER_DIR
from tests.srp.synthetic import make_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("srp-corpus"))


def train_args(data, save_dir, *extra, arch="srp_tiny", max_tokens=400):
    """A small, fast fairseq-train command line for the srp components (the original's flags)."""
    return ["fairseq-train", data, "--user-dir", USER_DIR, "--task", "srp_translation", "--arch", arch,
            "--share-decoder-input-output-embed", "--optimizer", "srp_adam", "--adam-betas", "(0.9,0.98)",
            "--lr", "5e-3", "--criterion", "srp", "--label-smoothing", "0.1", "--max-tokens", str(max_tokens),
            "--cpu", "--save-dir", save_dir, "--no-progress-bar", "--log-interval", "1", "--seed", "1",
            "--num-workers", "0", *[str(e) for e in extra]]


@pytest.fixture(scope="session")
def base_checkpoint(corpus, tmp_path_factory):
    """A briefly trained unpruned srp_tiny model, the starting point of the pruning tests."""
    from tests.conftest import run_cli

    save = tmp_path_factory.mktemp("srp-base")
    run_cli(train_args(corpus, save, "--max-epoch", 2))
    return save / "checkpoint_last.pt"

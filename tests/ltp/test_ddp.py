"""LTP's soft and hard stages on two data-parallel CPU workers: after the updates both ranks hold the
same weights and thresholds, and they equal one worker with twice the batch (dropout 0: the method
is deterministic) within fp32 tolerance.

Batches are not shuffled (``--curriculum``), so rank r's batches of 8 are the two halves of the
single worker's batches of 16. The soft stage uses ``--ltp-reg-norm padded``: a per-example mean,
which sums over workers exactly. The default ``tokens`` norm divides each worker's masks by that
worker's own token count (docs/ltp.md), so with it the workers still agree with each other but not
exactly with one worker on the union of their batches."""
import pytest
import torch

from tests.common.ddp import rank_states, run_ranks
from tests.conftest import run_cli

pytestmark = pytest.mark.integration
DELTA = "encoder.sentence_encoder.ltp_threshold_delta"
STAGES = {
    "soft": ["--masking-mode", "soft", "--optimizer", "ltp_adam", "--threshold-lr", "2e-2",
             "--lambda-threshold", "0.5", "--ltp-reg-norm", "padded"],
    "hard": ["--masking-mode", "hard", "--optimizer", "adam", "--final-token-threshold", "0.05"],
}


def _args(enc, restore, save_dir, stage, batch):
    return [*enc.task_args(), *enc.model_args("ltp_roberta_minilm"), *STAGES[stage],
            "--criterion", "ltp_sentence_prediction", "--restore-file", restore, "--reset-optimizer",
            "--reset-dataloader", "--reset-meters", "--reset-lr-scheduler", "--lr", "1e-3",
            # the key biases have no gradient in exact arithmetic (softmax ignores a shift shared by all
            # keys): Adam's normalisation would blow their rounding noise, which differs between two
            # summation orders, up to lr-sized steps; eps 1e-6 keeps noise at noise level
            "--adam-eps", "1e-6",
            "--lr-scheduler", "fixed", "--dropout", "0", "--attention-dropout", "0", "--curriculum", "100",
            "--batch-size", batch, "--max-update", "3", "--required-batch-size-multiple", "1",
            "--num-workers", "0", "--disable-validation", "--no-epoch-checkpoints", "--save-dir", save_dir,
            "--cpu", "--seed", "1", "--log-format", "simple"]


@pytest.mark.parametrize("stage", ["soft", "hard"])
def test_two_workers_agree_and_equal_one_with_twice_the_batch(stage, tiny_encoder, tiny_classifier, tmp_path):
    enc = tiny_encoder
    run_ranks(_args(enc, tiny_classifier, tmp_path / "ddp", stage, 8))
    ranks = rank_states(tmp_path / "ddp")
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key

    run_cli(["python", "tests/common/ddp_worker.py", *_args(enc, tiny_classifier, tmp_path / "one", stage, 16)])
    single = torch.load(tmp_path / "one" / "model_rank0.pt")
    differ = {key: float((ranks[0][key].float() - single[key].float()).abs().max()) for key in single
              if not torch.allclose(ranks[0][key].float(), single[key].float(), rtol=0, atol=1e-5)}
    assert not differ, differ

    start = torch.load(tiny_classifier, map_location="cpu", weights_only=False)["model"]
    fc1 = "encoder.sentence_encoder.layers.1.fc1.weight"
    assert not torch.equal(single[fc1], start[fc1])  # the weights trained
    if stage == "soft":
        assert (single[DELTA][1:] > 0).all(), single[DELTA]  # learned: pushed up by the regulariser
    else:
        assert torch.equal(single[DELTA], torch.zeros_like(single[DELTA]))  # frozen in the hard stage

"""TR-BERT's RL and joint stages on two data-parallel CPU workers: after the updates both ranks hold the
same weights and policies (as they started alike), the policies (and, in the joint stage, the encoder)
trained.

No comparison with one worker on twice the batch: the rollouts' actions are sampled, and the random
numbers an example gets depend on where it sits in the batch (fairseq seeds every worker by the update
number alone), so the two runs sample different actions. Each example's REINFORCE baseline is the mean
of its own rollouts, so the loss itself sums over workers like over examples."""
import pytest
import torch

from tests.common.ddp import rank_states, run_ranks

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("stage", ["rl", "joint"])
def test_two_workers_hold_the_same_policies(stage, tiny_encoder, tiny_classifier, tmp_path):
    enc = tiny_encoder
    save = tmp_path / "ddp"
    run_ranks([*enc.task_args(), *enc.model_args("trbert_roberta_minilm"), "--criterion", "trbert",
               "--trbert-stage", stage, "--trbert-rollouts", "2", "--guide-rate", "0", "--alpha", "1.0",
               "--restore-file", tiny_classifier, "--reset-optimizer", "--reset-dataloader", "--reset-meters",
               "--reset-lr-scheduler", "--optimizer", "adam", "--lr", "1e-2", "--lr-scheduler", "fixed",
               "--batch-size", "8", "--max-update", "3", "--required-batch-size-multiple", "1",
               "--num-workers", "0", "--disable-validation", "--no-epoch-checkpoints", "--save-dir", save,
               "--cpu", "--seed", "1", "--log-format", "simple"])
    ranks, starts = rank_states(save), rank_states(save, start=True)
    for state in (starts, ranks):
        assert state[0].keys() == state[1].keys()
        for key in state[0]:
            assert torch.equal(state[0][key], state[1][key]), key
    policies = [k for k in ranks[0] if ".policies." in k]
    assert policies and all(not torch.equal(ranks[0][k], starts[0][k]) for k in policies)  # learned
    fc1 = "encoder.sentence_encoder.layers.1.fc1.weight"
    assert torch.equal(ranks[0][fc1], starts[0][fc1]) == (stage == "rl")  # the RL stage freezes the encoder

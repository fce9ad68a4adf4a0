"""Rewards, REINFORCE loss, log-probabilities and the init loss against hand-computed values."""
import math

import pytest
import torch

from user_dir.trbert.policy import action_log_prob
from user_dir.trbert.rewards import (
    example_task_loss,
    init_loss,
    rank_targets,
    reinforce_loss,
    rollout_rewards,
)


def test_rewards_and_reinforce_loss_by_hand():
    # two examples (real lengths 10 and 20), two rollouts each, two reduction points
    losses = torch.tensor([0.5, 1.0, 0.2, 0.4])
    kept = torch.tensor([[6, 3], [4, 2], [10, 5], [8, 8]])
    lengths = torch.tensor([10, 10, 20, 20])
    rewards = rollout_rewards(losses, kept, lengths, alpha=0.5)
    # r = -loss - 0.5 * (kept_1/n + kept_2/n) / 2
    assert torch.allclose(rewards, torch.tensor([-0.725, -1.15, -0.3875, -0.6]))
    log_probs = torch.tensor([[-1.0, -2.0], [-0.5, -3.0]], requires_grad=True)
    loss, adv = reinforce_loss(rewards.view(2, 2), log_probs)
    # baselines -0.9375 and -0.49375
    assert torch.allclose(adv, torch.tensor([[0.2125, -0.2125], [0.10625, -0.10625]]))
    # sum_(b,k) (r - b) * (-log pi) / K; fairseq then divides by B = 2
    assert loss.item() == pytest.approx((0.2125 * 1 - 0.2125 * 2 + 0.10625 * 0.5 - 0.10625 * 3) / 2)
    loss.backward()
    # the gradient pushes up the log-probability of the better rollout
    assert torch.allclose(log_probs.grad, -adv / 2)


def test_log_prob_is_normalised_by_active_tokens():
    logits = torch.tensor([[0.0, math.log(3), -math.log(3), 5.0]])  # p = .5, .75, .25, ~1
    keep = torch.tensor([[True, True, False, True]])
    active = torch.tensor([[False, True, True, False]])  # <s> and padding excluded
    # (log .75 + log(1 - .25)) / 2
    assert action_log_prob(logits, keep, active).item() == pytest.approx(math.log(0.75))
    nothing = torch.zeros_like(active)
    assert action_log_prob(logits, keep, nothing).item() == 0.0


def test_rank_targets_and_init_loss_by_hand():
    scores = torch.tensor([[9.0, 0.3, 0.9, 0.1, 0.5, 7.0]])
    active = torch.tensor([[False, True, True, True, True, False]])
    targets = rank_targets(scores, active)
    assert torch.allclose(targets, torch.tensor([[0.0, 0.5, 1.0, 0.25, 0.75, 0.0]]))
    # p = 0.5 everywhere: (0 + .5 + .25 + .25) / 4
    assert init_loss(torch.zeros(1, 6), scores, active).item() == pytest.approx(0.25)


def test_task_losses_classification_kd_and_regression():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([0, 0])
    ce = example_task_loss(logits, targets, regression=False)
    assert torch.allclose(ce, torch.tensor([math.log(1 + math.exp(-2)), math.log(1 + math.e)]))
    teacher = torch.tensor([[0.0, 0.0], [0.0, 0.0]])  # uniform soft labels
    soft = example_task_loss(logits, targets, regression=False, teacher_logits=teacher)
    lp = torch.log_softmax(logits, -1)
    assert torch.allclose(soft, -(0.5 * lp).sum(-1))
    # regression: squared error, the reward is its negative
    pred = torch.tensor([[0.5], [2.0]])
    mse = example_task_loss(pred, torch.tensor([[1.0], [2.5]]), regression=True)
    assert torch.allclose(mse, torch.tensor([0.25, 0.25]))
    r = rollout_rewards(mse, torch.tensor([[2, 1], [2, 1]]), torch.tensor([4, 4]), alpha=0.0)
    assert torch.allclose(r, -mse)

"""Criterion ``trbert`` in-process: the stages' losses, what trains, validation metrics, bad input."""
import pytest
import torch
from fairseq import options
from fairseq.logging import metrics

from tests.trbert.helpers import HEAD, build, fake_task, random_batch, sample_for, tiny_dictionary, tiny_trbert
from user_dir.trbert.criterion import TrbertCriterion, TrbertCriterionConfig, check_config
from user_dir.trbert.policy import action_log_prob
from user_dir.trbert.residual_scores import ScoreTable, compute_scores
from user_dir.trbert.rewards import example_task_loss, init_loss, reinforce_loss, rollout_rewards
from user_dir.trbert.teacher import FrozenTeacher

LENGTHS = [20, 14, 9]


def _setup(stage="rl", seed=0, with_criterion=True, **cfg):
    d = tiny_dictionary()
    model = tiny_trbert(d, seed=seed, trbert_stage=stage, dropout=0.0, attention_dropout=0.0)
    tokens = random_batch(d, LENGTHS, seed=seed + 1)
    sample = sample_for(tokens, torch.tensor([0, 2, 1]), dictionary=d)
    criterion = None
    if with_criterion:
        criterion = TrbertCriterion(TrbertCriterionConfig(trbert_stage=stage, max_update=100, **cfg), fake_task(d))
    return d, model, sample, criterion


def _spy(model):
    """Record the controls and logits of the model's forward calls."""
    calls = []
    forward = model.forward

    def spy(*args, **kwargs):
        out = forward(*args, **kwargs)
        calls.append((out[0], out[1]["trbert"]))
        return out
    model.forward = spy
    return calls


def test_rl_stage_loss_is_reinforce_over_k_rollouts_and_trains_only_policies():
    d, model, sample, criterion = _setup("rl", trbert_rollouts=4, alpha=0.7, guide_rate=0.0)
    model.train()
    calls = _spy(model)
    loss, sample_size, log = criterion(model, sample)
    assert sample_size == 3
    logits, control = calls[0]
    assert logits.size(0) == 12  # B * K, rollouts of an example adjacent
    targets = sample["target"].repeat_interleave(4)
    rewards = rollout_rewards(example_task_loss(logits, targets, False), control.kept_counts(),
                              control.lengths, 0.7).view(3, 4)
    assert torch.equal(control.lengths.view(3, 4), torch.tensor(LENGTHS)[:, None].expand(3, 4))
    log_probs = sum(action_log_prob(p.logits, p.keep, p.active) for p in control.points).view(3, 4)
    expected, _ = reinforce_loss(rewards, log_probs)
    assert torch.allclose(loss, expected)
    assert log["reward"].item() == pytest.approx(rewards.sum().item() / 4, rel=1e-5)
    assert log["nsentences"] == pytest.approx(3)
    loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads and all(".policies." in n for n in grads)


def test_joint_stage_adds_the_mean_task_loss_and_trains_everything():
    d, model, sample, criterion = _setup("joint", trbert_rollouts=3, alpha=1.0)
    assert criterion.guide_rate == 0.0  # guide only by default in the rl stage
    model.train()
    calls = _spy(model)
    loss, _, log = criterion(model, sample)
    logits, control = calls[0]
    losses = example_task_loss(logits, sample["target"].repeat_interleave(3), False)
    rewards = rollout_rewards(losses, control.kept_counts(), control.lengths, 1.0).view(3, 3)
    log_probs = sum(action_log_prob(p.logits, p.keep, p.active) for p in control.points).view(3, 3)
    rl, _ = reinforce_loss(rewards, log_probs)
    assert torch.allclose(loss, rl + losses.view(3, 3).mean(1).sum(), atol=1e-6)
    loss.backward()
    assert model.layers[2].fc1.weight.grad.abs().sum() > 0
    assert model.sentence_encoder.embed_tokens.weight.grad.abs().sum() > 0


def test_kd_uses_the_teacher_soft_labels_in_loss_and_reward():
    d, model, sample, criterion = _setup("joint", trbert_rollouts=2, alpha=0.0)
    teacher = build("prunable_roberta", d).eval()
    criterion.cfg.trbert_kd = True
    criterion.teacher = FrozenTeacher("in-memory", None)
    criterion.teacher._model = teacher
    model.train()
    calls = _spy(model)
    loss, _, log = criterion(model, sample)
    logits, _ = calls[0]
    soft = teacher(sample["net_input"]["src_tokens"], classification_head_name=HEAD)[0].detach()
    losses = example_task_loss(logits, None, False, soft.repeat_interleave(2, 0))
    assert log["task_loss"].item() == pytest.approx(losses.view(3, 2).mean(1).sum().item(), rel=1e-5)
    # alpha = 0: the reward is minus the soft cross-entropy
    assert log["reward"].item() == pytest.approx(-losses.sum().item() / 2, rel=1e-5)


def test_guided_rl_uses_stored_scores_and_online_scores_agree(tmp_path):
    d, model, sample, _ = _setup("rl", with_criterion=False)
    teacher = build("prunable_roberta", d).eval()
    tokens, targets = sample["net_input"]["src_tokens"], sample["target"]
    scores = compute_scores(teacher, tokens, targets, [1, 2], 3, HEAD, False)
    table = ScoreTable([1, 2], 3, "train")
    table.add(sample["id"], scores, tokens.ne(d.pad()).sum(1))
    table.save(str(tmp_path / "scores.pt"))
    crit = TrbertCriterion(TrbertCriterionConfig(trbert_stage="rl", max_update=10, trbert_rollouts=2,
                                                 trbert_scores=str(tmp_path / "scores.pt")), fake_task(d))
    assert crit.guide_rate == 0.5
    model.train()
    model.set_num_updates(4)  # 4 < 0.5 * 10: guided
    _, _, log = crit(model, sample)
    assert log["guided"] == 3
    model.set_num_updates(5)
    _, _, log = crit(model, sample)
    assert log["guided"] == 0
    # any existing file passes the option check; the teacher model is handed over in memory
    online = TrbertCriterion(TrbertCriterionConfig(trbert_stage="rl", max_update=10, trbert_rollouts=2,
                                                   trbert_scores="online", teacher_path=__file__), fake_task(d))
    online.teacher._model = teacher
    assert torch.allclose(online.scores(model, sample, tokens, targets),
                          crit.scores(model, sample, tokens, targets), atol=1e-3)


def test_init_stage_fits_rank_targets_with_every_token_kept(tmp_path):
    d, model, sample, _ = _setup("init", with_criterion=False)
    tokens = sample["net_input"]["src_tokens"]
    scores = torch.rand(3, tokens.size(1), 2)
    table = ScoreTable([1, 2], 3, "train")
    table.add(sample["id"], scores, tokens.ne(d.pad()).sum(1))
    table.save(str(tmp_path / "s.pt"))
    crit = TrbertCriterion(TrbertCriterionConfig(trbert_stage="init", trbert_scores=str(tmp_path / "s.pt")),
                           fake_task(d))
    model.train()
    calls = _spy(model)
    loss, _, log = crit(model, sample)
    _, control = calls[0]
    assert all(torch.equal(p.kept, p.entering) for p in control.points)
    stored = table.lookup(sample["id"], tokens, d.pad())
    expected = sum(init_loss(p.logits, stored[..., w], p.active) for w, p in enumerate(control.points)).sum()
    assert torch.allclose(loss, expected)
    loss.backward()
    assert all(".policies." in n for n, p in model.named_parameters() if p.grad is not None)


def test_validation_logs_relative_flops_and_kept_ratios():
    d, model, sample, criterion = _setup("rl", guide_rate=0.0)
    model.eval()
    with torch.no_grad():
        loss, _, log = criterion(model, sample)
    with metrics.aggregate() as agg:
        TrbertCriterion.reduce_metrics([log, log])
        values = agg.get_smoothed_values()
    assert 0 < values["rel_flops"] < 1
    assert 0 < values["kept_l2"] <= values["kept_l1"] < 1
    assert "accuracy" in values and not any(k.startswith("_") for k in values)
    # kept_l1 = kept tokens after the first point / real tokens
    logits, extra = model(sample["net_input"]["src_tokens"], classification_head_name=HEAD)
    kept = extra["trbert"].points[0].kept.sum().item()
    assert values["kept_l1"] == pytest.approx(kept / sum(LENGTHS), abs=1e-4)


def test_bad_options_are_clear_errors_before_training(tmp_path, capsys):
    parser = options.get_training_parser()
    with pytest.raises(SystemExit):
        options.parse_args_and_arch(parser, [
            str(tmp_path), "--user-dir", "user_dir", "--task", "sentence_prediction", "--num-classes", "2",
            "--arch", "trbert_roberta", "--criterion", "trbert", "--trbert-stage", "finetune"])
    assert "--trbert-stage: invalid choice: 'finetune' (choose from 'init', 'rl', 'joint')" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--trbert-kd needs a teacher: pass --teacher-path"):
        check_config(TrbertCriterionConfig(trbert_stage="joint", trbert_kd=True, max_update=10))
    with pytest.raises(FileNotFoundError, match="--teacher-path .*nope.pt: no such checkpoint"):
        check_config(TrbertCriterionConfig(trbert_stage="joint", trbert_kd=True, teacher_path="nope.pt"))
    with pytest.raises(ValueError, match="--trbert-scores online .* --teacher-path"):
        check_config(TrbertCriterionConfig(trbert_stage="rl", trbert_scores="online", max_update=10))
    with pytest.raises(ValueError, match="--guide-rate 0.5 needs residual scores.*--trbert-scores"):
        check_config(TrbertCriterionConfig(trbert_stage="rl", max_update=10))
    with pytest.raises(ValueError, match="init stage needs residual scores"):
        check_config(TrbertCriterionConfig(trbert_stage="init"))
    with pytest.raises(ValueError, match="--rollouts must be >= 2|--trbert-rollouts must be >= 2"):
        check_config(TrbertCriterionConfig(trbert_stage="joint", trbert_rollouts=1))
    with pytest.raises(ValueError, match="--guide-rate 0.5 is a fraction of --max-update"):
        check_config(TrbertCriterionConfig(trbert_stage="rl", trbert_scores="online", teacher_path=__file__,
                                           max_update=0))
    # a plain model or a score file for other reduction points is refused at the first batch
    d = tiny_dictionary()
    crit = TrbertCriterion(TrbertCriterionConfig(trbert_stage="joint", max_update=10), fake_task(d))
    tokens = random_batch(d, [8, 6])
    with pytest.raises(ValueError, match="--arch trbert_roberta"):
        crit(build("prunable_roberta", d), sample_for(tokens, torch.tensor([0, 1])))
    table = ScoreTable([1], 2, "train")
    table.save(str(tmp_path / "other.pt"))
    crit = TrbertCriterion(TrbertCriterionConfig(trbert_stage="rl", max_update=10,
                                                 trbert_scores=str(tmp_path / "other.pt")), fake_task(d))
    with pytest.raises(ValueError, match=r"computed for reduction points \[1\].*\[1, 2\]"):
        crit(tiny_trbert(d, trbert_stage="rl").train(), sample_for(tokens, torch.tensor([0, 1])))


def test_regression_reward_is_minus_squared_error():
    d = tiny_dictionary()
    model = tiny_trbert(d, dropout=0.0, attention_dropout=0.0, num_classes=1)
    tokens = random_batch(d, LENGTHS, seed=2)
    targets = torch.tensor([[0.5], [-1.0], [2.0]])
    sample = sample_for(tokens, targets, dictionary=d)
    crit = TrbertCriterion(TrbertCriterionConfig(trbert_stage="joint", regression_target=True, alpha=0.0,
                                                 trbert_rollouts=2), fake_task(d))
    model.train()
    calls = _spy(model)
    loss, _, log = crit(model, sample)
    preds, _ = calls[0]
    mse = ((preds.view(-1) - targets.repeat_interleave(2, 0).view(-1)) ** 2)
    assert log["reward"].item() == pytest.approx(-mse.sum().item() / 2, rel=1e-5)
    assert "ncorrect" not in log
    model.eval()
    with torch.no_grad():
        _, _, log = crit(model, sample)
    assert log["_flops"] < log["_flops_full"]


def test_shared_prefix_equals_repeated_input_without_dropout():
    """--trbert-share-prefix repeats the batch at the first reduction point instead of the input."""
    results = []
    for share in (False, True):
        d, model, sample, criterion = _setup("joint", trbert_rollouts=3, trbert_share_prefix=share)
        model.train()
        calls = _spy(model)
        torch.manual_seed(11)  # same Bernoulli draws: the sampled tensors have the same shapes
        loss, _, log = criterion(model, sample)
        loss.backward()
        logits, control = calls[0]
        results.append((loss.detach(), logits.detach(), control.kept_counts(), control.lengths,
                        model.layers[0].fc1.weight.grad.clone()))
    (loss_a, logits_a, kept_a, len_a, grad_a), (loss_b, logits_b, kept_b, len_b, grad_b) = results
    assert torch.equal(kept_a, kept_b) and torch.equal(len_a, len_b)
    assert torch.allclose(logits_a, logits_b, atol=1e-5) and torch.allclose(loss_a, loss_b, atol=1e-5)
    assert torch.allclose(grad_a, grad_b, atol=1e-5)  # the gradient below the first point sums the rollouts

"""trbert_roberta: physical gather, batch-size independence, equivalences with the plain encoder."""
import pytest
import torch

from tests.trbert.helpers import HEAD, build, random_batch, tiny_dictionary, tiny_trbert
from user_dir.common.prunable_encoder import PrunableTransformerEncoder
from user_dir.trbert.policy import default_reduce_layers, default_score_layer, parse_reduce_layers
from user_dir.trbert.rollouts import ReductionControl


def _run(model, tokens, control=None):
    logits, extra = model(tokens, classification_head_name=HEAD, reduction=control)
    return logits, extra["trbert"]


def test_default_reduction_points_scale_with_depth():
    assert default_reduce_layers(12) == [1, 6]
    assert default_reduce_layers(6) == [1, 3]
    assert default_reduce_layers(3) == [1, 2]
    assert default_reduce_layers(2) == [1]
    assert default_score_layer(12, [1, 6]) == 9  # the original: hidden_states[1:][8]
    assert default_score_layer(6, [1, 3]) == 5  # DistilBERT: hidden_states[1:][4]
    assert parse_reduce_layers("6,1", 12) == [1, 6]


def test_inference_drops_tokens_physically_and_keeps_cls(device):
    d = tiny_dictionary()
    model = tiny_trbert(d).to(device).eval()
    tokens = random_batch(d, [30, 22, 9], seed=1).to(device)
    logits, control = _run(model, tokens)
    assert [p.layer for p in control.points] == [1, 2]
    first, second = control.points
    assert first.entering.tolist() == [30, 22, 9]
    assert (first.kept < first.entering).all() and (second.kept <= first.kept).all()
    assert (second.kept >= 1).all()
    # p >= 0.5 decides, <s> always stays, positions stay in the original order
    assert torch.equal(first.keep[first.active], (first.logits >= 0)[first.active])
    assert first.keep[:, 0].all()
    pos = control.positions
    assert (pos[:, 0] == 0).all()
    feats, _ = model(tokens, features_only=True)
    assert feats.size(1) == int(second.kept.max()) < tokens.size(1)


def test_batch_of_16_equals_one_at_a_time(device):
    d = tiny_dictionary()
    model = tiny_trbert(d, seed=3).to(device).eval()
    lengths = [40, 7, 33, 12, 25, 40, 5, 18, 29, 9, 38, 14, 21, 36, 11, 27]
    tokens = random_batch(d, lengths, seed=2).to(device)
    logits, control = _run(model, tokens)
    counts = control.kept_counts()
    for row, n in enumerate(lengths):
        one_logits, one = _run(model, tokens[row:row + 1, :n])
        assert torch.equal(one.kept_counts()[0], counts[row])
        assert one_logits.argmax(-1).item() == logits[row].argmax(-1).item()
        assert torch.allclose(one_logits[0], logits[row], atol=1e-5)
    assert len(set(counts[:, 1].tolist())) > 3  # selections really differ between examples


def test_keep_everything_policy_equals_plain_encoder():
    d = tiny_dictionary()
    plain = build("prunable_roberta", d).eval()
    model = tiny_trbert(d, policy_bias=50.0).eval()
    # a fine-tuned plain checkpoint restores into TR-BERT; the missing policies are filled in
    policies = {k: v.clone() for k, v in model.state_dict().items() if ".policies." in k}
    model.load_state_dict(plain.state_dict(), strict=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in policies.items())
    tokens = random_batch(d, [25, 13, 6], seed=4)
    logits, control = _run(model, tokens)
    assert all(torch.equal(p.kept, p.entering) for p in control.points)
    ref = plain(tokens, classification_head_name=HEAD)[0]
    assert torch.allclose(logits, ref, atol=1e-5)
    # the keep_all mode (policy initialisation) equals the plain encoder whatever the policy says
    model_half = tiny_trbert(d).eval()
    model_half.load_state_dict(plain.state_dict(), strict=True)
    logits_all, _ = _run(model_half, tokens, ReductionControl("keep_all"))
    assert torch.allclose(logits_all, ref, atol=1e-5)


def test_gathered_equals_masked(device):
    """Dropping tokens physically = keeping them in place but masking them as padding afterwards."""
    d = tiny_dictionary()
    model = tiny_trbert(d, seed=5).to(device).eval()
    tokens = random_batch(d, [24, 17, 10], seed=6).to(device)
    logits, control = _run(model, tokens)
    enc = model.sentence_encoder
    padding = tokens.eq(d.pad())
    x, _ = enc.forward_embedding(tokens)
    x = x * (~padding).unsqueeze(-1).type_as(x)
    dropped = torch.zeros_like(padding)
    points = {p.layer: p for p in control.points}
    for idx, layer in enumerate(enc.layers):
        if idx in points:
            p = points[idx]
            # this point's actions are on gathered slots: the i-th slot is the i-th live position
            for b in range(tokens.size(0)):
                pos = torch.nonzero(~(padding[b] | dropped[b])).flatten()
                keep_b = p.keep[b, :pos.numel()]
                dropped[b, pos[~keep_b]] = True
        x, _ = PrunableTransformerEncoder.forward_layer(enc, layer, x, padding | dropped)
    ref = model.classification_heads[HEAD](x)
    assert torch.allclose(logits, ref, atol=1e-5)


def test_reduce_layers_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match=r"--trbert-reduce-layers 1,3: layer\(s\) \[3\] out of range.*1\.\.2"):
        build("trbert_roberta", trbert_reduce_layers="1,3")
    with pytest.raises(ValueError, match="--trbert-reduce-layers.*allowed"):
        build("trbert_roberta", trbert_reduce_layers="0,1")
    with pytest.raises(ValueError, match="duplicate"):
        build("trbert_roberta", trbert_reduce_layers="1,1")


def test_policy_only_stages_freeze_everything_but_the_policies():
    model = build("trbert_roberta", trbert_stage="rl")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".policies." in n for n in trainable)
    assert len(trainable) == 8  # two policies x (fc1, fc2) x (weight, bias)
    joint = build("trbert_roberta", trbert_stage="joint")
    assert all(p.requires_grad for p in joint.parameters())
